"""The Python feature store against a real daemon: put/get/release, generations, exact byte counts, store tokens,
dtypes (BF16, I64, BOOL, scalars, 0-size), zero-copy put sources and get destinations, refs as JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tensorcast
from tensorcast.features import SampleRef


@pytest.fixture(scope="module")
def client(shared_daemon):
    with tensorcast.Client(shared_daemon.url, shared_daemon.token) as c:
        yield c


def _code(fn, *a, **kw):
    with pytest.raises(tensorcast.TensorcastError) as info:
        fn(*a, **kw)
    return info.value.code


def test_put_get_release_round_trip(client, shared_daemon):
    store = client.features("train-basic")
    hidden = np.arange(64 * 32, dtype=np.float32).reshape(64, 32)
    ids = np.arange(64, dtype=np.int64) * 7 - 100
    mask = (np.arange(64) % 3 == 0)
    ref = store.put("s-1", {"hidden": hidden, "ids": ids, "loss_mask": mask})
    d = ref.to_dict()
    assert list(d) == ["storeId", "sampleId", "generation", "specs", "layout", "fences", "daemonId"]
    assert d["storeId"] == "train-basic" and d["generation"] == 0 and d["layout"] == "per-tensor"
    assert d["daemonId"] == shared_daemon.daemon_id
    assert [s["name"] for s in d["specs"]] == ["hidden", "ids", "loss_mask"]
    assert d["specs"][0] == {"name": "hidden", "dtype": "F32", "shape": [64, 32], "byteLength": 64 * 32 * 4}
    assert d["specs"][1]["dtype"] == "I64" and d["specs"][2]["dtype"] == "BOOL"
    got = store.get(ref)
    assert np.array_equal(got["hidden"], hidden)
    assert got["hidden"].dtype == np.float32 and got["hidden"].shape == (64, 32)
    assert np.array_equal(got["ids"], ids) and np.array_equal(got["loss_mask"], mask)
    # the ref crosses as JSON (any of the three forms)
    text = ref.to_json()
    assert json.loads(text) == d
    assert SampleRef.from_json(text) == ref
    assert np.array_equal(store.get(text)["ids"], ids)
    assert np.array_equal(store.get(json.loads(text))["ids"], ids)
    # the keys and the manifest, as the TypeScript store writes them
    keys = [o["key"] for o in shared_daemon.request("GET", "/v1/objects?prefix=train-basic/s-1/")["objects"]]
    assert sorted(keys) == ["train-basic/s-1/g0/hidden", "train-basic/s-1/g0/ids", "train-basic/s-1/g0/loss_mask",
                            "train-basic/s-1/manifest"]
    store.release(ref)
    assert _code(store.get, ref) == "TC_ERR_NOT_FOUND"
    assert store.latest("s-1") is None
    # and on the daemon too, for any other process
    assert _code(client.features("train-basic").get, text) == "TC_ERR_NOT_FOUND"
    assert shared_daemon.request("GET", "/v1/objects?prefix=train-basic/s-1/")["objects"] == []


def test_generations(client):
    store = client.features("train-gen")
    a = np.full(16, 1, dtype=np.int32)
    b = np.full(16, 2, dtype=np.int32)
    r0 = store.put("s", {"x": a})
    r1 = store.put("s", {"x": b})
    assert (r0.generation, r1.generation) == (0, 1)
    assert store.latest("s") == r1
    assert np.array_equal(store.get(r1)["x"], b)
    # a ref to g0 never reads g1
    assert _code(store.get, r0) == "TC_ERR_NOT_FOUND"
    assert _code(client.features("train-gen").get, r0) == "TC_ERR_NOT_FOUND"
    st = store.stat()
    assert st["samples"] == 1 and st["generations"] == 1 and st["objects"] == 2 and st["backend"] == "daemon"
    store.release(r1)
    r2 = store.put("s", {"x": a})  # after a release: a fresh generation, never a reused key while it holds bytes
    assert np.array_equal(store.get(r2)["x"], a)
    store.release(r2)


def test_dtypes_scalars_and_empty(client):
    torch = pytest.importorskip("torch")
    store = client.features("train-dtypes")
    bf = torch.randn(3, 5).to(torch.bfloat16)
    scalar = np.array(3.25, dtype=np.float64)
    empty = np.zeros((0, 4), dtype=np.float16)
    ids = torch.arange(10, dtype=torch.int64)
    flags = torch.tensor([True, False, True])
    ref = store.put("d", {"bf": bf, "scalar": scalar, "empty": empty, "ids": ids, "flags": flags,
                          "raw_bf": (bf.view(torch.int16).numpy(), "BF16", [3, 5])})
    specs = {s.name: s for s in ref.specs}
    assert (specs["bf"].dtype, specs["bf"].shape, specs["bf"].byte_length) == ("BF16", (3, 5), 30)
    assert (specs["scalar"].shape, specs["scalar"].byte_length) == ((), 8)
    assert (specs["empty"].shape, specs["empty"].byte_length) == ((0, 4), 0)
    got = store.get(ref, as_torch=True)
    assert got["bf"].dtype == torch.bfloat16 and torch.equal(got["bf"], bf) and torch.equal(got["raw_bf"], bf)
    assert got["scalar"].shape == () and float(got["scalar"]) == 3.25
    assert got["empty"].shape == (0, 4) and got["empty"].dtype == torch.float16
    assert torch.equal(got["ids"], ids) and torch.equal(got["flags"], flags)
    dest = torch.empty(3, 5, dtype=torch.bfloat16)
    into = store.get(ref, into={"bf": dest}, as_torch=True)["bf"]
    assert into.data_ptr() == dest.data_ptr() and torch.equal(dest, bf)  # landed in the caller's tensor
    n = store.get(ref)
    assert n["bf"].dtype == np.int16 and np.array_equal(n["bf"], bf.view(torch.int16).numpy())
    store.release(ref)


def test_into_exact_byte_counts(client):
    store = client.features("train-into")
    x = np.arange(100, dtype=np.float32)
    ref = store.put("s", {"x": x, "y": np.ones(3, dtype=np.int8)})
    dest = np.zeros(100, dtype=np.float32)
    got = store.get(ref, into={"x": dest})
    assert np.shares_memory(got["x"], dest) and np.array_equal(dest, x)  # landed in the caller's buffer
    buf = bytearray(400)
    got = store.get(ref, into={"x": buf})
    assert np.array_equal(np.frombuffer(buf, dtype=np.float32), x)
    assert _code(store.get, ref, into={"x": np.zeros(101, dtype=np.float32)}) == "TC_ERR_SHORT_READ"
    assert _code(store.get, ref, into={"x": np.zeros(99, dtype=np.float32)}) == "TC_ERR_DESTINATION_SIZE"
    assert _code(store.get, ref, into={"nope": bytearray(4)}) == "TC_ERR_INVALID_ARGUMENT"
    assert _code(store.get, ref, into={"x": bytes(400)}) == "TC_ERR_INVALID_ARGUMENT"  # read-only
    store.release(ref)


def test_bad_inputs(client):
    store = client.features("train-bad")
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    cases = [
        ("bad id", {"x": x}),
        (".hidden", {"x": x}),
        ("s", {}),
        ("s", {"a/b": x}),
        ("s", {"x": x.T}),  # not C-contiguous: no silent copy
        ("s", {"x": x[:, ::2]}),
        ("s", {"x": (x, "F32", [3, 5])}),  # byte count does not match
        ("s", {"x": (x, "F99", [3, 4])}),
        ("s", {"x": (x, "F32", [3, -4])}),
        ("s", {"x": x.astype(">f4")}),
        ("s", {"x": "not a tensor"}),
    ]
    for sample_id, tensors in cases:
        assert _code(store.put, sample_id, tensors) == "TC_ERR_INVALID_ARGUMENT", (sample_id, list(tensors))
    assert store.stat()["objects"] == 0  # nothing half-written
    ref = store.put("s", {"x": x}).to_dict()
    for change in ({"storeId": "other"}, {"generation": -1}, {"specs": []}, {"fences": [1, 2]}, {"layout": "zip"}):
        assert _code(store.get, {**ref, **change}) == "TC_ERR_INVALID_ARGUMENT", change
    assert _code(client.features, "bad/store") == "TC_ERR_INVALID_ARGUMENT"
    store.release(ref)


def test_put_sends_from_the_arrays_memory(client, monkeypatch):
    """No intermediate copy: what reaches the data plane is a view of the caller's array."""
    store = client.features("train-zero-copy")
    x = np.arange(1 << 16, dtype=np.float32)
    seen = []
    real = client.dataplane.put_object

    def spy(key, data, **kw):
        seen.append((key, data))
        return real(key, data, **kw)

    monkeypatch.setattr(client.dataplane, "put_object", spy)
    ref = store.put("s", {"x": x})
    monkeypatch.undo()
    tensor_data = [d for k, d in seen if k.endswith("/x")][0]
    assert np.shares_memory(np.frombuffer(tensor_data, dtype=np.uint8), x)
    store.release(ref)


def test_store_token(client, shared_daemon):
    owner = client.features("train-secret", token="s3cret", max_resident_bytes=1 << 20)
    ref = owner.put("s", {"x": np.ones(8, dtype=np.float32)})
    assert _code(client.features("train-secret", token="wrong").get, ref) == "TC_ERR_AUTH"
    assert _code(client.features("train-secret").get, ref) == "TC_ERR_AUTH"
    assert _code(client.features("train-secret", token="wrong").put, "t", {"x": np.ones(2)}) == "TC_ERR_AUTH"
    assert np.array_equal(client.features("train-secret", token="s3cret").get(ref)["x"], np.ones(8, dtype=np.float32))
    st = owner.stat()
    assert st["maxResidentBytes"] == 1 << 20 and st["residentBytes"] > 0
    # over the limit: backpressure, retryable
    with pytest.raises(tensorcast.TensorcastError) as info:
        owner.put("big", {"x": np.zeros(1 << 19, dtype=np.float32)})
    assert info.value.code == "TC_ERR_BACKPRESSURE" and info.value.retryable
    owner.release(ref)


def test_retain_on_release_and_drain(client):
    store = client.features("train-retain", retain_on_release=True)
    x = np.arange(10, dtype=np.int16)
    ref = store.put("s", {"x": x})
    store.release(ref)
    assert np.array_equal(store.get(ref)["x"], x)  # retained: still readable (another epoch)
    assert store.stat()["retained"] == 1
    report = store.drain()
    assert report["retainedFreed"] == 1 and report["failed"] == []
    assert _code(store.get, ref) == "TC_ERR_NOT_FOUND"
    ref2 = store.put("t", {"x": x})
    store.release(ref2, force=True)
    assert _code(store.get, ref2) == "TC_ERR_NOT_FOUND"
    assert store.gc() == {"freed": 0, "expired": 0, "failed": []}
    store.close()
    assert _code(store.get, ref2) == "TC_ERR_ABORTED"


def test_packed_layout(client, shared_daemon):
    store = client.features("train-packed", layout="packed")
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    ids = np.arange(5, dtype=np.int64)
    ref = store.put("s", {"x": x, "ids": ids, "none": np.zeros(0, dtype=np.uint8)})
    assert ref.layout == "packed" and len(ref.fences) == 1
    keys = [o["key"] for o in shared_daemon.request("GET", "/v1/objects?prefix=train-packed/s/")["objects"]]
    assert sorted(keys) == ["train-packed/s/g0.safetensors", "train-packed/s/manifest"]
    got = store.get(ref)
    assert np.array_equal(got["x"], x) and np.array_equal(got["ids"], ids) and got["none"].shape == (0,)
    # the object is a safetensors file the safetensors package reads
    safetensors = pytest.importorskip("safetensors.numpy")
    data, _ = client.dataplane.get_object("train-packed/s/g0.safetensors")
    loaded = safetensors.load(bytes(data))
    assert np.array_equal(loaded["x"], x) and np.array_equal(loaded["ids"], ids)
    # a per-tensor store reads packed refs too (the layout travels on the ref)
    assert np.array_equal(client.features("train-packed").get(ref)["ids"], ids)
    r1 = store.put("s", {"x": x})
    assert _code(store.get, ref) == "TC_ERR_NOT_FOUND"
    store.release(r1)
    assert shared_daemon.request("GET", "/v1/objects?prefix=train-packed/s/")["objects"] == []


def test_many_tensors_in_parallel(client):
    store = client.features("train-many")
    tensors = {f"t{i:03d}": np.full((64,), i, dtype=np.int32) for i in range(40)}
    ref = store.put("s", tensors)
    got = store.get(ref)
    assert all(np.array_equal(got[n], a) for n, a in tensors.items())
    store.release(ref)
    store.close()
    import threading

    assert not [t for t in threading.enumerate() if t.name.startswith("tensorcast-features-train-many")]


def test_wait_for_room(client):
    """A put over max_resident_bytes with wait_for_room_ms waits: without a release it ends in TC_ERR_BACKPRESSURE
    after the wait; with a release by another process meanwhile it lands."""
    import threading

    owner = client.features("train-room", max_resident_bytes=8192)
    first = owner.put("a", {"x": np.zeros(1500, dtype=np.float32)})  # 6000 bytes + manifest
    short = client.features("train-room", wait_for_room_ms=200, timeout_ms=300)  # waits 0.5 s in all
    # The daemon's wait and the client's deadline end together: whichever reports first names the failure.
    assert _code(short.put, "b", {"x": np.ones(1500, dtype=np.float32)}) in ("TC_ERR_BACKPRESSURE", "TC_ERR_TIMEOUT")
    assert short.stat()["samples"] == 1  # nothing of it visible
    waiting = client.features("train-room", wait_for_room_ms=30000)
    started = threading.Event()
    result = {}

    def put():
        started.set()
        try:
            result["ref"] = waiting.put("b", {"x": np.ones(1500, dtype=np.float32)})
        except tensorcast.TensorcastError as e:
            result["error"] = e

    t = threading.Thread(target=put)
    t.start()
    started.wait(10)
    owner.release(first)
    t.join(60)
    assert "error" not in result, result
    assert np.array_equal(waiting.get(result["ref"])["x"], np.ones(1500, dtype=np.float32))
    waiting.release(result["ref"])


def test_a_concurrent_put_that_committed_first_is_a_conflict(client, shared_daemon, monkeypatch):
    """The manifest compare-and-swap on the daemon: a put that read the manifest before another put committed fails
    with TC_ERR_CONFLICT and leaves nothing visible (its transaction aborted)."""
    store = client.features("train-cas")
    winner = store.put("s", {"x": np.ones(4, dtype=np.float32)})
    # this put saw the sample as it was before the winner (no manifest yet)
    monkeypatch.setattr(store, "_manifest_for_put", lambda sample_id: (None, None, []))
    monkeypatch.setattr(store, "_fresh_generation", lambda sample_id: 7)
    assert _code(store.put, "s", {"x": np.zeros(4, dtype=np.float32)}) == "TC_ERR_CONFLICT"
    monkeypatch.undo()
    assert store.latest("s") == winner
    assert np.array_equal(store.get(winner)["x"], np.ones(4, dtype=np.float32))
    keys = [o["key"] for o in shared_daemon.request("GET", "/v1/objects?prefix=train-cas/s/")["objects"]]
    assert sorted(keys) == ["train-cas/s/g0/x", "train-cas/s/manifest"]  # nothing of g7
    assert shared_daemon.request("GET", "/v1/namespaces/train-cas")["openTxns"] == 0
    store.release(winner)
