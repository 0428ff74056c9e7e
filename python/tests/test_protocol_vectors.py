"""The shared data-plane vectors (``test/fixtures/protocol/vectors.json``, written by
``scripts/gen-protocol-vectors.mjs`` from the TypeScript encoder) through the Python ``FrameDecoder``: whole,
byte by byte, through ``read_buffer``/``commit`` (the socket path) and at seeded random splits (the seed is
printed). ``test/contract/protocol-vectors.test.ts`` runs the TypeScript decoder over the same file, so both
languages decode every vector to the same frames and fail corrupt ones with the same code."""

from __future__ import annotations

import json
import os
import random
from typing import Any, Dict, List, Optional, Tuple

import pytest
from conftest import FIXTURES

from tensorcast._dataplane import frames as F
from tensorcast._dataplane.decoder import FrameDecoder
from tensorcast.errors import TensorcastError, tc_error

VECTORS: List[Dict[str, Any]] = json.loads((FIXTURES / "protocol" / "vectors.json").read_text())["vectors"]


def run(
    v: Dict[str, Any], chunks: List[bytes], socket_like: bool = False
) -> Tuple[List[Dict[str, Any]], Optional[str]]:
    frames: List[Dict[str, Any]] = []
    consumed = [0]
    rng = v.get("range")

    def sink(h: F.FrameHeader):
        if rng is not None and (h.offset < rng[0] or h.offset + h.length > rng[1]):
            return None
        return memoryview(bytearray(h.length))

    def on_frame(h: F.FrameHeader, payload: memoryview, ok: bool) -> None:
        if not ok:
            raise tc_error("TC_ERR_CHECKSUM", f"checksum mismatch at offset {h.offset}")
        body = bytes(payload)
        f: Dict[str, Any] = {
            "type": h.type,
            "requestId": h.request_id,
            "length": h.length,
            "offset": h.offset,
            "crc": h.crc,
            "payloadHex": body.hex(),
        }
        if h.type != F.DATA and h.length > 0:
            f["json"] = json.loads(body.decode("utf-8"))
        frames.append(f)
        consumed[0] += F.HEADER_BYTES + h.length

    limits = v.get("limits") or {}
    decoder = FrameDecoder(
        on_frame,
        sink,
        max_control_bytes=limits.get("maxControlBytes", F.MAX_CONTROL_BYTES),
        max_data_bytes=limits.get("maxDataBytes", F.MAX_DATA_BYTES),
    )
    error: Optional[str] = None
    try:
        for chunk in chunks:
            if not socket_like:
                decoder.push(chunk)
                continue
            at = 0
            while at < len(chunk):
                target = decoder.read_buffer()
                n = min(len(target), len(chunk) - at)
                target[:n] = chunk[at : at + n]
                decoder.commit(n)
                at += n
    except TensorcastError as e:
        error = e.code
    if error is None and consumed[0] < sum(len(c) for c in chunks):
        assert not decoder.idle
        error = "TC_ERR_UNAVAILABLE"
    elif error is None:
        assert decoder.idle
    return frames, error


def random_splits(stream: bytes, rnd: random.Random) -> List[bytes]:
    chunks, at = [], 0
    while at < len(stream):
        n = 1 + rnd.randrange(64 if rnd.random() < 0.5 else 40_000)
        chunks.append(stream[at : at + n])
        at += n
    return chunks


def test_the_file_covers_every_frame_type_and_failure() -> None:
    types = {f["type"] for v in VECTORS for f in v["frames"]}
    assert set(range(1, 13)) <= types
    assert {"TC_ERR_PROTOCOL", "TC_ERR_CHECKSUM", "TC_ERR_UNAVAILABLE", None} <= {v["error"] for v in VECTORS}


@pytest.mark.parametrize("v", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector(v: Dict[str, Any]) -> None:
    stream = bytes.fromhex(v["hex"])
    expected = (v["frames"], v["error"])
    assert run(v, [stream]) == expected, "whole"
    assert run(v, [stream], socket_like=True) == expected, "whole, through read_buffer/commit"
    assert run(v, [stream[i : i + 1] for i in range(len(stream))]) == expected, "byte by byte"
    seed = int(os.environ.get("TC_VECTOR_SEED", random.randrange(1 << 31)))
    print(f"vector {v['name']}: random splits with seed {seed} (TC_VECTOR_SEED={seed} repeats them)")
    rnd = random.Random(seed)
    for round_ in range(20):
        assert run(v, random_splits(stream, rnd), socket_like=round_ % 2 == 1) == expected, (
            f"seed {seed}, round {round_}"
        )


def test_encoder_matches_the_typescript_bytes() -> None:
    """The Python encoder writes the same bytes as the TypeScript one for every valid control frame."""
    for v in VECTORS:
        if v["error"] is not None:
            continue
        stream = bytes.fromhex(v["hex"])
        at = 0
        for f in v["frames"]:
            frame = stream[at : at + F.HEADER_BYTES + f["length"]]
            at += len(frame)
            if f["type"] == F.DATA:
                payload = bytes.fromhex(f["payloadHex"])
                assert F.encode_data_header(f["requestId"], f["offset"], payload) + payload == frame
            elif "json" in f:
                assert F.encode_control(f["type"], f["requestId"], f["json"], f["offset"]) == frame, v["name"]
            else:
                assert F.encode_header(f["type"], f["requestId"], 0, f["offset"]) == frame


def test_large_data_frames_hash_in_spans():
    """DATA payloads of several MiB (the running CRC32C is extended in 1 MiB spans) decode at random splits,
    straight into the sink's destination, and a flipped byte anywhere fails the frame's check."""
    payload = bytes(random.Random(5).getrandbits(8) for _ in range(256)) * (3 * 4096 + 17)
    frame = F.encode_data_header(1, 0, payload) + payload
    seed = random.randrange(1 << 31)
    print(f"large frames: seed {seed}")
    rnd = random.Random(seed)
    for flip in (None, 0, len(payload) // 2, len(payload) - 1):
        data = bytearray(frame)
        if flip is not None:
            data[F.HEADER_BYTES + flip] ^= 1
        dest = bytearray(len(payload))
        seen = []
        out = memoryview(dest)
        decoder = FrameDecoder(
            lambda h, p, ok, seen=seen: seen.append(ok), lambda h, out=out: out[h.offset : h.offset + h.length]
        )
        at = 0
        while at < len(data):
            target = decoder.read_buffer()
            n = min(len(target), len(data) - at, 1 + rnd.randrange(3 << 20))
            target[:n] = data[at : at + n]
            decoder.commit(n)
            at += n
        assert seen == [flip is None] and decoder.idle
        assert (dest == payload) == (flip is None)
