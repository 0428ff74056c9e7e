"""The lifetime of mapped arrays: an shm lease is held (and renewed past its TTL) while one array of the load
lives, released when the last one goes, also after ``release()`` and ``Client.close()``; a corrupted shm
file fails with TC_ERR_CHECKSUM and is rebuilt; unreadable artifact files give TC_ERR_FORBIDDEN.

The daemon runs with a short lease TTL (the hidden ``TENSORCAST_LEASE_TTL_MS``), so "longer than the TTL"
takes a few seconds, not minutes."""

from __future__ import annotations

import gc
import os
import threading
import time

import numpy as np
import pytest

import tensorcast
from tensorcast._http import HttpClient
from conftest import Daemon, model_daemon, wait_until
from load_helpers import mapped_base, same, source_tensors, want_tp

TTL_MS = 1200


@pytest.fixture(scope="module")
def env(tmp_path_factory, request, hf_model):
    d = model_daemon(tmp_path_factory, request, hf_model, env={"TENSORCAST_LEASE_TTL_MS": str(TTL_MS)})
    return d, hf_model, source_tensors(hf_model)


def lease_alive(d: Daemon, lease_id: str) -> bool:
    """Renews the lease from outside: True while it exists, False once released or expired (404)."""
    http = HttpClient(d.url, d.token)
    try:
        http.request("POST", f"/v1/shm-leases/{lease_id}/renew")
        return True
    except tensorcast.TensorcastError as e:
        if e.code == "TC_ERR_LEASE_NOT_FOUND":
            return False
        raise
    finally:
        http.close()


def readers(d: Daemon) -> int:
    return sum(r["readers"] for r in d.request("GET", "/v1/replicas")["replicas"] if r["tier"] == "shm")


def outlive_ttl() -> None:
    """Lets three lease TTLs pass: an unrenewed lease would have expired by then (not a timing assertion:
    the check after it holds whether the wait is this long or longer)."""
    time.sleep(3 * TTL_MS / 1000)


def keeper_threads():
    return [t for t in threading.enumerate() if t.name == "tensorcast-lease-keeper"]


def test_lease_kept_while_one_array_lives_released_when_it_goes(env):
    d, model, src = env
    want = want_tp(model, src, 2, 1)
    with tensorcast.Client(d.url, d.token) as client:
        r = client.load("model:hf:v1", tp=(2, 1), transport="shm", as_torch=True)
        (lease_id,) = client._leases.held()
        keep = r["model.layers.1.mlp.up_proj.weight"]
        del r
        gc.collect()
        outlive_ttl()
        # Still held: renewed by the keeper thread, never released while an array is alive.
        assert client._leases.held() == [lease_id]
        assert lease_alive(d, lease_id)
        assert same(keep, want["model.layers.1.mlp.up_proj.weight"])
        del keep
        gc.collect()
        wait_until(lambda: not lease_alive(d, lease_id), what="the lease released after the last array went")
        wait_until(lambda: readers(d) == 0, what="no shm readers")


def test_release_with_arrays_alive_only_drops_the_results_reference(env):
    d, model, src = env
    want = want_tp(model, src, 4, 2)
    with tensorcast.Client(d.url, d.token) as client:
        r = client.load("model:hf:v1", tp=(4, 2), transport="shm")
        (lease_id,) = client._leases.held()
        a = r["model.layers.0.self_attn.q_proj.weight"]
        r.release()
        assert r.released and lease_alive(d, lease_id)
        with pytest.raises(tensorcast.TensorcastError) as e:
            len(r)
        assert e.value.code == "TC_ERR_ABORTED"
        outlive_ttl()
        assert same(a, want["model.layers.0.self_attn.q_proj.weight"])  # no use-after-unmap: still mapped
        a[0, 0] = 1  # writable: a private page, the shared file is untouched
        del a
        gc.collect()
        wait_until(lambda: not lease_alive(d, lease_id), what="the lease released")
        # The file was not written through the array.
        again = client.load("model:hf:v1", tp=(4, 2), transport="shm")
        assert same(again["model.layers.0.self_attn.q_proj.weight"], want["model.layers.0.self_attn.q_proj.weight"])
        again.release()


def test_with_block_releases_at_once(env):
    d, _model, _src = env
    with tensorcast.Client(d.url, d.token) as client:
        with client.load("model:hf:v1", tp=(2, 0), transport="shm") as r:
            (lease_id,) = client._leases.held()
            assert float(np.asarray(r["model.norm.weight"]).view(np.uint16).sum()) > 0
        # release() sent the DELETE before returning.
        assert client._leases.held() == []
        assert not lease_alive(d, lease_id)


def test_close_keeps_live_arrays_working_then_releases(env):
    d, model, src = env
    want = want_tp(model, src, 2, 0)
    client = tensorcast.Client(d.url, d.token)
    dropped = client.load("model:hf:v1", tp=(2, 0), transport="shm")
    dropped_id = client._leases.held()[0]
    dropped.release()
    r = client.load("model:hf:v1", tp=(2, 1), transport="shm")
    held_id = [x for x in client._leases.held() if x != dropped_id][0]
    keep = r["lm_head.weight"]
    del r
    keeper = client._leases
    client.close()
    assert not lease_alive(d, dropped_id)
    with pytest.raises(tensorcast.ClosedError):
        client.load("model:hf:v1", tp=(2, 0))
    outlive_ttl()
    assert lease_alive(d, held_id)
    assert same(keep, want_tp(model, src, 2, 1)["lm_head.weight"])
    del keep
    gc.collect()
    wait_until(lambda: not lease_alive(d, held_id), what="the lease released after close and the last array")
    # The keeper thread ends once it holds nothing for a closed client.
    wait_until(lambda: keeper._thread is None, what="the keeper thread ends")
    assert want is not None


def test_checksum_mismatch_discards_the_replica(env):
    d, model, src = env
    want = want_tp(model, src, 4, 0)
    with tensorcast.Client(d.url, d.token) as client:
        r = client.load("model:hf:v1", tp=(4, 0), transport="shm")
        path = r._owner.path
        r.release()
        wait_until(lambda: readers(d) == 0, what="no readers")
        with open(path, "r+b") as f:
            f.seek(100)
            b = f.read(1)
            f.seek(100)
            f.write(bytes([b[0] ^ 0xFF]))
        with pytest.raises(tensorcast.TensorcastError) as e:
            client.load("model:hf:v1", tp=(4, 0), transport="shm")
        assert e.value.code == "TC_ERR_CHECKSUM"
        assert client._leases.held() == []
        # The discarded replica is rebuilt by the next lease.
        r = client.load("model:hf:v1", tp=(4, 0), transport="shm")
        assert all(same(r[n], want[n]) for n in want)
        r.release()


def test_files_unreadable_is_forbidden(env):
    d, _model, _src = env
    with tensorcast.Client(d.url, d.token) as client:
        plan = client.plan("model:hf:v1")
        placement = d.request("GET", f"/v1/artifacts/{plan.artifact_id}/placement")
        moved = placement["dir"] + ".moved"
        os.rename(placement["dir"], moved)
        try:
            with pytest.raises(tensorcast.TensorcastError) as e:
                client.load("model:hf:v1", transport="files")
            assert e.value.code == "TC_ERR_FORBIDDEN"
        finally:
            os.rename(moved, placement["dir"])
        r = client.load("model:hf:v1", transport="files")
        assert r.stats.copies == 0
        r.release()


def test_files_mapping_lives_with_its_arrays_after_close(env):
    d, model, src = env
    client = tensorcast.Client(d.url, d.token)
    r = client.load("model:hf:v1", tp=(2, 1), transport="files", as_torch=True)
    keep = r["model.layers.0.mlp.down_proj.weight"]
    del r
    client.close()
    gc.collect()
    assert same(keep, want_tp(model, src, 2, 1)["model.layers.0.mlp.down_proj.weight"])


def test_private_writes_never_reach_the_file_nor_fail_a_later_load(env):
    d, model, src = env
    want = want_tp(model, src, 2, 0)
    name = "model.layers.1.self_attn.q_proj.weight"
    with tensorcast.Client(d.url, d.token) as client:
        r1 = client.load("model:hf:v1", tp=(2, 0), transport="shm")
        a = r1[name]
        a[0, 0] += 1  # a private page of this process's (cached) mapping
        r2 = client.load("model:hf:v1", tp=(2, 0), transport="shm")
        # The cached mapping failed its check (this process's write), the file was mapped afresh: r2 is right,
        # on another mapping, and the daemon's replica was not discarded.
        assert same(r2[name], want[name]) and not same(a, want[name])
        assert mapped_base(r2[name])[1] is not mapped_base(a)[1]
        assert r2.stats.source == "replica_hit"
        r1.release()
        r2.release()
        del a
        gc.collect()
        wait_until(lambda: client._leases.held() == [], what="both leases released")
