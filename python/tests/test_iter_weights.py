"""``client.iter_weights``: every tensor of the rank in plan order, equal to torch slicing; over tcp with at most
``max_in_flight_bytes`` fetched but not handed over; a ``break`` stops the prefetch thread and releases the
lease; an engine-style ``load_weights`` consumes it as it is."""

from __future__ import annotations

import gc
import threading

import pytest

import tensorcast
from conftest import model_daemon, module_client, wait_until
from load_helpers import same, source_tensors, want_tp
from tensorcast._load.weights import plan_windows


@pytest.fixture(scope="module")
def env(tmp_path_factory, request, hf_model):
    d = model_daemon(tmp_path_factory, request, hf_model)
    return d, module_client(request, d), hf_model, source_tensors(hf_model)


def weight_threads():
    return [t for t in threading.enumerate() if t.name == "tensorcast-weights"]


@pytest.mark.parametrize("transport", ["shm", "files", "tcp"])
def test_yields_every_tensor_in_plan_order(env, transport):
    import torch

    _d, client, model, src = env
    want = want_tp(model, src, 4, 1)
    plan = client.plan("model:hf:v1", tp=(4, 1))
    names = []
    for name, t in client.iter_weights("model:hf:v1", tp=(4, 1), transport=transport):
        assert isinstance(t, torch.Tensor) and t.dtype == torch.bfloat16
        assert same(t, want[name]), name
        names.append(name)
    assert names == [p.name for p in plan.tensors]
    if transport == "shm":
        assert client._leases.held() != []  # the last tensor is still referenced (t)
    del t
    gc.collect()
    wait_until(lambda: client._leases is None or client._leases.held() == [], what="the lease released")


def test_tcp_bounded_in_flight(env):
    _d, client, model, src = env
    want = want_tp(model, src, 2, 0)
    plan = client.plan("model:hf:v1", tp=(2, 0))
    largest = max(t.byte_length for t in plan.tensors)
    bound = 200_000
    assert largest < plan.total_bytes and bound < plan.total_bytes
    it = client.iter_weights("model:hf:v1", tp=(2, 0), transport="tcp", max_in_flight_bytes=bound, as_torch=False)
    got = {}
    for name, a in it:
        got[name] = a.copy()  # an engine copies into its parameter, then lets the tensor go
    assert set(got) == set(want) and all(same(got[n], want[n]) for n in want)
    peak = it.peak_in_flight
    assert peak is not None and 0 < peak <= max(bound, largest)
    # Windows are whole tensors of about bound/4; a tensor larger than that is alone.
    for tensors, start, end in plan_windows(plan.tensors, bound // 4):
        assert len(tensors) == 1 or end - start <= bound // 4
    wait_until(lambda: not weight_threads(), what="the prefetch thread ends")


def test_break_stops_and_releases(env):
    d, client, _model, _src = env
    it = client.iter_weights("model:hf:v1", tp=(2, 1), transport="tcp", max_in_flight_bytes=100_000)
    for i, (_name, _t) in enumerate(it):
        if i == 2:
            break
    it.close()
    wait_until(lambda: not weight_threads(), what="the prefetch thread ends after break")

    # A break out of a loop over the call itself: the dropped iterator closes.
    for _name, _t in client.iter_weights("model:hf:v1", tp=(2, 1), transport="tcp", max_in_flight_bytes=100_000):
        break
    wait_until(lambda: not weight_threads(), what="the prefetch thread ends after the iterator is dropped")

    it = client.iter_weights("model:hf:v1", tp=(2, 1), transport="shm")
    for _name, t in it:
        break
    it.close()
    (lease_id,) = client._leases.held()  # the tensor still held keeps the lease
    del t
    gc.collect()
    wait_until(lambda: client._leases.held() == [], what="the lease released after break and the tensor went")
    wait_until(lambda: all(r["readers"] == 0 for r in d.request("GET", "/v1/replicas")["replicas"]), what="no readers")
    assert lease_id


class FakeEngineModel:
    """What vLLM's / SGLang's ``load_weights(weights)`` does with pre-sharded tensors: copy each into the
    rank's preallocated parameter (no slicing: the tensors already are the rank's)."""

    def __init__(self, plan):
        import torch

        self.params = {t.name: torch.empty(t.shape, dtype=torch.bfloat16) for t in plan.tensors}

    def load_weights(self, weights):
        loaded = set()
        for name, tensor in weights:
            self.params[name].copy_(tensor)
            loaded.add(name)
        return loaded


@pytest.mark.parametrize("transport", ["shm", "tcp"])
def test_engine_load_weights_consumes_it(env, transport):
    _d, client, model, src = env
    plan = client.plan("model:hf:v1", tp=(4, 3))
    m = FakeEngineModel(plan)
    assert m.load_weights(client.iter_weights("model:hf:v1", tp=(4, 3), transport=transport)) == set(m.params)
    want = want_tp(model, src, 4, 3)
    assert all(same(m.params[n], want[n]) for n in want)


def test_bad_arguments_raise_at_the_call(env):
    _d, client, _model, _src = env
    with pytest.raises(tensorcast.InvalidArgumentError):
        client.iter_weights("model:hf:v1", transport="carrier-pigeon")
    with pytest.raises(tensorcast.InvalidArgumentError):
        client.iter_weights("model:hf:v1", max_in_flight_bytes=0)
    with pytest.raises(tensorcast.NotFoundError):
        client.iter_weights("model:nope", transport="tcp")
