"""The Python handshake client against a real daemon's handshake listener (--handshake-listen): publish, get,
engines, renew, remove; the compatibility hash checked from the header before decoding; strict decoding;
background handshakes with one in flight per engine (a slow counting relay in front of the listener); retries."""

from __future__ import annotations

import threading

import msgpack
import pytest
from _handshake_helpers import SlowRelay, rank_meta, wait_for

import tensorcast
from tensorcast.handshake import (
    HandshakeClient,
    Handshakes,
    RankMetadata,
    decode_rank_metadata,
    encode_rank_metadata,
)


def test_encode_decode_round_trip():
    meta = rank_meta()
    payload = encode_rank_metadata(meta)
    back = decode_rank_metadata(payload)
    assert back == meta
    raw = msgpack.unpackb(payload, raw=False)
    assert list(raw)[0] == "v" and raw["v"] == 1 and "engine_id" in raw and "kv_caches_base_addr" in raw


@pytest.mark.parametrize(
    "mutate",
    [
        lambda m: m.update(unknown=1),
        lambda m: m.update(v=2),
        lambda m: m.update(tp_rank=2),  # not below tp_size
        lambda m: m.update(tp_rank=-1),
        lambda m: m.update(tp_rank=True),
        lambda m: m.update(engine_id="bad id"),
        lambda m: m.update(engine_id="x" * 129),
        lambda m: m.update(engine_id="ok\n"),
        lambda m: m.update(agent_metadata="text"),
        lambda m: m.update(kv_caches_base_addr=[-1]),
        lambda m: m.update(block_lens="1"),
        lambda m: m.update(kv_cache_layout=""),
        lambda m: m.update(kv_cache_layout="x" * 33),
        lambda m: m.update(extra=[1]),
        lambda m: m.update(extra={f"k{i}": i for i in range(65)}),
        lambda m: m.pop("num_blocks"),
    ],
)
def test_strict_decoding_is_malformed(mutate):
    raw = rank_meta().to_wire()
    mutate(raw)
    with pytest.raises(tensorcast.TensorcastError) as info:
        decode_rank_metadata(msgpack.packb(raw, use_bin_type=True))
    assert info.value.code == "TC_ERR_MALFORMED"


def test_trailing_bytes_and_garbage_are_malformed():
    payload = encode_rank_metadata(rank_meta())
    for bad in (payload + b"\x00", payload[:-1], b"", b"\xc1", b"\x91\x01"):
        with pytest.raises(tensorcast.TensorcastError) as info:
            decode_rank_metadata(bad)
        assert info.value.code == "TC_ERR_MALFORMED", bad[:8]
    with pytest.raises(tensorcast.TensorcastError) as info:
        decode_rank_metadata(payload, max_bytes=10)
    assert info.value.code == "TC_ERR_TOO_LARGE"


def test_publish_get_engines_renew_remove(listener):
    with HandshakeClient(listener.handshake_url, listener.token) as hs:
        assert hs.health()["ok"] is True
        answers = [hs.publish(rank_meta("eng-a", r)) for r in (0, 1)]
        assert answers[0]["engineId"] == "eng-a" and answers[0]["ttlMs"] > 0
        got = hs.fetch_rank("eng-a", 1, 0, expect_hash="vllm-0.9-llama-bf16")
        assert got.meta == rank_meta("eng-a", 1)
        assert got.payload == encode_rank_metadata(rank_meta("eng-a", 1))
        assert got.expires_at_ms >= answers[1]["expiresAtMs"] - 1000
        summary = hs.engine("eng-a")
        assert summary["incarnation"] == "inc-1" and sorted(r["tpRank"] for r in summary["ranks"]) == [0, 1]
        assert "eng-a" in [e["engineId"] for e in hs.engines()]
        assert hs.renew("eng-a", "inc-1")["renewed"] == 2
        with pytest.raises(tensorcast.NotFoundError):
            hs.renew("eng-a", "inc-other")
        # raw payload bytes are validated and sent unchanged
        hs.publish(encode_rank_metadata(rank_meta("eng-a", 0)))
        assert hs.remove("eng-a", "inc-1")["removed"] == 2
        with pytest.raises(tensorcast.NotFoundError) as info:
            hs.get("eng-a", 0, 0)
        assert info.value.code == "TC_ERR_NOT_FOUND"


def test_errors_carry_the_codes(listener):
    with HandshakeClient(listener.handshake_url, "wrong-token") as bad:
        with pytest.raises(tensorcast.AuthError) as info:
            bad.engines()
        assert info.value.code == "TC_ERR_AUTH"
    with HandshakeClient(listener.handshake_url, listener.token) as hs:
        hs.publish(rank_meta("eng-b", 0))
        with pytest.raises(tensorcast.TensorcastError) as info:
            hs.get("eng-b", 0, 0, expect_hash="another-hash")
        assert info.value.code == "TC_ERR_INCOMPATIBLE"
        with pytest.raises(tensorcast.TensorcastError) as info:
            hs.publish(b"\x80not msgpack")
        assert info.value.code == "TC_ERR_MALFORMED"
        # the listener's own check of a payload sent around the client's validation
        with pytest.raises(tensorcast.TensorcastError) as info:
            hs.http.request("PUT", "/v1/engines/eng-b/ranks/0/0", b"\x81\xa1v\x01", headers={
                "content-type": "application/msgpack",
                "x-tensorcast-compat-hash": "h",
                "x-tensorcast-incarnation": "i",
            })
        assert info.value.code == "TC_ERR_MALFORMED"
        for bad_args in (("bad id", 0, 0), ("eng-b", -1, 0), ("eng-b", 0, 4096)):
            with pytest.raises(tensorcast.InvalidArgumentError):
                hs.get(*bad_args)
        hs.remove("eng-b")


def test_the_hash_is_checked_from_the_header_before_the_body(listener):
    """A relay that rewrites the body to garbage: with a wrong expected hash the answer is refused as
    incompatible (never decoded: not TC_ERR_MALFORMED); with the right one the garbage is TC_ERR_MALFORMED."""
    import http.server

    class Garbage(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("x-tensorcast-compat-hash", "served-hash")
            self.send_header("content-length", "4")
            self.end_headers()
            self.wfile.write(b"\xc1\xc1\xc1\xc1")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Garbage)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        with HandshakeClient(f"http://127.0.0.1:{server.server_address[1]}", "t") as hs:
            with pytest.raises(tensorcast.TensorcastError) as info:
                hs.get("eng", 0, 0, expect_hash="wanted-hash")
            assert info.value.code == "TC_ERR_INCOMPATIBLE"
            assert info.value.details["actual"] == "served-hash" and info.value.details["expected"] == "wanted-hash"
            with pytest.raises(tensorcast.TensorcastError) as info:
                hs.get("eng", 0, 0, expect_hash="served-hash")
            assert info.value.code == "TC_ERR_MALFORMED"
    finally:
        server.shutdown()
        server.server_close()


def test_one_handshake_in_flight_per_engine(listener):
    with HandshakeClient(listener.handshake_url, listener.token) as direct:
        for r in range(4):
            direct.publish(rank_meta("eng-c", r, tp_size=4))
        direct.publish(rank_meta("eng-d", 0, tp_size=1))
    relay = SlowRelay(listener.handshake_url)
    try:
        with Handshakes(relay.url, listener.token, timeout_ms=30000, max_workers=4) as hs:
            first = hs.handshake("eng-c", [(0, 0), (1, 0)])
            wait_for(lambda: relay.held("eng-c") == 2, what="the first handshake's two GETs at the relay")
            assert hs.handshake("eng-c", [(0, 0), (1, 0)]) is first  # the handshake in flight, joined
            joined = hs.get_async("eng-c", 1, 0)  # rank 1 is in flight: the same future
            parked = [hs.get_async("eng-c", 2, 0), hs.get_async("eng-c", 3, 0), hs.get_async("eng-c", 2, 0)]
            other = hs.get_async("eng-d", 0, 0)  # another engine is not held back
            wait_for(lambda: relay.held("eng-d") == 1, what="the other engine's GET")
            assert relay.held("eng-c") == 2  # the parked ranks wait for the handshake in flight
            assert parked[0] is parked[2]
            relay.gate.set()
            metas = first.result(30)
            assert [m.tp_rank for m in metas] == [0, 1]
            assert joined.result(30) is metas[1]
            assert [f.result(30).tp_rank for f in parked] == [2, 3, 2]
            assert other.result(30).engine_id == "eng-d"
            gets = relay.rank_gets("eng-c")
            assert sorted(gets) == sorted(f"GET /v1/engines/eng-c/ranks/{r}/0" for r in range(4)), gets
            assert relay.max_holding["eng-c"] == 2  # one handshake (its ranks in parallel) at a time
            s = hs.stats()
            assert s["max_in_flight_per_engine"] == 1 and s["engines"]["eng-c"]["handshakes"] == 2
            # cached: no I/O
            assert hs.get("eng-c", 3, 0).tp_rank == 3 and len(relay.rank_gets("eng-c")) == 4
            assert hs.stats()["cache_hits"] >= 1
            hs.invalidate("eng-c")
            assert hs.get("eng-c", 3, 0).tp_rank == 3 and len(relay.rank_gets("eng-c")) == 5
    finally:
        relay.close()


def test_many_threads_share_one_handshake(listener):
    with HandshakeClient(listener.handshake_url, listener.token) as direct:
        direct.publish(rank_meta("eng-e", 0, tp_size=1))
    relay = SlowRelay(listener.handshake_url)
    try:
        with Handshakes(relay.url, listener.token, timeout_ms=30000) as hs:
            results = []
            threads = [threading.Thread(target=lambda: results.append(hs.get("eng-e", 0, 0))) for _ in range(16)]
            for t in threads:
                t.start()
            wait_for(lambda: relay.held("eng-e") == 1, what="the GET at the relay")
            relay.gate.set()
            for t in threads:
                t.join(30)
            assert len(results) == 16 and all(r == rank_meta("eng-e", 0, tp_size=1) for r in results)
            assert len(relay.rank_gets("eng-e")) == 1
    finally:
        relay.close()


def test_retry_until_the_engine_publishes(listener):
    with Handshakes(listener.handshake_url, listener.token, timeout_ms=20000,
                    retry={"base_delay_ms": 20, "max_delay_ms": 100, "max_attempts": 1000}) as hs:
        fut = hs.get_async("eng-late", 0, 0)
        wait_for(lambda: hs.stats()["retries"] >= 2, what="a retry after not found")
        assert not fut.done()
        hs.publish(rank_meta("eng-late", 0, tp_size=1))
        assert fut.result(20).engine_id == "eng-late"
    with Handshakes(listener.handshake_url, listener.token, failure_policy="fail") as hs:
        with pytest.raises(tensorcast.NotFoundError):
            hs.get("eng-never", 0, 0)
        assert hs.stats()["retries"] == 0
    with Handshakes(listener.handshake_url, "wrong", timeout_ms=20000) as hs:
        with pytest.raises(tensorcast.AuthError):  # never retried
            hs.get("eng-late", 0, 0)
        assert hs.stats()["retries"] == 0


def test_close_fails_waiting_futures(listener):
    relay = SlowRelay(listener.handshake_url)
    try:
        hs = Handshakes(relay.url, listener.token, timeout_ms=30000)
        fut = hs.get_async("eng-f", 0, 0)
        wait_for(lambda: relay.held("eng-f") == 1, what="the GET at the relay")
        closer = threading.Thread(target=hs.close)
        closer.start()
        with pytest.raises(tensorcast.TensorcastError) as info:
            fut.result(30)
        assert info.value.code == "TC_ERR_ABORTED"
        relay.gate.set()
        closer.join(30)
        assert not closer.is_alive()
        with pytest.raises(tensorcast.TensorcastError) as info:
            hs.get("eng-f", 0, 0)
        assert info.value.code == "TC_ERR_ABORTED"
    finally:
        relay.close()


def test_client_handshakes_uses_the_daemon_listener(listener):
    with tensorcast.Client(listener.url, listener.token) as client:
        with client.handshakes() as hs:
            hs.publish(rank_meta("eng-g", 0, tp_size=1))
            assert isinstance(hs.get("eng-g", 0, 0), RankMetadata)
    # close() joined its threads
    assert not [t for t in threading.enumerate() if t.name.startswith("tensorcast-handshake")]


def _openssl(*args: str) -> None:
    import subprocess

    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _certs(d):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, both signed by it (as
    test/helpers/tls-certs.ts makes them)."""
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *key, "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"), "-days", "2",
             "-subj", "/CN=test-ca")
    for name, ext in (("server", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
                      ("client", "extendedKeyUsage=clientAuth")):
        (d / f"{name}.ext").write_text(ext + "\n")
        _openssl("req", *key, "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.csr"), "-subj", f"/CN={name}")
        _openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.pem"), "-CAkey", str(d / "ca.key"),
                 "-CAcreateserial", "-out", str(d / f"{name}.pem"), "-days", "2", "-extfile", str(d / f"{name}.ext"))


def test_https_with_client_certificates(tmp_path):
    """`tensorcast handshake serve` over https requiring client certificates (mTLS): the client passes an
    ssl.SSLContext with the CA and its certificate; without the certificate the listener refuses it."""
    import shutil
    import subprocess

    from conftest import CLI, NODE, skip_or_fail

    from tensorcast.handshake import tls_context

    if shutil.which("openssl") is None:
        skip_or_fail("openssl is not on PATH: cannot make test certificates")
    _certs(tmp_path)
    (tmp_path / "token").write_text("hs-token\n")
    proc = subprocess.Popen(
        [NODE, str(CLI), "handshake", "serve", "--listen", "127.0.0.1:0", "--token-file", str(tmp_path / "token"),
         "--tls-cert", str(tmp_path / "server.pem"), "--tls-key", str(tmp_path / "server.key"),
         "--tls-client-ca", str(tmp_path / "ca.pem")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("handshake listening on https://"), line
        url = line.split()[3]
        ctx = tls_context(str(tmp_path / "ca.pem"), str(tmp_path / "client.pem"), str(tmp_path / "client.key"))
        with Handshakes(url, "hs-token", ssl_context=ctx) as hs:
            hs.publish(rank_meta("tls-engine", 0, tp_size=1))
            assert hs.get("tls-engine", 0, 0) == rank_meta("tls-engine", 0, tp_size=1)
        with HandshakeClient(url, "hs-token", ssl_context=tls_context(str(tmp_path / "ca.pem"))) as no_cert:
            with pytest.raises(tensorcast.TensorcastError) as info:
                no_cert.engines()
            assert info.value.code == "TC_ERR_UNAVAILABLE"
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()


def test_publisher_keeps_the_rank_published(tmp_path):
    """A publisher against a listener with a 1 s TTL: the rank outlives many TTLs; removed, it is published again
    by the next round; stop(remove=True) deletes it."""
    from conftest import MODELS_ROOT, Daemon

    flags = ["--import-root", str(MODELS_ROOT), "--handshake-listen", "127.0.0.1:0", "--handshake-ttl", "1"]
    d = Daemon(tmp_path / "d", flags)
    try:
        with Handshakes(d.handshake_url, d.token) as hs:
            p = hs.publisher(rank_meta("kept", 0, tp_size=1), renew_every_ms=100)
            assert p.answer["ttlMs"] == 1000
            wait_for(lambda: p.stats()["renewals"] >= 15, what="15 renewals (1.5 s, past the 1 s TTL)")
            assert hs.fetch_rank("kept", 0, 0).meta.engine_id == "kept"
            hs.remove("kept")
            wait_for(lambda: p.stats()["republishes"] >= 1, what="a republish after the rank was removed")
            wait_for(lambda: _has(hs, "kept"), what="the rank back")
            p.stop(remove=True)
            with pytest.raises(tensorcast.NotFoundError):
                hs.fetch_rank("kept", 0, 0)
            hs.publisher(rank_meta("left-running", 0, tp_size=1), renew_every_ms=100)  # close() stops it
        assert not [t for t in threading.enumerate() if t.name.startswith("tensorcast-publisher")]
    finally:
        d.kill()


def _has(hs, engine):
    try:
        hs.fetch_rank(engine, 0, 0)
        return True
    except tensorcast.NotFoundError:
        return False


def test_incarnations_and_hashes(listener):
    """A caller that knows the engine restarted (its incarnation) is not served the old one from the cache or the
    listener: it waits for the new one; an incompatible hash is final (never retried)."""
    fast = {"base_delay_ms": 20, "max_delay_ms": 50, "max_attempts": 1000}
    with Handshakes(listener.handshake_url, listener.token, timeout_ms=20000, retry=fast) as hs:
        hs.publish(rank_meta("eng-h", 0, tp_size=1, incarnation="inc-1"))
        assert hs.get("eng-h", 0, 0).incarnation == "inc-1"
        assert hs.get("eng-h", 0, 0, incarnation="inc-1").incarnation == "inc-1"  # cached
        fut = hs.get_async("eng-h", 0, 0, incarnation="inc-2")
        wait_for(lambda: hs.stats()["retries"] >= 2, what="retries while the listener still has inc-1")
        assert not fut.done()
        hs.publish(rank_meta("eng-h", 0, tp_size=1, incarnation="inc-2"))
        assert fut.result(20).incarnation == "inc-2"
        assert hs.get("eng-h", 0, 0).incarnation == "inc-2"  # the cache moved to the new incarnation
        retries = hs.stats()["retries"]
        with pytest.raises(tensorcast.TensorcastError) as info:
            hs.get("eng-h", 0, 0, expect_hash="other-hash")
        assert info.value.code == "TC_ERR_INCOMPATIBLE" and hs.stats()["retries"] == retries
