"""A daemon whose memory budget is smaller than the view: shm fails with TC_ERR_BUDGET (as the TypeScript
SDK), tcp streams the bytes (no replica needed). Feature stores with hostile ids and sample ids: tensorcast
errors or correct round trips, never a raw exception."""

from __future__ import annotations

import numpy as np
import pytest

import tensorcast
from conftest import Daemon

KEY = "model:hf:v1"


@pytest.fixture(scope="module")
def small(tmp_path_factory, request, hf_model):
    from conftest import MODELS_ROOT

    d = Daemon(tmp_path_factory.mktemp("daemon"), ["--import-root", str(MODELS_ROOT), "--memory-budget", "64KiB"])
    request.addfinalizer(d.kill)
    d.import_model(hf_model, KEY)
    return d


def test_budget_smaller_than_the_view(small):
    with tensorcast.Client(small.url, token=small.token, timeout=60) as c:
        plan = c.plan(KEY, tp=(2, 0))
        assert plan.total_bytes > 64 << 10
        with pytest.raises(tensorcast.TensorcastError) as e:
            c.load(KEY, tp=(2, 0), transport="shm")
        assert e.value.code == "TC_ERR_BUDGET", e.value
        with c.load(KEY, tp=(2, 0), transport="tcp") as r:
            assert sum(a.nbytes for a in r.values()) == plan.total_bytes
        with c.load(KEY, tp=(2, 0), transport="files") as r:
            assert sum(a.nbytes for a in r.values()) == plan.total_bytes
        got = list(c.iter_weights(KEY, tp=(2, 0), transport="tcp", as_torch=False))
        assert len(got) == len(plan.tensors)
        assert not c._leases or not c._leases.held()


@pytest.mark.parametrize("sample", ["a/b", "a%2Fb", "q?x=1", "h#frag", "ünï", "..", "", " ", "x" * 5000])
def test_hostile_sample_ids(make_daemon, sample):
    d = make_daemon()
    with tensorcast.Client(d.url, token=d.token, timeout=60) as c:
        fs = c.features("feat")
        x = np.arange(12, dtype=np.float32).reshape(3, 4)
        try:
            ref = fs.put(sample, {"x": x})
        except tensorcast.TensorcastError as e:
            assert e.code == "TC_ERR_INVALID_ARGUMENT", e
            return
        got = fs.get(ref)
        assert np.array_equal(got["x"], x)
        fs.release(ref)


@pytest.mark.parametrize("store", ["a/b", "a%b", "q?x", "ünï", "", "../x", None, 5])
def test_hostile_store_ids(make_daemon, store):
    d = make_daemon()
    with tensorcast.Client(d.url, token=d.token, timeout=60) as c:
        try:
            fs = c.features(store)
            ref = fs.put("s", {"x": np.zeros(4, np.float32)})
            fs.get(ref)
        except tensorcast.TensorcastError as e:
            assert e.code == "TC_ERR_INVALID_ARGUMENT", e
