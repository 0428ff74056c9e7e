"""One data-plane connection (docs/protocol.md): HELLO with the token, then LOAD, PUT and GET requests, one
at a time, on a blocking socket. The Python twin of ``src/transport/data-connection.ts`` and
``object-requests.ts``.

Reads go through a ``FrameDecoder``: once a DATA header is decoded, ``sock.recv_into`` lands the rest of its
payload straight in the caller's buffer (no payload-sized allocation, the GIL released while the kernel
copies), the payload's CRC32C is extended as each read lands and checked at the frame's end, and the frame's
length is granted back with a CREDIT frame (a 64 MiB window). A PUT sends DATA frames of at most 4 MiB
straight from a memoryview of the caller's bytes (``sendmsg`` of header + payload), never beyond the credit
the daemon granted.

Errors: a request-level ERROR from the daemon is raised as the daemon's error (``from_wire``) and the
connection stays usable; anything else (ERROR for request 0, a protocol violation, a checksum mismatch, the
client-side deadline, a broken socket, ``abort()`` from another thread) closes the connection, which then
reports ``usable == False``. Codes: ``TC_ERR_TIMEOUT`` (deadline), ``TC_ERR_UNAVAILABLE`` (connect failed,
connection lost), ``TC_ERR_AUTH`` (wrong token, naming where the token came from), ``TC_ERR_PROTOCOL``,
``TC_ERR_CHECKSUM``, ``TC_ERR_ABORTED`` (abandoned), and the daemon's own codes.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..errors import TensorcastError, from_wire, tc_error
from . import frames as F
from .decoder import FrameDecoder

#: Credit a LOAD or GET grants: how many bytes the daemon may send ahead of what has landed.
WINDOW_BYTES = 64 << 20
#: Largest DATA payload a PUT sends.
PUT_FRAME_BYTES = 4 << 20
#: Most bytes of a PUT sent right behind it, before any CREDIT (docs/protocol.md "Eager bytes").
PUT_EAGER_MAX_BYTES = 1 << 20
CLIENT_NAME = "tensorcast-python/0.1.0"
_ADDRESS = re.compile(r"^\[?([^\]]+?)\]?:(\d+)$")
_SOCKET_BUFFER_BYTES = 8 << 20

#: "No value given" for ``if_version`` (None means "create only").
UNSET: Any = object()


def _count(body: Dict[str, Any], name: str, what: str, *, optional: bool = False) -> Optional[int]:
    """``body[name]`` as a byte count or version (an int in 0..2^53, not a bool). @raises TC_ERR_PROTOCOL"""
    value = body.get(name)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= F._MAX_SAFE_INTEGER:
        raise F.protocol_error(f"{what} frame: {name!r} is not a count (got {value!r})")
    return value


def _unavailable(where: str, what: str, cause: Optional[BaseException] = None) -> TensorcastError:
    because = f" ({type(cause).__name__}: {cause})" if cause is not None else ""
    return tc_error("TC_ERR_UNAVAILABLE", f"data plane {where}: {what}{because}")


class _Request:
    """The request in flight: what its frames may do and how it ended."""

    def __init__(self, rid: int, kind: str) -> None:
        self.id = rid
        self.kind = kind
        self.done = False
        self.result: Any = None
        self.error: Optional[TensorcastError] = None
        # LOAD / GET: where DATA lands, bytes granted and landed.
        self.dest: Optional[memoryview] = None
        self.start = 0
        self.granted = 0
        self.announced = 0  # DATA bytes whose headers arrived (checked against the credit)
        self.received = 0  # DATA bytes landed with a good CRC32C
        # GET
        self.info: Optional[Dict[str, Any]] = None
        self.into: Any = None
        self.buffer: Any = None
        self.key = ""


class DataConnection:
    """A blocking data-plane connection to one daemon. Not thread-safe, except ``abort()``.

    Example::

        conn = DataConnection.open("127.0.0.1:7071", token, "the token argument", deadline)
        stats = conn.load("sha256:...", None, None, 0, n, memoryview(buf), deadline)
        conn.close()
    """

    def __init__(self, address: str, token_source: str) -> None:
        self.address = address
        self.token_source = token_source
        self.frame_bytes = 4 << 20
        self.daemon_id: Optional[str] = None
        self._sock: Optional[socket.socket] = None
        self._send_lock = threading.Lock()
        self._next_id = 1
        self._request: Optional[_Request] = None
        self._welcomed = False
        self._broken: Optional[TensorcastError] = None
        self._abandoned: Optional[TensorcastError] = None
        self._decoder = FrameDecoder(
            self._on_frame,
            self._sink,
            max_control_bytes=F.MAX_CONTROL_BYTES,
            max_data_bytes=F.MAX_DATA_BYTES,
            scratch_bytes=64 << 10,
        )

    # -- opening and closing --------------------------------------------------------------------------

    @classmethod
    def open(
        cls, address: str, token: str, token_source: str, deadline: float, client_name: str = CLIENT_NAME
    ) -> "DataConnection":
        """Connects and authenticates (HELLO -> WELCOME) before ``deadline`` (``time.monotonic()``).

        @raises TC_ERR_INVALID_ARGUMENT (bad address), TC_ERR_UNAVAILABLE, TC_ERR_AUTH, TC_ERR_TIMEOUT
        """
        m = _ADDRESS.match(address)
        if m is None:
            raise tc_error("TC_ERR_INVALID_ARGUMENT", f"bad data-plane address {address!r} (expected host:port)")
        c = cls(address, token_source)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise tc_error("TC_ERR_TIMEOUT", f"data plane {address}: the deadline passed before connecting")
        try:
            sock = socket.create_connection((m.group(1), int(m.group(2))), timeout=min(remaining, 10.0))
        except socket.timeout:
            raise tc_error("TC_ERR_TIMEOUT", f"data plane {address}: connect timed out") from None
        except OSError as e:
            raise _unavailable(address, "cannot connect", e) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            try:
                sock.setsockopt(socket.SOL_SOCKET, opt, _SOCKET_BUFFER_BYTES)
            except OSError:  # pragma: no cover - a kernel limit; the default buffers work
                pass
        c._sock = sock
        try:
            hello = F.encode_control(F.HELLO, 0, {"version": F.PROTOCOL_VERSION, "token": token, "client": client_name})
            c._guard("HELLO", lambda: c._send(hello))
            c._guard("HELLO", lambda: c._pump(lambda: c._welcomed, min(deadline, time.monotonic() + 10.0), "HELLO"))
        except BaseException:
            c.close()
            raise
        return c

    @property
    def usable(self) -> bool:
        """True while the connection can take a request (not broken, nothing in flight)."""
        return self._broken is None and self._request is None and self._abandoned is None

    def alive(self) -> bool:
        """True when the idle connection's peer has not closed it (a non-blocking peek: a daemon that
        restarted or dropped the socket is noticed before a request is sent on it). Idle connections only."""
        sock = self._sock
        if sock is None or not self.usable:
            return False
        try:
            sock.setblocking(False)
            try:
                sock.recv(1, socket.MSG_PEEK)
            finally:
                sock.setblocking(True)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False
        return False  # closed (b"") or unexpected bytes between requests: drop it

    def close(self) -> None:
        """Closes the socket (idempotent)."""
        if self._broken is None:
            self._broken = tc_error("TC_ERR_ABORTED", f"data plane {self.address}: connection closed by the client")
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.close()
            except OSError:  # pragma: no cover
                pass

    def abort(self, reason: TensorcastError) -> None:
        """Gives up on the request in flight from another thread: sends CANCEL and shuts the socket down,
        so the owner's blocked read returns at once and raises ``reason``; no byte lands afterwards (the
        owner stops reading). The connection is then discarded."""
        if self._abandoned is not None:
            return
        self._abandoned = reason
        sock = self._sock
        if sock is None:
            return
        req = self._request
        try:
            if req is not None and self._send_lock.acquire(timeout=1.0):
                try:
                    sock.sendall(F.encode_header(F.CANCEL, req.id, 0))
                finally:
                    self._send_lock.release()
        except OSError:
            pass
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- requests ---------------------------------------------------------------------------------------

    def load(
        self,
        artifact_id: str,
        view: Optional[Dict[str, Any]],
        view_id: Optional[str],
        start: int,
        end: int,
        dest: memoryview,
        deadline: float,
        route: str = "auto",
        peer: Optional[Dict[str, str]] = None,
    ) -> Dict[str, Any]:
        """Loads bytes ``[start, end)`` of a view's output into ``dest`` (a writable byte memoryview of
        exactly ``end - start`` bytes). Returns the END: ``{bytes, route, source, viewId, fallback?,
        sourceDaemon?, wireBytes?, readBytes?}``.

        @raises TC_ERR_TIMEOUT, TC_ERR_UNAVAILABLE, TC_ERR_CHECKSUM, TC_ERR_PROTOCOL, TC_ERR_ABORTED, the
        daemon's code (TC_ERR_NOT_FOUND, TC_ERR_INVALID_ARGUMENT, ...)
        """
        if len(dest) != end - start:
            raise tc_error(
                "TC_ERR_DESTINATION_SIZE", f"destination of {len(dest)} bytes does not match the range [{start}, {end})"
            )
        req = self._begin("load")
        req.dest, req.start, req.granted = dest, start, WINDOW_BYTES
        body: Dict[str, Any] = {
            "artifactId": artifact_id,
            "view": view,
            "viewId": view_id,
            "start": start,
            "end": end,
            "credit": WINDOW_BYTES,
            "timeoutMs": self._timeout_ms(deadline),
        }
        if route != "auto":
            body["route"] = route
        if peer is not None:
            body["peer"] = peer
        return self._run(
            req, F.encode_control(F.LOAD, req.id, body), deadline, f"load of {end - start} bytes of {artifact_id}"
        )

    def put(
        self,
        key: str,
        data: memoryview,
        deadline: float,
        *,
        txn: Optional[str] = None,
        if_version: Any = UNSET,
        ttl_ms: Optional[int] = None,
        wait_for_room: Optional[bool] = None,
        store_token: Optional[str] = None,
        crc: Optional[int] = None,
    ) -> Dict[str, int]:
        """Stores ``data`` as the object ``key`` (one PUT). Returns the DONE: ``{bytes, version}``.

        @raises the daemon's code (TC_ERR_INVALID_ARGUMENT, TC_ERR_AUTH, TC_ERR_BACKPRESSURE, TC_ERR_BUDGET,
        TC_ERR_CONFLICT, TC_ERR_CHECKSUM, TC_ERR_TIMEOUT), TC_ERR_TIMEOUT, TC_ERR_UNAVAILABLE, TC_ERR_PROTOCOL
        """
        size = len(data)
        req = self._begin("put")
        req.key = key
        eager = min(size, PUT_EAGER_MAX_BYTES)
        body: Dict[str, Any] = {"key": key, "size": size}
        if crc is not None:
            body["crc"] = crc
        if txn is not None:
            body["txn"] = txn
        if if_version is not UNSET:
            body["ifVersion"] = if_version
        if ttl_ms is not None:
            body["ttlMs"] = ttl_ms
        if wait_for_room is not None:
            body["waitForRoom"] = bool(wait_for_room)
        if store_token is not None:
            body["storeToken"] = store_token
        body["timeoutMs"] = self._timeout_ms(deadline)
        if eager > 0:
            body["eager"] = eager
        req.granted = eager
        frame = max(1, min(self.frame_bytes, PUT_FRAME_BYTES, F.MAX_DATA_BYTES))
        sent = 0

        def pump() -> None:
            nonlocal sent
            while sent < size and sent < req.granted and not req.done:
                n = min(frame, req.granted - sent, size - sent)
                payload = data[sent : sent + n]
                self._bound_sends(deadline, what)
                self._send(F.encode_data_header(req.id, sent, payload), payload)
                sent += n

        what = f"put of {size} bytes to {key!r}"
        self._guard(
            what, lambda: (self._bound_sends(deadline, what), self._send(F.encode_control(F.PUT, req.id, body)))
        )
        while True:
            self._guard(what, pump)
            granted = req.granted
            self._guard(what, lambda g=granted: self._pump(lambda: req.done or req.granted > g, deadline, what))
            if req.done:
                break
        self._request = None
        if req.error is not None:
            raise req.error
        done = req.result
        if sent != size or done["bytes"] != size:
            self._break(
                F.protocol_error(f"DONE for a put of {size} bytes after {sent} were sent (daemon says {done['bytes']})")
            )
            raise self._broken  # type: ignore[misc]
        return done

    def get(
        self,
        key: str,
        into: Any,
        deadline: float,
        *,
        expect_bytes: Optional[int] = None,
        store_token: Optional[str] = None,
    ) -> Tuple[Any, int]:
        """Reads the object ``key`` into ``into`` (a writable buffer of exactly the object's size) or into a
        new bytearray. Returns ``(buffer, version)``; on failure nothing more lands in ``into``.

        @raises TC_ERR_NOT_FOUND, TC_ERR_OBJECT_LOST, TC_ERR_AUTH, TC_ERR_SHORT_READ (into larger than the
        object), TC_ERR_DESTINATION_SIZE (smaller), TC_ERR_CHECKSUM, TC_ERR_TIMEOUT, TC_ERR_UNAVAILABLE
        """
        req = self._begin("get")
        req.key, req.granted = key, WINDOW_BYTES
        if into is not None:
            req.into = into
            req.dest = _byte_view(into, "into")
            expect_bytes = len(req.dest)
        body: Dict[str, Any] = {"key": key, "credit": WINDOW_BYTES, "timeoutMs": self._timeout_ms(deadline)}
        if expect_bytes is not None:
            body["expectBytes"] = expect_bytes
        if store_token is not None:
            body["storeToken"] = store_token
        return self._run(req, F.encode_control(F.GET, req.id, body), deadline, f"get of {key!r}")

    # -- internals --------------------------------------------------------------------------------------

    def _begin(self, kind: str) -> _Request:
        if self._broken is not None:
            raise self._broken
        if self._request is not None:
            raise tc_error("TC_ERR_INTERNAL", "DataConnection: one request at a time")
        req = _Request(self._next_id, kind)
        self._next_id += 1
        self._request = req
        return req

    def _run(self, req: _Request, frame: bytes, deadline: float, what: str) -> Any:
        self._guard(what, lambda: (self._bound_sends(deadline, what), self._send(frame)))
        self._guard(what, lambda: self._pump(lambda: req.done, deadline, what))
        self._request = None
        if req.error is not None:
            raise req.error
        return req.result

    def _guard(self, what: str, fn: Callable[[], None]) -> None:
        """Runs ``fn``; any failure breaks the connection (except a request-level ERROR, which ends ``req``)."""
        try:
            fn()
        except TensorcastError as e:
            self._break(self._abandoned or e)
            raise self._broken from None  # type: ignore[misc]
        except socket.timeout:
            self._break(
                self._abandoned
                or tc_error("TC_ERR_TIMEOUT", f"data plane {self.address}: {what} did not finish in time")
            )
            raise self._broken from None  # type: ignore[misc]
        except OSError as e:
            self._break(self._abandoned or _unavailable(self.address, f"{what}: connection lost", e))
            raise self._broken from None  # type: ignore[misc]
        except Exception as e:  # a bug of ours on a peer's input: never a raw exception to the caller
            self._break(self._abandoned or tc_error("TC_ERR_INTERNAL", f"data plane {self.address}: {what}: {e!r}"))
            raise self._broken from e  # type: ignore[misc]

    def _break(self, error: TensorcastError) -> None:
        if self._broken is None:
            self._broken = error
        self._request = None
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.close()
            except OSError:  # pragma: no cover
                pass

    @staticmethod
    def _timeout_ms(deadline: float) -> int:
        return max(1, int((deadline - time.monotonic()) * 1000))

    def _send(self, *parts: Any) -> None:
        sock = self._sock
        if sock is None or self._abandoned is not None:
            raise self._abandoned or self._broken or _unavailable(self.address, "connection closed")
        with self._send_lock:
            if len(parts) == 1:
                sock.sendall(parts[0])
                return
            # Header + payload in one sendmsg (no copy of the payload); resend what a partial write left.
            views: List[memoryview] = [memoryview(p).cast("B") for p in parts]
            while views:
                n = sock.sendmsg(views)
                while views and n >= len(views[0]):
                    n -= len(views[0])
                    views.pop(0)
                if views and n:
                    views[0] = views[0][n:]

    def _bound_sends(self, deadline: float, what: str) -> None:
        """Bounds the next blocking send by the deadline (a daemon that stops reading cannot hold a put)."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise tc_error("TC_ERR_TIMEOUT", f"data plane {self.address}: {what} did not finish in time")
        if self._sock is not None:
            self._sock.settimeout(remaining)

    def _pump(self, until: Callable[[], bool], deadline: float, what: str) -> None:
        """Reads frames until ``until()`` holds. @raises socket.timeout / OSError / TensorcastError"""
        sock = self._sock
        decoder = self._decoder
        while not until():
            if sock is None or self._abandoned is not None:
                raise self._abandoned or self._broken or _unavailable(self.address, "connection closed")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise tc_error("TC_ERR_TIMEOUT", f"data plane {self.address}: {what} did not finish in time")
            sock.settimeout(remaining)
            n = sock.recv_into(decoder.read_buffer())
            if self._abandoned is not None:
                raise self._abandoned
            if n == 0:
                raise _unavailable(self.address, f"{what}: connection closed by the peer")
            decoder.commit(n)

    def _sink(self, h: F.FrameHeader) -> Optional[memoryview]:
        req = self._request
        if req is None or h.request_id != req.id or req.done or req.dest is None:
            return None
        if req.announced + h.length > req.granted:
            raise F.protocol_error(f"DATA beyond the credit granted for request {req.id}")
        if req.kind == "load":
            # In order, no gap, no overlap (docs/protocol.md): a byte count alone would let repeated frames
            # pass for a full range while part of the destination was never written.
            at = h.offset - req.start
            if at != req.announced or at + h.length > len(req.dest):
                return None
        else:  # get: in order, within the object
            if h.offset != req.received or h.offset + h.length > len(req.dest):
                return None
            at = h.offset
        req.announced += h.length
        return req.dest[at : at + h.length]

    def _on_frame(self, h: F.FrameHeader, payload: memoryview, ok: bool) -> None:
        if not self._welcomed:
            if h.type == F.WELCOME:
                body = F.parse_control(payload, "WELCOME")
                self.frame_bytes = _count(body, "frameBytes", "WELCOME", optional=True) or self.frame_bytes
                self.daemon_id = body.get("daemonId")
                self._welcomed = True
                return
            if h.type == F.ERROR:
                raise self._wire_error(payload)
            raise F.protocol_error(f"expected WELCOME, got frame type {h.type}")
        if h.type == F.ERROR and h.request_id == 0:
            raise self._wire_error(payload)
        req = self._request
        if req is None or h.request_id != req.id:
            # Credit the daemon sent for a put that already ended (an ERROR crossed it): nothing to do.
            if h.type == F.CREDIT and h.request_id < self._next_id:
                return
            raise F.protocol_error(f"frame type {h.type} for unknown request {h.request_id}")
        if h.type == F.ERROR:
            req.error = self._wire_error(payload)
            req.done = True
            return
        if req.kind == "load":
            self._on_load_frame(req, h, payload, ok)
        elif req.kind == "put":
            self._on_put_frame(req, h, payload)
        else:
            self._on_get_frame(req, h, payload, ok)

    def _on_load_frame(self, req: _Request, h: F.FrameHeader, payload: memoryview, ok: bool) -> None:
        if h.type == F.DATA:
            self._on_data(req, h, ok, "; the load failed")
            return
        if h.type == F.END:
            end = F.parse_control(payload, "END")
            if req.received != len(req.dest):  # type: ignore[arg-type]
                raise F.protocol_error(f"END after {req.received} of {len(req.dest)} bytes")  # type: ignore[arg-type]
            req.result = end
            req.done = True
            return
        raise F.protocol_error(f"unexpected frame type {h.type} for a load")

    def _on_data(self, req: _Request, h: F.FrameHeader, ok: bool, what: str) -> None:
        """A DATA frame of a load or get landed (the sink checked its range): counted and its credit granted
        back, or TC_ERR_CHECKSUM (``what`` ends the message)."""
        if not ok:
            raise tc_error(
                "TC_ERR_CHECKSUM",
                f"data plane {self.address}: checksum mismatch at offset {h.offset} ({h.length} bytes){what}",
            )
        req.received += h.length
        self._grant(req, h.length)

    def _on_put_frame(self, req: _Request, h: F.FrameHeader, payload: memoryview) -> None:
        if h.type == F.CREDIT:
            req.granted += h.offset
            return
        if h.type == F.DONE:
            done = F.parse_control(payload, "DONE")
            req.result = {"bytes": _count(done, "bytes", "DONE"), "version": _count(done, "version", "DONE")}
            req.done = True
            return
        raise F.protocol_error(f"unexpected frame type {h.type} for a put")

    def _on_get_frame(self, req: _Request, h: F.FrameHeader, payload: memoryview, ok: bool) -> None:
        if h.type == F.INFO:
            if req.info is not None:
                raise F.protocol_error(f"a second INFO for {req.key!r}")
            info = F.parse_control(payload, "INFO")
            size = _count(info, "size", "INFO")
            assert size is not None
            req.info = info
            if req.dest is not None and size < len(req.dest):
                raise tc_error(
                    "TC_ERR_SHORT_READ", f"{req.key!r} is {size} bytes; the destination holds {len(req.dest)}"
                )
            if req.dest is not None and size > len(req.dest):
                raise tc_error(
                    "TC_ERR_DESTINATION_SIZE",
                    f"{req.key!r} is {size} bytes; the destination holds only {len(req.dest)}",
                )
            if req.dest is None:
                try:
                    req.buffer = bytearray(size)
                except MemoryError:
                    raise tc_error(
                        "TC_ERR_BUDGET", f"{req.key!r} is {size} bytes: no memory for it; pass into= a buffer"
                    ) from None
                req.dest = memoryview(req.buffer)
            return
        if h.type == F.DATA:
            self._on_data(req, h, ok, f" of {req.key!r}")
            return
        if h.type == F.DONE:
            done = F.parse_control(payload, "DONE")
            if req.info is None:
                raise F.protocol_error(f"DONE before INFO for {req.key!r}")
            size = int(req.info["size"])
            _count(done, "version", "DONE")
            if req.received != size or done.get("bytes") != size:
                req.error = tc_error(
                    "TC_ERR_SHORT_READ",
                    f"get of {req.key!r}: {req.received} of {size} bytes landed "
                    f"(the daemon reported {done.get('bytes')}); nothing returned",
                )
            elif done.get("version") != req.info.get("version"):
                raise F.protocol_error(
                    f"DONE version {done.get('version')} differs from INFO version {req.info.get('version')}"
                )
            else:
                req.result = (req.into if req.into is not None else req.buffer, done["version"])
            req.done = True
            return
        raise F.protocol_error(f"unexpected frame type {h.type} for a get")

    def _grant(self, req: _Request, n: int) -> None:
        req.granted += n
        self._send(F.encode_header(F.CREDIT, req.id, 0, n))

    def _wire_error(self, payload: memoryview) -> TensorcastError:
        body = F.parse_control(payload, "ERROR")
        err = from_wire(body, f"data plane {self.address} error")
        if err.code == "TC_ERR_AUTH":
            err.message = f"{err.message} (data plane {self.address}; token from {self.token_source})"
            err.args = (err.message,)
            err.details.setdefault("tokenSource", self.token_source)
        return err


def _source_view(buf: Any, what: str) -> memoryview:
    """A contiguous byte memoryview over a readable buffer (bytes, bytearray, memoryview, numpy array, or a
    contiguous CPU torch tensor), no copy. @raises TC_ERR_INVALID_ARGUMENT"""
    if type(buf).__module__.startswith("torch") and hasattr(buf, "is_contiguous"):
        return _byte_view(buf, what)
    try:
        mv = memoryview(buf)
    except TypeError:
        raise tc_error(
            "TC_ERR_INVALID_ARGUMENT", f"{what} must be a bytes-like buffer, got {type(buf).__name__}"
        ) from None
    if not mv.c_contiguous:
        raise tc_error("TC_ERR_INVALID_ARGUMENT", f"{what} must be C-contiguous")
    return mv.cast("B") if (mv.format != "B" or mv.ndim != 1) else mv


def _byte_view(buf: Any, what: str) -> memoryview:
    """A writable, contiguous byte memoryview over ``buf`` (bytearray, numpy array, memoryview, mmap, or a
    contiguous CPU torch tensor of any dtype, viewed as its bytes: no copy).

    @raises TC_ERR_INVALID_ARGUMENT
    """
    if type(buf).__module__.startswith("torch") and hasattr(buf, "is_contiguous"):
        if buf.device.type != "cpu" or not buf.is_contiguous():
            raise tc_error("TC_ERR_INVALID_ARGUMENT", f"{what} must be a contiguous CPU tensor")
        import torch  # already imported by whoever made the tensor

        buf = buf.reshape(-1).view(torch.uint8).numpy()
    try:
        mv = memoryview(buf)
    except TypeError:
        raise tc_error(
            "TC_ERR_INVALID_ARGUMENT",
            f"{what} must be a writable buffer (bytearray, numpy array, ...), got {type(buf).__name__}",
        ) from None
    if mv.readonly:
        raise tc_error("TC_ERR_INVALID_ARGUMENT", f"{what} is read-only")
    if not mv.c_contiguous:
        raise tc_error("TC_ERR_INVALID_ARGUMENT", f"{what} must be C-contiguous")
    return mv.cast("B") if (mv.format != "B" or mv.ndim != 1) else mv
