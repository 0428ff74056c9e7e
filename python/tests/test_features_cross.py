"""The feature store across languages, on one real daemon: a TypeScript producer puts, a Python trainer gets the
tensors byte-identical (the ref crossing as JSON), and the reverse; the manifest and keys are the same; the error
codes for the same bad inputs are equal."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _handshake_helpers import ts

import tensorcast
from tensorcast.features import SampleRef


@pytest.fixture(scope="module")
def client(shared_daemon):
    with tensorcast.Client(shared_daemon.url, shared_daemon.token) as c:
        yield c


def _peer(daemon, op, **args):
    return ts(op, url=daemon.url, token=daemon.token, **args)


def _tensors():
    rng = np.random.default_rng(7)
    return {
        "hidden": (rng.integers(-2**15, 2**15, size=(16, 64), dtype=np.int16), "BF16"),
        "ids": (rng.integers(-2**40, 2**40, size=(16,), dtype=np.int64), "I64"),
        "mask": (rng.integers(0, 2, size=(16,)).astype(np.bool_), "BOOL"),
        "scale": (np.array(0.5, dtype=np.float32), "F32"),
        "empty": (np.zeros((0, 3), dtype=np.float16), "F16"),
    }


def test_typescript_puts_python_gets(client, shared_daemon):
    tensors = _tensors()
    wire = {n: {"hex": a.tobytes().hex(), "dtype": d, "shape": list(a.shape)} for n, (a, d) in tensors.items()}
    out = _peer(shared_daemon, "fs-put", storeId="cross-ts", sampleId="s-1", tensors=wire)
    assert "error" not in out, out
    ref_json = out["json"]  # JSON.stringify(ref), as a producer would queue it
    store = client.features("cross-ts")
    ref = SampleRef.from_json(ref_json)
    assert ref.to_json() == ref_json  # the same text back
    got = store.get(ref_json)
    for name, (a, dtype) in tensors.items():
        assert got[name].tobytes() == a.tobytes(), name  # byte-identical
        assert got[name].shape == a.shape
    assert {s.name: s.dtype for s in ref.specs} == {n: d for n, (a, d) in tensors.items()}
    # into the trainer's buffer
    dest = np.empty((16, 64), dtype=np.int16)
    store.get(ref, into={"hidden": dest})
    assert dest.tobytes() == tensors["hidden"][0].tobytes()
    # a re-put from Python supersedes the TypeScript generation
    r1 = store.put("s-1", {"ids": tensors["ids"][0]})
    assert r1.generation == ref.generation + 1
    stale = _peer(shared_daemon, "fs-get", storeId="cross-ts", ref=json.loads(ref_json))
    assert stale.get("error") == "TC_ERR_NOT_FOUND"
    store.release(r1)


def test_python_puts_typescript_gets(client, shared_daemon):
    tensors = _tensors()
    store = client.features("cross-py")
    ref = store.put("s-2", {n: (a, d, list(a.shape)) for n, (a, d) in tensors.items()})
    out = _peer(shared_daemon, "fs-get", storeId="cross-py", ref=json.loads(ref.to_json()))
    assert "error" not in out, out
    for name, (a, dtype) in tensors.items():
        t = out["tensors"][name]
        assert bytes.fromhex(t["hex"]) == a.tobytes() and t["dtype"] == dtype and t["shape"] == list(a.shape), name
    # TypeScript's latest() reads the manifest Python wrote: the same ref
    latest = _peer(shared_daemon, "fs-latest", storeId="cross-py", sampleId="s-2", ref=json.loads(ref.to_json()))["ref"]
    assert latest == ref.to_dict()
    # a release in TypeScript frees the sample for Python too
    assert _peer(shared_daemon, "fs-release", storeId="cross-py", ref=ref.to_dict()) == {"released": True}
    with pytest.raises(tensorcast.NotFoundError):
        store.get(ref)


def test_error_codes_are_equal(client, shared_daemon):
    store = client.features("cross-codes", token="tok")
    x = np.arange(8, dtype=np.float32)
    ref = store.put("s", {"x": x}).to_dict()
    cases = [
        (dict(storeToken="wrong"), {}, "TC_ERR_AUTH"),
        (dict(), {}, "TC_ERR_AUTH"),
        (dict(storeToken="tok"), {"into": {"x": 33}}, "TC_ERR_SHORT_READ"),
        (dict(storeToken="tok"), {"into": {"x": 31}}, "TC_ERR_DESTINATION_SIZE"),
        (dict(storeToken="tok"), {"ref": {**ref, "generation": 5}}, "TC_ERR_NOT_FOUND"),
        (dict(storeToken="tok"), {"ref": {**ref, "sampleId": ".bad"}}, "TC_ERR_INVALID_ARGUMENT"),
        (dict(storeToken="tok"), {"ref": {**ref, "fences": [1, 2]}}, "TC_ERR_INVALID_ARGUMENT"),
    ]
    for opts, extra, code in cases:
        args = {"ref": ref, **extra}
        ts_out = _peer(shared_daemon, "fs-get", storeId="cross-codes", **opts, **args)
        py_store = client.features("cross-codes", token=opts.get("storeToken"))
        into = None if "into" not in args else {n: bytearray(size) for n, size in args["into"].items()}
        with pytest.raises(tensorcast.TensorcastError) as info:
            py_store.get(args["ref"], into=into)
        assert (info.value.code, ts_out.get("error")) == (code, code), (opts, extra)
    # puts: a bad tensor name, a byte count that does not match the shape
    for tensors in ({"a/b": {"hex": "00000000", "dtype": "F32", "shape": [1]}},
                    {"x": {"hex": "000000", "dtype": "F32", "shape": [1]}}):
        ts_out = _peer(shared_daemon, "fs-put", storeId="cross-codes", storeToken="tok", sampleId="p", tensors=tensors)
        (name, t), = tensors.items()
        with pytest.raises(tensorcast.TensorcastError) as info:
            store.put("p", {name: (bytes.fromhex(t["hex"]), t["dtype"], t["shape"])})
        assert info.value.code == ts_out.get("error") == "TC_ERR_INVALID_ARGUMENT"
    store.release(ref)


def test_packed_objects_are_identical_across_languages(client, shared_daemon):
    """The same tensors put packed by TypeScript and by Python give the same safetensors bytes; each side reads the
    other's."""
    tensors = _tensors()
    wire = {n: {"hex": a.tobytes().hex(), "dtype": d, "shape": list(a.shape)} for n, (a, d) in tensors.items()}
    ts_ref = _peer(shared_daemon, "fs-put", storeId="cross-packed", sampleId="ts", tensors=wire, layout="packed")["ref"]
    store = client.features("cross-packed", layout="packed")
    py_ref = store.put("py", {n: (a, d, list(a.shape)) for n, (a, d) in tensors.items()})
    ts_bytes, _ = client.dataplane.get_object(f"cross-packed/ts/g{ts_ref['generation']}.safetensors")
    py_bytes, _ = client.dataplane.get_object(f"cross-packed/py/g{py_ref.generation}.safetensors")
    assert bytes(ts_bytes) == bytes(py_bytes)
    got = store.get(ts_ref)
    assert all(got[n].tobytes() == a.tobytes() for n, (a, d) in tensors.items())
    out = _peer(shared_daemon, "fs-get", storeId="cross-packed", ref=py_ref.to_dict())
    assert all(bytes.fromhex(out["tensors"][n]["hex"]) == a.tobytes() for n, (a, d) in tensors.items())
    store.release(ts_ref)
    store.release(py_ref)


def test_refs_cross_daemons_of_a_cluster(make_daemon, tmp_path):
    """A producer on daemon A, consumers (Python and TypeScript) on daemon B of the same cluster (one catalog, one
    token): B's stores read and release A's samples on A; A down -> TC_ERR_UNAVAILABLE."""
    import os

    token_file = tmp_path / "cluster-token"
    token_file.write_text("cluster-secret-token\n")
    os.chmod(token_file, 0o600)
    flags = ["--catalog", f"sqlite://{tmp_path / 'catalog.db'}", "--token-file", str(token_file), "--daemon-ttl", "10s"]
    a = make_daemon(*flags)
    b = make_daemon(*flags)
    assert a.daemon_id != b.daemon_id
    tensors = _tensors()
    with tensorcast.Client(a.url, a.token) as ca, tensorcast.Client(b.url, b.token) as cb:
        producer = ca.features("xc", token="store-secret")
        ref = producer.put("s", {n: (x, d, list(x.shape)) for n, (x, d) in tensors.items()})
        assert ref.daemon_id == a.daemon_id
        consumer = cb.features("xc", token="store-secret")
        got = consumer.get(ref.to_json())
        assert all(got[n].tobytes() == x.tobytes() for n, (x, d) in tensors.items())
        # the TypeScript store on B reads it on A too
        out = ts("fs-get", url=b.url, token=b.token, storeId="xc", storeToken="store-secret", ref=ref.to_dict())
        assert all(bytes.fromhex(out["tensors"][n]["hex"]) == x.tobytes() for n, (x, d) in tensors.items())
        with pytest.raises(tensorcast.AuthError):
            cb.features("xc", token="wrong").get(ref)
        r1 = producer.put("s", {"ids": tensors["ids"][0]})
        with pytest.raises(tensorcast.NotFoundError):
            consumer.get(ref)  # superseded on A
        consumer.release(r1)
        assert a.request("GET", "/v1/objects?prefix=xc/s/")["objects"] == []  # deleted on A
        r2 = producer.put("t", {"ids": tensors["ids"][0]})
        a.kill()
        with pytest.raises(tensorcast.TensorcastError) as info:
            cb.features("xc", token="store-secret").get(r2)
        assert info.value.code == "TC_ERR_UNAVAILABLE"
        consumer.close()
