"""A small HTTP/1.1 client for the daemon's control API and the handshake service.

One keep-alive connection per thread (``http.client``), bearer token on every request, JSON or raw bodies.
Failures become tensorcast errors: the answer's ``{"error": {code, message, details}}``, else
``TC_ERR_UNAVAILABLE`` (cannot connect, connection broke), ``TC_ERR_TIMEOUT`` (no answer in time),
``TC_ERR_PROTOCOL`` (an answer that is not what the route promises).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import threading
import weakref
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Union
from urllib.parse import quote, urlsplit

from ._args import check_timeout
from .errors import TensorcastError, from_wire, tc_error

Body = Union[bytes, bytearray, memoryview, None]


@dataclass
class Response:
    status: int
    headers: Dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise tc_error("TC_ERR_PROTOCOL", f"answer is not JSON (status {self.status}): {self.body[:200]!r}") from e


def _json_default(value: Any) -> Any:
    # numpy integers and floats (shapes, sizes a caller computed) are numbers; anything else is refused.
    if hasattr(value, "__index__"):
        return value.__index__()
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def encode_json(body: Any) -> bytes:
    """``body`` as compact JSON. :raises TensorcastError: TC_ERR_INVALID_ARGUMENT (NaN, infinities, objects
    that are no JSON values), so a bad argument never leaks a ``TypeError`` / ``ValueError``."""
    try:
        return json.dumps(body, separators=(",", ":"), allow_nan=False, default=_json_default).encode()
    except (TypeError, ValueError, OverflowError, RecursionError) as e:
        raise tc_error("TC_ERR_INVALID_ARGUMENT", f"the request is not valid JSON: {e}") from None


def segment(value: str) -> str:
    """``value`` percent-encoded as one path segment (JavaScript's ``encodeURIComponent``)."""
    return quote(value, safe="-_.!~*'()")


class HttpClient:
    """Requests to one base URL (``http://host:port`` or ``https://...``) with a bearer token."""

    def __init__(
        self,
        base_url: str,
        token: Optional[str],
        token_source: str = "the token argument",
        timeout: float = 600.0,
        ssl_context: Optional[ssl.SSLContext] = None,
    ) -> None:
        try:
            parts = urlsplit(base_url)
            port = parts.port
        except (ValueError, TypeError, AttributeError) as e:  # "http://[::1", a port beyond 65535, not a str
            raise tc_error("TC_ERR_INVALID_ARGUMENT", f"not an http(s) URL: {base_url!r} ({e})", {"url": str(base_url)}) from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise tc_error("TC_ERR_INVALID_ARGUMENT", f"not an http(s) URL: {base_url!r}", {"url": base_url})
        timeout = check_timeout(timeout, optional=False)  # type: ignore[assignment]
        self.base_url = base_url.rstrip("/")
        self.host = parts.hostname
        self.port = port or (443 if parts.scheme == "https" else 80)
        self.https = parts.scheme == "https"
        self.prefix = parts.path.rstrip("/")
        self.token = token
        self.token_source = token_source
        self.timeout = timeout
        self.ssl_context = ssl_context
        self._local = threading.local()
        # Weak: a connection lives as long as its thread (the thread-local holds it); a dead thread's
        # connection is collected and its socket closed, instead of staying open until close().
        self._all: "weakref.WeakSet[http.client.HTTPConnection]" = weakref.WeakSet()
        self._lock = threading.Lock()
        _CLIENTS.add(self)

    def _after_fork_in_child(self) -> None:
        # The connections are the parent's (the same sockets): never used here, never shut down (closing
        # the child's copies of the descriptors is harmless, the parent's stay open).
        self._local = threading.local()
        self._all = weakref.WeakSet()
        self._lock = threading.Lock()

    def _conn(self, timeout: float) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self.https:
                conn = http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.ssl_context)
            else:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
            self._local.conn = conn
            with self._lock:
                self._all.add(conn)
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def request(
        self,
        method: str,
        path: str,
        body: Body = None,
        json_body: Any = None,
        headers: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = None,
        ok: tuple = (200, 201, 204),
    ) -> Response:
        """Sends one request; answers with a status in ``ok`` are returned, others raised as their error."""
        hdrs = {"accept": "application/json"}
        if self.token is not None:
            hdrs["authorization"] = f"Bearer {self.token}"
        if json_body is not None:
            body = encode_json(json_body)
            hdrs["content-type"] = "application/json"
        elif body is not None:
            hdrs.setdefault("content-type", "application/octet-stream")
        if headers:
            hdrs.update(headers)
        t = self.timeout if timeout is None else check_timeout(timeout, optional=False)
        url = self.prefix + path
        # A kept-alive connection the server closed meanwhile fails at once: one retry on a fresh one, for
        # requests that cannot have been acted on (nothing was answered).
        for attempt in (0, 1):
            conn = self._conn(t)
            try:
                conn.request(method, url, body=body, headers=hdrs)
                r = conn.getresponse()
                data = r.read()
                answer = Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
                if r.will_close:
                    self._drop()
                break
            except (socket.timeout, TimeoutError) as e:
                self._drop()
                raise tc_error("TC_ERR_TIMEOUT", f"{method} {self.base_url}{path}: no answer within {t:g} s") from e
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                self._drop()
                if attempt == 0:
                    continue
                raise tc_error("TC_ERR_UNAVAILABLE", f"{method} {self.base_url}{path}: connection broke: {e}") from e
            except ssl.SSLError as e:
                self._drop()
                raise tc_error("TC_ERR_UNAVAILABLE", f"{method} {self.base_url}{path}: TLS failed: {e}") from e
            except OSError as e:
                self._drop()
                raise tc_error("TC_ERR_UNAVAILABLE", f"cannot reach {self.base_url} ({method} {path}): {e}") from e
            except http.client.IncompleteRead as e:
                self._drop()
                raise tc_error("TC_ERR_UNAVAILABLE", f"{method} {self.base_url}{path}: the answer was cut short") from e
            except http.client.HTTPException as e:
                # Not HTTP (a data-plane port, a TLS port spoken to in clear text, a broken proxy).
                self._drop()
                raise tc_error(
                    "TC_ERR_PROTOCOL", f"{method} {self.base_url}{path}: the answer is not HTTP/1.1 ({type(e).__name__}: {e!r:.200})"
                ) from e
        if answer.status in ok:
            return answer
        raise self._error(answer, method, path)

    def json(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        """A JSON request and its JSON answer."""
        return self.request(method, path, json_body=body, **kw).json()

    def _error(self, answer: Response, method: str, path: str) -> TensorcastError:
        try:
            parsed = json.loads(answer.body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
            err = from_wire(parsed)
        else:
            err = tc_error(
                "TC_ERR_PROTOCOL",
                f"{method} {self.base_url}{path}: status {answer.status} without an error body: {answer.body[:200]!r}",
            )
        if err.code == "TC_ERR_AUTH":
            err.message = f"{err.message} (token from {self.token_source})"
            err.args = (err.message,)
            err.details.setdefault("tokenSource", self.token_source)
        return err

    def close(self) -> None:
        with self._lock:
            conns, self._all = list(self._all), weakref.WeakSet()
        for c in conns:
            c.close()
        self._local = threading.local()


#: Every HttpClient, so a fork()ed child drops the parent's connections (see ``_after_fork_in_child``).
_CLIENTS: "weakref.WeakSet[HttpClient]" = weakref.WeakSet()


def _reset_after_fork() -> None:
    for c in list(_CLIENTS):
        c._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
