"""Handshakes across languages: Python reads what the TypeScript SDK published and the reverse; the msgpack
payloads are read by both decoders alike; the error codes for the same bad inputs are equal."""

from __future__ import annotations

import subprocess

import msgpack
import pytest
from _handshake_helpers import as_ts, rank_meta, ts
from conftest import CLI, NODE

import tensorcast
from tensorcast.handshake import HandshakeClient, decode_rank_metadata, encode_rank_metadata


def test_python_reads_what_typescript_published(listener):
    meta = rank_meta("ts-engine", 1, tp_size=2)
    out = ts("hs-publish", url=listener.handshake_url, token=listener.token, meta=as_ts(meta))
    assert out["answer"]["engineId"] == "ts-engine"
    ts_payload = bytes.fromhex(ts("hs-encode", meta=as_ts(meta))["payload"])
    with HandshakeClient(listener.handshake_url, listener.token) as hs:
        got = hs.fetch_rank("ts-engine", 1, 0, expect_hash=meta.compatibility_hash)
        assert got.meta == meta  # every field, the uint64 addresses and the extra map included
        assert got.payload == ts_payload  # the bytes TypeScript encoded, as published


def test_typescript_reads_what_python_published(listener, tmp_path):
    meta = rank_meta("py-engine", 0, tp_size=1)
    with HandshakeClient(listener.handshake_url, listener.token) as hs:
        hs.publish(meta)
    out = ts("hs-get", url=listener.handshake_url, token=listener.token, engineId="py-engine", tpRank=0, dpRank=0,
             expectHash=meta.compatibility_hash)
    assert out["meta"] == as_ts(meta)
    assert bytes.fromhex(out["payload"]) == encode_rank_metadata(meta)
    # and the CLI a user runs: `tensorcast handshake get --out F` writes the payload exactly as published
    out_file = tmp_path / "payload.msgpack"
    r = subprocess.run([NODE, str(CLI), "handshake", "get", "py-engine", "--tp-rank", "0", "--dp-rank", "0", "--url",
                        listener.handshake_url, "--token-file", str(listener.token_file), "--out", str(out_file)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert out_file.read_bytes() == encode_rank_metadata(meta)


def test_python_reads_what_the_cli_published(listener, tmp_path):
    meta = rank_meta("cli-engine", 0, tp_size=1)
    payload = tmp_path / "rank.msgpack"
    payload.write_bytes(bytes.fromhex(ts("hs-encode", meta=as_ts(meta))["payload"]))
    r = subprocess.run([NODE, str(CLI), "handshake", "publish", "cli-engine", "--tp-rank", "0", "--dp-rank", "0",
                        "--file", str(payload), "--url", listener.handshake_url,
                        "--token-file", str(listener.token_file)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    with HandshakeClient(listener.handshake_url, listener.token) as hs:
        assert hs.get("cli-engine", 0, 0) == meta


def test_payloads_decode_alike_in_both_languages():
    meta = rank_meta()
    ts_payload = bytes.fromhex(ts("hs-encode", meta=as_ts(meta))["payload"])
    assert decode_rank_metadata(ts_payload) == meta
    assert ts("hs-decode", payload=encode_rank_metadata(meta).hex())["meta"] == as_ts(meta)


def _hostile():
    good = rank_meta().to_wire()
    cases = [b"", b"\xc1", b"\x80", encode_rank_metadata(rank_meta()) + b"\x00", b"\x92\x01\x02"]
    for change in ({"v": 2}, {"tp_rank": 5}, {"engine_id": "a b"}, {"agent_metadata": "str"}, {"extra": 3},
                   {"kv_caches_base_addr": [-5]}, {"zzz": 1}, {"kv_cache_layout": "x" * 40}, {"block_size": 1.5}):
        raw = dict(good)
        raw.update(change)
        cases.append(msgpack.packb(raw, use_bin_type=True))
    return cases


@pytest.mark.parametrize("payload", _hostile(), ids=lambda p: p[:12].hex() or "empty")
def test_malformed_payload_codes_are_equal(payload):
    with pytest.raises(tensorcast.TensorcastError) as info:
        decode_rank_metadata(payload)
    assert ts("hs-decode", payload=payload.hex()).get("error") == info.value.code == "TC_ERR_MALFORMED"


def test_wrong_token_and_incompatible_hash_codes_are_equal(listener):
    meta = rank_meta("codes-engine", 0, tp_size=1)
    with HandshakeClient(listener.handshake_url, listener.token) as hs:
        hs.publish(meta)
    cases = [
        (dict(token="wrong"), "TC_ERR_AUTH"),
        (dict(token=listener.token, expectHash="other-hash"), "TC_ERR_INCOMPATIBLE"),
        (dict(token=listener.token, engineId="no-such-engine"), "TC_ERR_NOT_FOUND"),
        (dict(token=listener.token, tpRank=4096), "TC_ERR_INVALID_ARGUMENT"),
    ]
    for change, code in cases:
        args = dict(engineId="codes-engine", tpRank=0, dpRank=0)
        args.update(change)
        ts_out = ts("hs-get", url=listener.handshake_url, **args)
        with HandshakeClient(listener.handshake_url, args["token"]) as hs:
            with pytest.raises(tensorcast.TensorcastError) as info:
                hs.get(args["engineId"], args["tpRank"], args["dpRank"], expect_hash=args.get("expectHash"))
        assert (info.value.code, ts_out.get("error")) == (code, code), change
