"""Hostile data-plane peers and malformed input: every failure is a tensorcast error, never a raw Python
exception, never a hang, never a half-filled buffer returned as success."""

from __future__ import annotations

import json
import random
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
from fake_dataplane import FakeDataPlane, Peer

import tensorcast
from tensorcast._dataplane import DataPlane
from tensorcast._dataplane import frames as F
from tensorcast._dataplane.decoder import FrameDecoder

VECTORS = Path(__file__).resolve().parents[2] / "test" / "fixtures" / "protocol" / "vectors.json"


def _welcome_with(body):
    def script(p: Peer) -> None:
        p.read_control()
        p.send(F.encode_control(F.WELCOME, 0, body))
        p.drain()

    return script


@pytest.mark.parametrize("body", [{"frameBytes": "lots"}, {"frameBytes": [1]}, {"frameBytes": -1}])
def test_a_malformed_welcome_is_a_protocol_error(body):
    with FakeDataPlane(_welcome_with(body)) as srv:
        dp = DataPlane(srv.address, "t")
        for op in (
            lambda: dp.load_into("tc1:x", None, None, bytearray(64), timeout=10),
            lambda: dp.put_object("ns/k", b"abc", timeout=10),
            lambda: dp.get_object("ns/k", timeout=10),
        ):
            with pytest.raises(tensorcast.TensorcastError) as e:
                op()
            assert e.value.code == "TC_ERR_PROTOCOL", e.value
        dp.close()


def _serve_get(info, done):
    def script(p: Peer) -> None:
        p.welcome()
        h, _get = p.read_control()
        p.send(F.encode_control(F.INFO, h.request_id, info))
        if done is not None:
            p.send(F.encode_control(F.DONE, h.request_id, done))
        p.drain()

    return script


@pytest.mark.parametrize(
    "info,done",
    [
        ({}, None),
        ({"size": "big"}, None),
        ({"size": -5}, None),
        ({"size": 1 << 60}, None),
        ({"size": None}, None),
        ({"size": 0, "version": 1}, {"version": 1}),
        ({"size": 0, "version": 1}, {"bytes": 0, "version": "x"}),
    ],
)
def test_a_malformed_get_answer_is_a_tensorcast_error(info, done):
    with FakeDataPlane(_serve_get(info, done)) as srv:
        dp = DataPlane(srv.address, "t")
        with pytest.raises(tensorcast.TensorcastError) as e:
            dp.get_object("ns/k", timeout=10)
        assert e.value.code in ("TC_ERR_PROTOCOL", "TC_ERR_SHORT_READ"), e.value
        dp.close()


@pytest.mark.parametrize("done", [{}, {"bytes": "3", "version": 1}, {"bytes": 3}, {"bytes": 3, "version": None}])
def test_a_malformed_put_done_is_a_protocol_error(done):
    def script(p: Peer) -> None:
        p.welcome()
        h, _put = p.read_control()
        p.read_frame()  # the eager DATA
        p.send(F.encode_control(F.DONE, h.request_id, done))
        p.drain()

    with FakeDataPlane(script) as srv:
        dp = DataPlane(srv.address, "t")
        with pytest.raises(tensorcast.TensorcastError) as e:
            dp.put_object("ns/k", b"abc", timeout=10)
        assert e.value.code == "TC_ERR_PROTOCOL", e.value
        dp.close()


def test_duplicate_data_offsets_never_pass_for_a_full_load():
    # 8 KiB asked; the peer sends the first 4 KiB twice (8 KiB "received"), then END: the second half of
    # the buffer was never written, so this must fail, not return success.
    def script(p: Peer) -> None:
        p.welcome()
        h, load = p.read_control()
        p.data(h.request_id, load["start"], b"\x01" * 4096)
        p.data(h.request_id, load["start"], b"\x02" * 4096)
        p.send(F.encode_control(F.END, h.request_id, {"bytes": 8192, "route": "local", "source": "replica_hit"}))
        p.drain()

    with FakeDataPlane(script) as srv:
        dp = DataPlane(srv.address, "t")
        with pytest.raises(tensorcast.TensorcastError) as e:
            dp.load_into("tc1:x", None, None, bytearray(8192), timeout=10)
        assert e.value.code == "TC_ERR_PROTOCOL", e.value
        dp.close()


def test_out_of_order_data_is_a_protocol_error():
    def script(p: Peer) -> None:
        p.welcome()
        h, load = p.read_control()
        p.data(h.request_id, 4096, b"\x01" * 4096)
        p.data(h.request_id, 0, b"\x02" * 4096)
        p.send(F.encode_control(F.END, h.request_id, {"bytes": 8192, "route": "local", "source": "replica_hit"}))
        p.drain()

    with FakeDataPlane(script) as srv:
        dp = DataPlane(srv.address, "t")
        with pytest.raises(tensorcast.TensorcastError) as e:
            dp.load_into("tc1:x", None, None, bytearray(8192), timeout=10)
        assert e.value.code == "TC_ERR_PROTOCOL", e.value
        dp.close()


def test_zero_length_data_frames_and_a_full_load_pass():
    def script(p: Peer) -> None:
        p.welcome()
        h, load = p.read_control()
        p.data(h.request_id, 0, b"")
        p.data(h.request_id, 0, b"\x07" * 4096)
        p.data(h.request_id, 4096, b"")
        p.data(h.request_id, 4096, b"\x08" * 4096)
        p.send(F.encode_control(F.END, h.request_id, {"bytes": 8192, "route": "local", "source": "replica_hit"}))
        p.drain()

    with FakeDataPlane(script) as srv:
        dp = DataPlane(srv.address, "t")
        buf = bytearray(8192)
        dp.load_into("tc1:x", None, None, buf, timeout=10)
        assert buf == b"\x07" * 4096 + b"\x08" * 4096
        dp.close()


@pytest.mark.parametrize("payload", [b"not json", b"[1,2]", b'"x"', b"null", b'{"code": 5}', b"\xff\xfe"])
def test_error_frames_with_junk_payloads(payload):
    def script(p: Peer) -> None:
        p.welcome()
        h, _load = p.read_control()
        p.send(F.encode_header(F.ERROR, h.request_id, len(payload), 0, F.crc32c(payload)), payload)
        p.drain()

    with FakeDataPlane(script) as srv:
        dp = DataPlane(srv.address, "t")
        with pytest.raises(tensorcast.TensorcastError) as e:
            dp.load_into("tc1:x", None, None, bytearray(64), timeout=10)
        assert e.value.code == "TC_ERR_PROTOCOL", e.value
        dp.close()


def test_a_peer_that_resets_mid_frame():
    def script(p: Peer) -> None:
        p.welcome()
        h, _load = p.read_control()
        p.send(F.encode_header(F.DATA, h.request_id, 4096, 0, 0), b"\0" * 100)
        p.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")  # RST on close

    with FakeDataPlane(script) as srv:
        dp = DataPlane(srv.address, "t")
        with pytest.raises(tensorcast.TensorcastError) as e:
            dp.load_into("tc1:x", None, None, bytearray(4096), timeout=10)
        assert e.value.code == "TC_ERR_UNAVAILABLE", e.value
        dp.close()


def test_an_http_server_spoken_to_as_a_data_plane_and_the_reverse():
    # A data-plane address that is really an HTTP server (or anything that answers with text).
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(4)
    port = lst.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                s, _ = lst.accept()
            except OSError:
                return
            try:
                s.recv(4096)
                s.sendall(b"\x00\x01garbage that is no HTTP and no frame" * 4)
            except OSError:
                pass
            s.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        dp = DataPlane(f"127.0.0.1:{port}", "t")
        with pytest.raises(tensorcast.TensorcastError) as e:
            dp.load_into("tc1:x", None, None, bytearray(64), timeout=10)
        assert e.value.code == "TC_ERR_PROTOCOL", e.value
        client = tensorcast.Client(f"http://127.0.0.1:{port}", token="t")
        with pytest.raises(tensorcast.TensorcastError) as e:
            client.info()
        assert e.value.code in ("TC_ERR_PROTOCOL", "TC_ERR_UNAVAILABLE"), e.value
        client.close()
    finally:
        lst.close()
        t.join(10)


def _mutations(rng: random.Random, frames):
    for _ in range(400):
        base = bytearray(rng.choice(frames))
        for _ in range(rng.randint(1, 6)):
            op = rng.randrange(4)
            if op == 0 and base:
                base[rng.randrange(len(base))] ^= 1 << rng.randrange(8)
            elif op == 1 and base:
                i = rng.randrange(len(base))
                base[i : i + 4] = rng.randbytes(4) if hasattr(rng, "randbytes") else bytes(rng.randrange(256) for _ in range(4))
            elif op == 2:
                base = base[: rng.randrange(len(base) + 1)]
            else:
                base += bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
        yield bytes(base)
    for _ in range(200):
        yield bytes(rng.randrange(256) for _ in range(rng.randrange(200)))


def test_decoder_fuzz_only_tensorcast_errors():
    vectors = json.loads(VECTORS.read_text())
    frames = []

    def collect(v):
        if isinstance(v, dict):
            for k, x in v.items():
                if isinstance(x, str) and k in ("hex", "frame", "bytes", "encoded") and len(x) % 2 == 0:
                    try:
                        frames.append(bytes.fromhex(x))
                    except ValueError:
                        pass
                else:
                    collect(x)
        elif isinstance(v, list):
            for x in v:
                collect(x)

    collect(vectors)
    assert frames, "no frames found in the shared vectors"
    rng = random.Random(14)
    for blob in _mutations(rng, frames):
        seen = []
        dec = FrameDecoder(lambda h, p, ok: seen.append((h, bytes(p), ok)))
        at = 0
        try:
            while at < len(blob):
                n = rng.randint(1, 64)
                dec.push(blob[at : at + n])
                at += n
            for h, p, ok in seen:
                if h.type != F.DATA:
                    try:
                        F.parse_control(p, "X")
                    except tensorcast.TensorcastError:
                        pass
                    if h.type == F.ERROR:
                        try:
                            tensorcast.errors.from_wire(F.parse_control(p, "ERROR"))
                        except tensorcast.TensorcastError:
                            pass
        except tensorcast.TensorcastError:
            pass


def test_a_closed_data_plane_raises_a_catalogue_code():
    dp = DataPlane("127.0.0.1:1", "t")
    dp.close()
    with pytest.raises(tensorcast.TensorcastError) as e:
        dp.load_into("tc1:x", None, None, bytearray(64), timeout=10)
    assert e.value.code == "TC_ERR_ABORTED", e.value  # as the TypeScript SDK; TC_ERR_CLOSED is no code


def test_every_code_the_package_raises_is_in_the_catalogue():
    import re

    root = Path(tensorcast.__file__).parent
    unknown = []
    for f in root.rglob("*.py"):
        for i, line in enumerate(f.read_text().splitlines(), 1):
            for code in re.findall(r"\"(TC_ERR_[A-Z0-9_]+)\"", line):
                if code not in tensorcast.errors.ERROR_CODES:
                    unknown.append(f"{f.name}:{i} {code}")
    assert not unknown, unknown


GOOD_PLAN = {
    "artifactId": "tc1:x",
    "totalBytes": 16,
    "tensors": [{"name": "a", "dtype": "F32", "shape": [2, 2], "offset": 0, "byteLength": 16}],
}


@pytest.mark.parametrize(
    "patch",
    [
        {"totalBytes": 8},
        {"tensors": [{"name": "a", "dtype": "F32", "shape": [2, 2], "offset": 4, "byteLength": 16}]},
        {"tensors": [{"name": "a", "dtype": "F32", "shape": [3, 2], "offset": 0, "byteLength": 16}]},
        {"tensors": [{"name": "a", "dtype": "F32", "shape": [-2, -2], "offset": 0, "byteLength": 16}]},
        {"tensors": [{"name": "a", "dtype": "Q9", "shape": [2, 2], "offset": 0, "byteLength": 16}]},
        {"tensors": [{"name": "a", "dtype": "F32", "shape": 4, "offset": 0, "byteLength": 16}]},
        {"tensors": {"a": 1}},
        {"tensors": None},
        {"totalBytes": "x"},
    ],
)
def test_a_malformed_plan_is_a_protocol_error(patch):
    from tensorcast._plan import Plan

    assert Plan.from_json(GOOD_PLAN).total_bytes == 16
    with pytest.raises(tensorcast.TensorcastError) as e:
        Plan.from_json({**GOOD_PLAN, **patch})
    assert e.value.code == "TC_ERR_PROTOCOL", e.value
