"""``DataPlane.load_into`` (the Python TCP transport) against real daemons, and against a scripted fake server
for the frames no daemon sends. Proves: the bytes equal what the TypeScript CLI loads over TCP (whole artifact
and a TP view), a load split over several connections, connection reuse, a wrong token (TC_ERR_AUTH naming the
token's source), an unknown artifact (the connection stays usable), deadlines on both sides
(TC_ERR_TIMEOUT), a daemon killed mid-load (TC_ERR_UNAVAILABLE, no hang), a corrupted DATA frame
(TC_ERR_CHECKSUM), DATA outside the range or beyond the credit (TC_ERR_PROTOCOL), a connection-level ERROR,
and that the first failing part cancels the others."""

from __future__ import annotations

import json
import os
import signal
import struct
import threading
from pathlib import Path
from typing import Any, Dict

import numpy as np
import pytest
from conftest import require_module, wait_until
from fake_dataplane import FakeDataPlane, Peer

import tensorcast
import tensorcast._dataplane.pool as pool_module
from tensorcast._dataplane import DataPlane
from tensorcast._dataplane import frames as F

KEY = "model:hf:v1"


@pytest.fixture
def daemon(make_daemon, hf_model):
    d = make_daemon()
    d.import_model(hf_model, KEY)
    return d


@pytest.fixture
def small_parts(monkeypatch):
    """Splits loads in parts of 64 KiB, so a small model goes over several connections."""
    monkeypatch.setattr(pool_module, "MIN_PART_BYTES", 64 << 10)


def cli_tensors(d, tmp_path: Path, *args: str) -> Dict[str, bytes]:
    """The tensors ``tensorcast load --out`` (the TypeScript SDK, over TCP) writes, as raw bytes by name."""
    out = tmp_path / f"cli-{len(os.listdir(tmp_path))}.safetensors"
    d.cli("load", KEY, "--out", str(out), *args)
    raw = out.read_bytes()
    (n,) = struct.unpack_from("<Q", raw, 0)
    header = json.loads(raw[8 : 8 + n])
    base = 8 + n
    return {
        name: raw[base + t["data_offsets"][0] : base + t["data_offsets"][1]]
        for name, t in header.items()
        if name != "__metadata__"
    }


def assert_same_as_cli(plan, buf, expected: Dict[str, bytes]) -> None:
    assert set(expected) == {t.name for t in plan.tensors}
    for t in plan.tensors:
        assert bytes(buf[t.offset : t.offset + t.byte_length]) == expected[t.name], t.name


@pytest.mark.parametrize("tp", [None, (2, 1)], ids=["whole", "tp2-rank1"])
def test_load_matches_the_typescript_cli(daemon, tmp_path, tp):
    with tensorcast.Client(daemon.url, token=daemon.token) as client:
        plan = client.plan(KEY, tp=tp)
        buf = np.zeros(plan.total_bytes, np.uint8)
        stats = client.dataplane.load_into(plan.artifact_id, plan.view, plan.view_id, buf)
        assert stats["bytes"] == plan.total_bytes and stats["route"] == "local" and stats["connections"] == 1
        assert stats["source"] in ("replica_hit", "materialized", "streamed") and stats["seconds"] > 0
        args = () if tp is None else ("--tp-size", str(tp[0]), "--tp-rank", str(tp[1]))
        assert_same_as_cli(plan, buf, cli_tensors(daemon, tmp_path, *args))


def test_several_connections_ranges_and_reuse(daemon, small_parts):
    with tensorcast.Client(daemon.url, token=daemon.token) as client:
        plan = client.plan(KEY, tp=(2, 0))
        dp: DataPlane = client.dataplane
        whole = np.zeros(plan.total_bytes, np.uint8)
        assert dp.load_into(plan.artifact_id, plan.view, plan.view_id, whole, connections=1)["connections"] == 1
        split = np.zeros(plan.total_bytes, np.uint8)
        stats = dp.load_into(plan.artifact_id, plan.view, plan.view_id, split, connections=4)
        assert stats["connections"] == 4 and np.array_equal(whole, split)
        assert dp.idle_count == 4
        before = list(dp._idle)
        dp.load_into(plan.artifact_id, plan.view, plan.view_id, split, connections=4)
        assert sorted(map(id, dp._idle)) == sorted(map(id, before)), "the pooled connections were reused"
        # A sub-range into a larger buffer, at an odd offset; a bytearray and a memoryview slice as destinations.
        start, end = 12_345, plan.total_bytes - 999
        part = bytearray(end - start + 100)
        dp.load_into(plan.artifact_id, plan.view, plan.view_id, part, start, end, connections=3)
        assert bytes(part[: end - start]) == whole[start:end].tobytes() and part[end - start :] == bytearray(100)
        big = np.zeros(plan.total_bytes + 10, np.uint8)
        dp.load_into(plan.artifact_id, plan.view, plan.view_id, memoryview(big)[10:], connections=2)
        assert np.array_equal(big[10:], whole)
        # Loads from several threads at once share the pool.
        outs = [np.zeros(plan.total_bytes, np.uint8) for _ in range(3)]
        threads = [
            threading.Thread(target=dp.load_into, args=(plan.artifact_id, plan.view, plan.view_id, o)) for o in outs
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(np.array_equal(o, whole) for o in outs)


def test_bad_arguments(daemon):
    dp = DataPlane(daemon.data_address, daemon.token)
    with dp:
        with pytest.raises(tensorcast.TensorcastError) as e:
            dp.load_into("tc1:x", None, None, bytes(10))
        assert e.value.code == "TC_ERR_INVALID_ARGUMENT"
        with pytest.raises(tensorcast.TensorcastError) as e:
            dp.load_into("tc1:x", None, None, bytearray(10), 0, 20)
        assert e.value.code == "TC_ERR_DESTINATION_SIZE"
        with pytest.raises(tensorcast.TensorcastError) as e:
            dp.load_into("tc1:x", None, None, bytearray(10), route="fast")
        assert e.value.code == "TC_ERR_INVALID_ARGUMENT"
    with pytest.raises(tensorcast.TensorcastError) as e:
        DataPlane("no-port", "t").load_into("tc1:x", None, None, bytearray(10))
    assert e.value.code == "TC_ERR_INVALID_ARGUMENT"


def test_wrong_token_names_its_source(daemon):
    dp = DataPlane(daemon.data_address, "wrong-token", "TENSORCAST_TOKEN")
    with pytest.raises(tensorcast.AuthError) as e:
        dp.load_into("tc1:x", None, None, bytearray(10))
    assert e.value.code == "TC_ERR_AUTH" and "TENSORCAST_TOKEN" in str(e.value)
    assert e.value.details["tokenSource"] == "TENSORCAST_TOKEN"
    assert dp.idle_count == 0
    dp.close()


def test_unknown_artifact_keeps_the_connection(daemon):
    with tensorcast.Client(daemon.url, token=daemon.token) as client:
        plan = client.plan(KEY)
        dp = client.dataplane
        with pytest.raises(tensorcast.NotFoundError) as e:
            dp.load_into("tc1:" + "0" * 64, None, None, bytearray(100))
        assert e.value.code == "TC_ERR_NOT_FOUND"
        assert dp.idle_count == 1, "a request-level ERROR leaves the connection usable"
        kept = dp._idle[0]
        buf = np.zeros(plan.total_bytes, np.uint8)
        dp.load_into(plan.artifact_id, plan.view, plan.view_id, buf)
        assert dp._idle == [kept]


def test_deadline(daemon):
    with tensorcast.Client(daemon.url, token=daemon.token) as client:
        plan = client.plan(KEY, tp=(2, 1))
        with pytest.raises(tensorcast.TimeoutError) as e:
            client.dataplane.load_into(
                plan.artifact_id, plan.view, plan.view_id, np.zeros(plan.total_bytes, np.uint8), timeout=1e-4
            )
        assert e.value.code == "TC_ERR_TIMEOUT"


def test_client_deadline_on_a_stalled_server():
    def script(p: Peer) -> None:
        p.welcome()
        h, load = p.read_control()
        p.data(h.request_id, load["start"], bytes(1000))  # then nothing
        p.drain()

    with FakeDataPlane(script) as srv:
        dp = DataPlane(srv.address, "t")
        buf = bytearray(4096)
        with pytest.raises(tensorcast.TimeoutError) as e:
            dp.load_into("tc1:x", None, None, buf, timeout=0.5)
        assert e.value.code == "TC_ERR_TIMEOUT" and dp.idle_count == 0
        loads = srv.frames_of(F.LOAD)
        assert json.loads(loads[0][2])["timeoutMs"] <= 500
        dp.close()


def test_daemon_killed_mid_load(daemon):
    with tensorcast.Client(daemon.url, token=daemon.token) as client:
        plan = client.plan(KEY, tp=(2, 1))
        dp = client.dataplane
        buf = np.zeros(plan.total_bytes, np.uint8)
        dp.load_into(plan.artifact_id, plan.view, plan.view_id, buf)  # a pooled, authenticated connection
        os.kill(daemon.proc.pid, signal.SIGSTOP)  # the LOAD goes out but nothing answers
        box: Dict[str, Any] = {}

        def run() -> None:
            try:
                dp.load_into(plan.artifact_id, plan.view, plan.view_id, buf, timeout=120)
            except tensorcast.TensorcastError as err:
                box["error"] = err

        t = threading.Thread(target=run)
        t.start()
        wait_until(lambda: dp.idle_count == 0, what="the load took the pooled connection")
        daemon.kill()
        t.join(60)
        assert not t.is_alive(), "the load hung after the daemon died"
        assert box["error"].code == "TC_ERR_UNAVAILABLE"
        with pytest.raises(tensorcast.TensorcastError) as e:
            dp.load_into(plan.artifact_id, plan.view, plan.view_id, buf)
        assert e.value.code == "TC_ERR_UNAVAILABLE"


def _serve_load(corrupt: str):
    def script(p: Peer) -> None:
        p.welcome()
        h, load = p.read_control()
        rid, start, end = h.request_id, load["start"], load["end"]
        payload = bytes(range(256)) * ((end - start) // 256)
        if corrupt == "crc":
            p.data(rid, start, payload[:1024])
            p.data(rid, start + 1024, payload[1024:], crc=F.crc32c(payload[1024:]) ^ 1)
        elif corrupt == "outside":
            p.data(rid, end, payload[:16])
        elif corrupt == "error0":
            p.send(F.encode_control(F.ERROR, 0, {"code": "TC_ERR_PROTOCOL", "message": "go away", "retryable": False}))
        elif corrupt == "truncated":
            p.send(F.encode_header(F.DATA, rid, len(payload), start, F.crc32c(payload)), payload[:100])
            return
        p.drain()

    return script


@pytest.mark.parametrize(
    "corrupt,code",
    [
        ("crc", "TC_ERR_CHECKSUM"),
        ("outside", "TC_ERR_PROTOCOL"),
        ("error0", "TC_ERR_PROTOCOL"),
        ("truncated", "TC_ERR_UNAVAILABLE"),
    ],
)
def test_bad_frames_from_a_fake_server(corrupt, code):
    with FakeDataPlane(_serve_load(corrupt)) as srv:
        dp = DataPlane(srv.address, "t")
        with pytest.raises(tensorcast.TensorcastError) as e:
            dp.load_into("tc1:x", None, None, bytearray(8192), timeout=30)
        assert e.value.code == code
        assert dp.idle_count == 0, "a connection that saw an error is discarded"
        dp.close()


def test_data_beyond_the_credit_is_a_protocol_error(monkeypatch):
    monkeypatch.setattr("tensorcast._dataplane.connection.WINDOW_BYTES", 4096)

    def script(p: Peer) -> None:
        p.welcome()
        h, load = p.read_control()
        assert load["credit"] == 4096
        p.data(h.request_id, 0, bytes(4096))
        p.data(h.request_id, 4096, bytes(4096))  # before the client granted anything back: still fine, granted
        p.data(h.request_id, 8192, bytes(8192))  # beyond: 4096 + 4096 granted back, 16384 announced
        p.drain()

    with FakeDataPlane(script) as srv:
        dp = DataPlane(srv.address, "t")
        with pytest.raises(tensorcast.TensorcastError) as e:
            dp.load_into("tc1:x", None, None, bytearray(1 << 20), timeout=30)
        assert e.value.code == "TC_ERR_PROTOCOL" and "credit" in str(e.value)
        dp.close()


def test_first_failing_part_cancels_the_others(small_parts):
    barrier = threading.Barrier(4, timeout=20)

    def script(p: Peer) -> None:
        p.welcome()
        h, load = p.read_control()
        barrier.wait()
        if load["start"] == 0:
            p.send(
                F.encode_control(
                    F.ERROR, h.request_id, {"code": "TC_ERR_NOT_FOUND", "message": "gone", "reason": "not_found"}
                )
            )
        p.drain()

    with FakeDataPlane(script) as srv:
        dp = DataPlane(srv.address, "t")
        buf = bytearray(4 * (64 << 10))
        with pytest.raises(tensorcast.NotFoundError) as e:
            dp.load_into("tc1:x", None, None, buf, timeout=60)
        assert e.value.details["reason"] == "not_found"
        wait_until(lambda: len(srv.frames_of(F.CANCEL)) == 3, what="CANCEL on the three other connections")
        assert dp.idle_count == 1, "only the connection whose request failed cleanly is kept"
        assert buf == bytearray(len(buf)), "no byte landed"
        dp.close()


def test_torch_tensor_destination(daemon):
    torch = require_module("torch")
    with tensorcast.Client(daemon.url, token=daemon.token) as client:
        plan = client.plan(KEY, tp=(2, 1))
        ref = np.zeros(plan.total_bytes, np.uint8)
        client.dataplane.load_into(plan.artifact_id, plan.view, plan.view_id, ref)
        t = torch.zeros(plan.total_bytes // 2, dtype=torch.bfloat16)
        client.dataplane.load_into(plan.artifact_id, plan.view, plan.view_id, t)
        assert t.view(torch.uint8).numpy().tobytes() == ref.tobytes()
        with pytest.raises(tensorcast.TensorcastError) as e:
            client.dataplane.load_into(plan.artifact_id, plan.view, plan.view_id, t.view(-1, 2).t())
        assert e.value.code == "TC_ERR_INVALID_ARGUMENT"


def test_a_pooled_connection_the_daemon_closed_is_not_reused(make_daemon, hf_model):
    """An idle pooled connection whose daemon went away is noticed at checkout (a new one is dialled)."""
    d = make_daemon()
    d.import_model(hf_model, KEY)
    with tensorcast.Client(d.url, token=d.token) as client:
        plan = client.plan(KEY)
        dp = client.dataplane
        buf = np.zeros(plan.total_bytes, np.uint8)
        dp.load_into(plan.artifact_id, plan.view, plan.view_id, buf)
        stale = list(dp._idle)
        assert stale and all(c.alive() for c in stale)
        d.kill()
        wait_until(lambda: not stale[0].alive(), what="the pooled connection to see the close")
        with pytest.raises(tensorcast.TensorcastError) as e:
            dp.load_into(plan.artifact_id, plan.view, plan.view_id, buf)
        assert e.value.code == "TC_ERR_UNAVAILABLE" and "cannot connect" in str(e.value)
