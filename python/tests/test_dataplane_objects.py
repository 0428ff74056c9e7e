"""``DataPlane.put_object`` / ``get_object`` (object PUT and GET over the data plane) against a real daemon:
round trips of every size class (empty, eager-only, several frames), into caller buffers (numpy included),
conditions (``if_version`` unset / None / a version), transactions, store tokens, the exact-size rule of
``into`` (TC_ERR_SHORT_READ / TC_ERR_DESTINATION_SIZE, the connection kept), missing keys, namespace limits;
cross-checks with the TypeScript side (``tensorcast objects ls``, the stat route's CRC32C, and the TS SDK
reading what Python wrote and the other way round); and, against a scripted fake server, that a PUT never
sends beyond the credit and a corrupted GET frame is TC_ERR_CHECKSUM."""

from __future__ import annotations

import hashlib
import json
import subprocess
import urllib.request

import numpy as np
import pytest
from conftest import CLI, NODE, REPO_ROOT, require_module, wait_until
from fake_dataplane import FakeDataPlane, Peer

import tensorcast
from tensorcast._dataplane import DataPlane
from tensorcast._dataplane import frames as F


@pytest.fixture
def daemon(make_daemon):
    return make_daemon()


@pytest.fixture
def dp(daemon):
    with DataPlane(daemon.data_address, daemon.token, "the test's token", connections=2) as plane:
        yield plane


def pattern(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8)


def code_of(fn) -> str:
    with pytest.raises(tensorcast.TensorcastError) as e:
        fn()
    return e.value.code


@pytest.mark.parametrize("size", [0, 5, 1 << 20, (1 << 20) + 1, (9 << 20) + 12345])
def test_round_trip(dp, size):
    data = pattern(size, size)
    put = dp.put_object(f"rt/obj-{size}", data)
    assert put["bytes"] == size and put["version"] > 0
    got, version = dp.get_object(f"rt/obj-{size}")
    assert isinstance(got, bytearray) and got == data.tobytes() and version == put["version"]
    into = np.zeros(size, np.uint8)
    got2, version2 = dp.get_object(f"rt/obj-{size}", into=into)
    assert got2 is into and np.array_equal(into, data) and version2 == version
    assert dp.idle_count >= 1


def test_put_sources_and_versions(dp):
    a = dp.put_object("src/a", b"bytes")
    b = dp.put_object("src/a", bytearray(b"bytearray"))
    c = dp.put_object("src/a", memoryview(np.arange(10, dtype=np.float32)))
    assert a["version"] < b["version"] < c["version"]
    got, v = dp.get_object("src/a")
    assert np.array_equal(np.frombuffer(got, np.float32), np.arange(10, dtype=np.float32)) and v == c["version"]


def test_whole_object_crc_and_torch_sources(dp):
    data = pattern(5 << 20, 3)
    assert code_of(lambda: dp.put_object("crc/k", data, crc=F.crc32c(data) ^ 1)) == "TC_ERR_CHECKSUM"
    assert code_of(lambda: dp.get_object("crc/k")) == "TC_ERR_NOT_FOUND", "a failed put leaves nothing"
    v = dp.put_object("crc/k", data, crc=F.crc32c(data))["version"]
    assert dp.get_object("crc/k") == (bytearray(data.tobytes()), v)
    torch = require_module("torch")
    t = torch.arange(1000, dtype=torch.bfloat16)
    dp.put_object("crc/t", t)
    back = torch.empty(1000, dtype=torch.bfloat16)
    dp.get_object("crc/t", into=back)
    assert torch.equal(back, t)


def test_conditions(dp):
    v1 = dp.put_object("cond/k", b"one", if_version=None)["version"]  # create only
    assert code_of(lambda: dp.put_object("cond/k", b"two", if_version=None)) == "TC_ERR_CONFLICT"
    assert code_of(lambda: dp.put_object("cond/k", b"two", if_version=v1 + 1000)) == "TC_ERR_CONFLICT"
    v2 = dp.put_object("cond/k", b"two", if_version=v1)["version"]
    assert dp.put_object("cond/k", b"three")["version"] > v2  # no condition: unset is not None
    assert dp.get_object("cond/k")[0] == b"three"
    assert code_of(lambda: dp.put_object("cond/k", b"x", if_version=-1)) == "TC_ERR_INVALID_ARGUMENT"


def test_transaction_is_invisible_until_commit(dp, daemon):
    put = dp.put_object("txn/a", b"parked", txn="t-1")
    assert code_of(lambda: dp.get_object("txn/a")) == "TC_ERR_NOT_FOUND"
    versions = daemon.request("POST", "/v1/objects/commit", {"txn": "t-1", "conditions": []})["versions"]
    assert versions["txn/a"] == put["version"]
    assert dp.get_object("txn/a") == (bytearray(b"parked"), put["version"])


def test_into_must_match_and_the_connection_stays(dp):
    dp.put_object("size/k", b"12345678")
    assert code_of(lambda: dp.get_object("size/k", into=bytearray(9))) == "TC_ERR_SHORT_READ"
    assert code_of(lambda: dp.get_object("size/k", into=bytearray(7))) == "TC_ERR_DESTINATION_SIZE"
    assert code_of(lambda: dp.get_object("size/k", expect_bytes=9)) == "TC_ERR_SHORT_READ"
    assert dp.get_object("size/k", expect_bytes=8)[0] == b"12345678"
    assert code_of(lambda: dp.get_object("size/missing")) == "TC_ERR_NOT_FOUND"
    assert code_of(lambda: dp.get_object("size/k", into=bytes(8))) == "TC_ERR_INVALID_ARGUMENT"
    assert code_of(lambda: dp.put_object("no-namespace", b"x")) == "TC_ERR_INVALID_ARGUMENT"
    assert dp.idle_count == 1, "request-level errors keep the one connection"


def test_store_token_and_namespace_limit(dp, daemon):
    daemon.request("PUT", "/v1/namespaces/secure", {"token": "s3cret", "maxBytes": 1000})
    assert code_of(lambda: dp.put_object("secure/a", b"x")) == "TC_ERR_AUTH"
    assert code_of(lambda: dp.put_object("secure/a", b"x", store_token="wrong")) == "TC_ERR_AUTH"
    v = dp.put_object("secure/a", b"x" * 600, store_token="s3cret", ttl_ms=600_000)["version"]
    assert code_of(lambda: dp.get_object("secure/a")) == "TC_ERR_AUTH"
    assert dp.get_object("secure/a", store_token="s3cret") == (bytearray(b"x" * 600), v)
    assert code_of(lambda: dp.put_object("secure/b", b"y" * 600, store_token="s3cret")) == "TC_ERR_BACKPRESSURE"
    assert code_of(
        lambda: dp.put_object("secure/b", b"y" * 600, store_token="s3cret", wait_for_room=True, timeout=0.5)
    ) in ("TC_ERR_TIMEOUT", "TC_ERR_BACKPRESSURE")


def test_typescript_sees_what_python_wrote_and_back(dp, daemon):
    data = pattern(3 << 20, 7)
    version = dp.put_object("cross/py", data)["version"]
    listed = json.loads(daemon.cli("objects", "ls", "cross/", "--json").stdout)["objects"]
    assert [(o["key"], o["size"], o["version"]) for o in listed] == [("cross/py", data.nbytes, version)]
    req = urllib.request.Request(
        daemon.url + "/v1/objects/stat?key=cross%2Fpy", headers={"authorization": f"Bearer {daemon.token}"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        assert json.loads(r.read())["crc"] == F.crc32c(data)
    # The TS SDK reads the Python put and writes an object Python reads (over TCP both ways).
    script = f"""
      const {{ connect }} = await import({json.dumps(str(REPO_ROOT / "dist" / "src" / "index.js"))});
      const {{ createHash }} = await import('node:crypto');
      const c = await connect({{ url: {json.dumps(daemon.url)}, token: {json.dumps(daemon.token)} }});
      const o = c.objects();
      const got = await o.get('cross/py', {{ transport: 'tcp' }});
      const mine = Buffer.alloc(5 << 20); for (let i = 0; i < mine.length; i++) mine[i] = (i * 31) & 0xff;
      const put = await o.put('cross/ts', mine, {{ transport: 'tcp' }});
      const sha = createHash('sha256').update(got.data).digest('hex');
      console.log(JSON.stringify({{ sha, version: got.version, tsVersion: put.version }}));
      await c.close();
    """
    r = subprocess.run([NODE, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["sha"] == hashlib.sha256(data.tobytes()).hexdigest() and out["version"] == version
    got, v = dp.get_object("cross/ts")
    assert v == out["tsVersion"] and got == bytes((i * 31) & 0xFF for i in range(256)) * ((5 << 20) // 256)
    assert CLI.exists()


def test_put_never_exceeds_the_credit():
    size = (10 << 20) + 7
    grants = [2 << 20, 3 << 20, 5 << 20, 1 << 20]

    def script(p: Peer) -> None:
        p.welcome()
        h, put = p.read_control()
        assert h.type == F.PUT and put["size"] == size and put["eager"] == 1 << 20 and "ifVersion" not in put
        granted, landed = put["eager"], 0
        queue = list(grants)
        while landed < size:
            while landed == granted:
                grant = queue.pop(0)
                p.send(F.encode_header(F.CREDIT, h.request_id, 0, grant))
                granted += grant
            got = p.read_frame()
            assert got is not None
            dh, payload = got
            assert dh.type == F.DATA and dh.offset == landed and dh.length <= 4 << 20
            assert landed + dh.length <= granted, "DATA beyond the credit"
            assert F.crc32c(payload) == dh.crc
            landed += dh.length
        p.send(F.encode_control(F.DONE, h.request_id, {"bytes": size, "version": 77}))
        p.drain()

    with FakeDataPlane(script) as srv:
        with DataPlane(srv.address, "t") as plane:
            assert plane.put_object("ns/big", pattern(size)) == {"bytes": size, "version": 77}
        assert not srv.errors, srv.errors


def test_corrupted_get_frame_is_a_checksum_error():
    def script(p: Peer) -> None:
        p.welcome()
        h, get = p.read_control()
        assert get["expectBytes"] == 100 and get["credit"] > 0
        p.send(F.encode_control(F.INFO, h.request_id, {"size": 100, "version": 3}))
        p.data(h.request_id, 0, bytes(100), crc=F.crc32c(bytes(100)) ^ 0xFF)
        p.drain()

    with FakeDataPlane(script) as srv:
        with DataPlane(srv.address, "t") as plane:
            assert code_of(lambda: plane.get_object("ns/k", into=bytearray(100))) == "TC_ERR_CHECKSUM"
            assert plane.idle_count == 0


def test_put_to_a_server_that_grants_nothing_times_out():
    def script(p: Peer) -> None:
        p.welcome()
        p.read_control()  # the PUT; its eager DATA follows, then nothing is granted
        p.drain()

    with FakeDataPlane(script) as srv:
        with DataPlane(srv.address, "t") as plane:
            assert code_of(lambda: plane.put_object("ns/k", bytes(3 << 20), timeout=0.5)) == "TC_ERR_TIMEOUT"
            assert plane.idle_count == 0
        wait_until(lambda: not any(t.is_alive() for t in srv._threads), what="the fake server to read everything")
        assert sum(h.length for _, h, _ in srv.frames_of(F.DATA)) == 1 << 20, "only the eager bytes went out"
