"""The client of one handshake listener (a port of ``src/handshake/client/handshake-http.ts`` and the direct
calls of ``handshake-client.ts``): publish a rank, GET one rank with the compatibility hash checked from the
answer's header before a byte of the body is decoded, list, renew and remove engines. Over
``tensorcast._http.HttpClient`` (keep-alive per thread, https with an ``ssl.SSLContext`` for mTLS).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Union

from .._args import positive_ms
from .._http import HttpClient, Response, segment
from ..errors import TensorcastError, tc_error
from .rank_mapping import MAX_HANDSHAKE_RANK
from .rank_metadata import ID_PATTERN, RankMetadata, decode_rank_metadata, encode_rank_metadata

COMPAT_HASH_HEADER = "x-tensorcast-compat-hash"
INCARNATION_HEADER = "x-tensorcast-incarnation"
EXPIRES_AT_HEADER = "x-tensorcast-expires-at"
MSGPACK_TYPE = "application/msgpack"
#: The largest answer accepted by default: the listener's 4 MiB payload cap plus a margin.
DEFAULT_MAX_ANSWER_BYTES = 4 * 1024 * 1024 + 64 * 1024


@dataclass
class RankAnswer:
    """One rank as the listener answered it: decoded, the payload bytes exactly as published, its expiry."""

    meta: RankMetadata
    payload: bytes
    expires_at_ms: int


class _ListenerHttp(HttpClient):
    """HttpClient whose errors carry the answer's ``status`` (the retry policy reads it) and, for an answer that
    is not one of our error bodies (a proxy), a code judged by the status alone, as handshake-http.ts does."""

    def _error(self, answer: Response, method: str, path: str) -> TensorcastError:
        err = super()._error(answer, method, path)
        if err.code == "TC_ERR_PROTOCOL" and b'"error"' not in answer.body[:64]:
            s = answer.status
            code = {401: "TC_ERR_AUTH", 404: "TC_ERR_NOT_FOUND"}.get(s, "TC_ERR_UNAVAILABLE" if s >= 500 else None)
            if code is not None:
                err = tc_error(code, f"{method} {path}: the listener answered HTTP {s}")
        err.details["status"] = answer.status
        return err


def tls_context(ca: Optional[str] = None, cert: Optional[str] = None, key: Optional[str] = None) -> ssl.SSLContext:
    """An ``ssl.SSLContext`` for an https:// listener: ``ca`` (PEM file) trusted, else the system's roots;
    ``cert``/``key`` (PEM files) presented when the listener requires client certificates (mTLS)."""
    ctx = ssl.create_default_context(cafile=ca)
    if cert is not None:
        ctx.load_cert_chain(cert, key)
    return ctx


def check_id(what: str, value: Any) -> str:
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise tc_error(
            "TC_ERR_INVALID_ARGUMENT", f"{what} '{str(value)[:64]}' must be 1..128 characters of [A-Za-z0-9._:@+-]"
        )
    return value


def check_rank(what: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value >= MAX_HANDSHAKE_RANK:
        raise tc_error(
            "TC_ERR_INVALID_ARGUMENT", f"{what} must be an integer in 0..{MAX_HANDSHAKE_RANK - 1}, not {value}"
        )
    return value


def engine_path(engine_id: str) -> str:
    return f"/v1/engines/{segment(engine_id)}"


def rank_path(engine_id: str, tp_rank: int, dp_rank: int) -> str:
    return f"{engine_path(engine_id)}/ranks/{tp_rank}/{dp_rank}"


def encoded_rank(source: Union[RankMetadata, bytes, bytearray, memoryview]) -> "tuple[RankMetadata, bytes]":
    """``(meta, payload)``: metadata encoded, or raw payload bytes decoded to validate them (sent unchanged)."""
    if isinstance(source, RankMetadata):
        return source, encode_rank_metadata(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        payload = bytes(source)
        return decode_rank_metadata(payload), payload
    raise tc_error(
        "TC_ERR_INVALID_ARGUMENT", f"publish takes RankMetadata or payload bytes, not {type(source).__name__}"
    )


class HandshakeClient:
    """Direct requests to one handshake listener (no cache, no retries: see ``Handshakes`` for those).

    ``HandshakeClient(url, token=None, *, ssl_context=None, timeout_ms=5000, expect_hash=None,
    max_answer_bytes=None)``; ``url`` is ``http://host:port`` or ``https://host:port``.

    Errors are the listener's, with their codes (TC_ERR_AUTH for a wrong token, TC_ERR_NOT_FOUND, TC_ERR_EXPIRED,
    TC_ERR_INCOMPATIBLE, TC_ERR_MALFORMED, TC_ERR_TOO_LARGE), plus TC_ERR_UNAVAILABLE / TC_ERR_TIMEOUT.

    >>> hs = HandshakeClient("http://127.0.0.1:7072", token)
    >>> hs.publish(meta)
    >>> hs.get("prefill-0", 0, 0, expect_hash="vllm-0.9-llama3-bf16").agent_metadata
    """

    def __init__(
        self,
        url: str,
        token: Optional[str] = None,
        *,
        ssl_context: Optional[ssl.SSLContext] = None,
        timeout_ms: float = 5000,
        expect_hash: Optional[str] = None,
        max_answer_bytes: Optional[int] = None,
    ) -> None:
        if not isinstance(url, str):
            raise tc_error("TC_ERR_INVALID_ARGUMENT", f"handshake url {url!r} is not a URL")
        self.timeout_ms = positive_ms("timeout_ms", timeout_ms)
        self.expect_hash = None if expect_hash is None else check_id("expect_hash", expect_hash)
        self.max_answer_bytes = DEFAULT_MAX_ANSWER_BYTES if max_answer_bytes is None else int(max_answer_bytes)
        self.http = _ListenerHttp(url, token, "the handshake token", self.timeout_ms / 1000, ssl_context)

    @property
    def url(self) -> str:
        return self.http.base_url

    def _timeout(self, timeout_ms: Optional[float]) -> float:
        return (self.timeout_ms if timeout_ms is None else positive_ms("timeout_ms", timeout_ms)) / 1000

    def publish(self, meta: Union[RankMetadata, bytes], timeout_ms: Optional[float] = None) -> Dict[str, Any]:
        """Publishes one rank (PUT; the headers come from the payload). ``meta`` is encoded; raw payload bytes are
        validated and sent unchanged. Returns the listener's answer (engineId, tpRank, dpRank, incarnation,
        expiresAtMs, ttlMs, replacedIncarnation).

        Raises TC_ERR_MALFORMED; TC_ERR_INCOMPATIBLE (the live incarnation has another hash); TC_ERR_TOO_LARGE;
        TC_ERR_AUTH.
        """
        m, payload = encoded_rank(meta)
        headers = {
            "content-type": MSGPACK_TYPE,
            COMPAT_HASH_HEADER: m.compatibility_hash,
            INCARNATION_HEADER: m.incarnation,
        }
        path = rank_path(m.engine_id, m.tp_rank, m.dp_rank)
        return self.http.request("PUT", path, payload, headers=headers, timeout=self._timeout(timeout_ms)).json()

    def fetch_rank(
        self,
        engine_id: str,
        tp_rank: int,
        dp_rank: int,
        expect_hash: Optional[str] = None,
        timeout_ms: Optional[float] = None,
    ) -> RankAnswer:
        """One rank in one GET: decoded, with its payload bytes as published. With ``expect_hash`` (default the
        client's) the answer's compatibility header is compared before the body is decoded: a mismatch is
        TC_ERR_INCOMPATIBLE (details expected, actual) and the body is never decoded. The payload must then name
        the rank asked for and agree with the headers (else TC_ERR_MALFORMED).

        Raises TC_ERR_INCOMPATIBLE, TC_ERR_NOT_FOUND, TC_ERR_EXPIRED, TC_ERR_MALFORMED, TC_ERR_TOO_LARGE, TC_ERR_AUTH.
        """
        check_id("engine id", engine_id)
        check_rank("tp_rank", tp_rank)
        check_rank("dp_rank", dp_rank)
        expect = self.expect_hash if expect_hash is None else check_id("expect_hash", expect_hash)
        path = rank_path(engine_id, tp_rank, dp_rank)
        headers = {"accept": MSGPACK_TYPE}
        if expect is not None:
            headers[COMPAT_HASH_HEADER] = expect
        res = self.http.request("GET", path, headers=headers, timeout=self._timeout(timeout_ms), ok=(200,))
        actual = res.headers.get(COMPAT_HASH_HEADER)
        if expect is not None and actual != expect:
            raise tc_error(
                "TC_ERR_INCOMPATIBLE",
                f"engine '{engine_id}' rank {tp_rank}/{dp_rank} has compatibility hash '{actual or '(none)'}', "
                f"expected '{expect}': not decoded",
                {
                    "expected": expect,
                    "actual": actual or "",
                    "engineId": engine_id,
                    "tpRank": tp_rank,
                    "dpRank": dp_rank,
                },
            )
        if actual is None:
            raise tc_error("TC_ERR_PROTOCOL", f"GET {path}: the answer has no {COMPAT_HASH_HEADER} header")
        if len(res.body) > self.max_answer_bytes:
            raise tc_error(
                "TC_ERR_TOO_LARGE",
                f"the listener's answer of {len(res.body)} bytes is above the cap of {self.max_answer_bytes}",
                {"bytes": len(res.body), "cap": self.max_answer_bytes},
            )
        meta = decode_rank_metadata(res.body, self.max_answer_bytes)
        incarnation = res.headers.get(INCARNATION_HEADER)
        mismatch = None
        if meta.engine_id != engine_id:
            mismatch = "engine id"
        elif meta.tp_rank != tp_rank or meta.dp_rank != dp_rank:
            mismatch = "rank"
        elif meta.compatibility_hash != actual:
            mismatch = "compatibility hash"
        elif incarnation is not None and meta.incarnation != incarnation:
            mismatch = "incarnation"
        if mismatch is not None:
            raise tc_error(
                "TC_ERR_MALFORMED",
                f"GET {path}: the payload's {mismatch} disagrees with the request or the answer's headers",
                {"engineId": engine_id, "tpRank": tp_rank, "dpRank": dp_rank},
            )
        try:
            expires = int(float(res.headers.get(EXPIRES_AT_HEADER, "")))
        except ValueError:
            expires = 0
        return RankAnswer(meta, res.body, expires)

    def get(
        self,
        engine_id: str,
        tp_rank: int,
        dp_rank: int,
        expect_hash: Optional[str] = None,
        timeout_ms: Optional[float] = None,
    ) -> RankMetadata:
        """One rank's metadata in one GET (see ``fetch_rank`` for the checks and errors)."""
        return self.fetch_rank(engine_id, tp_rank, dp_rank, expect_hash, timeout_ms).meta

    def engine(self, engine_id: str) -> Dict[str, Any]:
        """The listener's summary of one engine (engineId, incarnation, compatibilityHash, tpSize, ranks).
        Raises TC_ERR_NOT_FOUND when it has no live rank."""
        check_id("engine id", engine_id)
        return self.http.json("GET", engine_path(engine_id), timeout=self._timeout(None))

    def engines(self) -> List[Dict[str, Any]]:
        """Every engine with live ranks, ordered by engine id (summaries as ``engine()``)."""
        return list(self.http.json("GET", "/v1/engines", timeout=self._timeout(None))["engines"])

    def renew(self, engine_id: str, incarnation: str) -> Dict[str, Any]:
        """Extends the TTL of every rank of ``incarnation``: ``{renewed, expiresAtMs}``. Raises TC_ERR_NOT_FOUND when
        none of that incarnation is live."""
        check_id("engine id", engine_id)
        check_id("incarnation", incarnation)
        path = engine_path(engine_id) + "/renew"
        return self.http.json("POST", path, {"incarnation": incarnation}, timeout=self._timeout(None))

    def remove(self, engine_id: str, incarnation: Optional[str] = None) -> Dict[str, Any]:
        """Deletes the engine's ranks (of ``incarnation`` only, when given): ``{removed}``."""
        check_id("engine id", engine_id)
        headers = {} if incarnation is None else {INCARNATION_HEADER: check_id("incarnation", incarnation)}
        return self.http.request("DELETE", engine_path(engine_id), headers=headers, timeout=self._timeout(None)).json()

    def health(self) -> Dict[str, Any]:
        return self.http.json("GET", "/v1/health", timeout=self._timeout(None))

    def close(self) -> None:
        """Closes the connections."""
        self.http.close()

    def __enter__(self) -> "HandshakeClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def is_retryable(error: BaseException) -> bool:
    """True when a handshake that failed with ``error`` may succeed if tried again (retry-policy.ts): the
    listener unreachable or failing, the engine not published yet or expired while it restarts; a 5xx."""
    if not isinstance(error, TensorcastError):
        return False
    if error.code in (
        "TC_ERR_UNAVAILABLE",
        "TC_ERR_BACKEND",
        "TC_ERR_SHUTTING_DOWN",
        "TC_ERR_NOT_FOUND",
        "TC_ERR_EXPIRED",
        "TC_ERR_IO",
    ):
        return True
    status = error.details.get("status")
    return isinstance(status, int) and status >= 500
