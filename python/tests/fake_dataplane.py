"""A tiny scripted data-plane server for the tests that need frames no real daemon sends (a corrupted DATA
frame, DATA outside the range or beyond the credit, a stall, a close mid-frame). It speaks the real frame
format (``tensorcast._dataplane.frames``); each accepted connection runs ``script(peer)`` in a thread."""

from __future__ import annotations

import json
import socket
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

from tensorcast._dataplane import frames as F


class Peer:
    """One accepted connection: read frames, send frames, see what the client sent."""

    def __init__(self, sock: socket.socket, index: int, server: "FakeDataPlane") -> None:
        self.sock = sock
        self.index = index
        self.server = server

    def read_exact(self, n: int) -> Optional[bytes]:
        out = bytearray()
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                return None
            out += chunk
        return bytes(out)

    def read_frame(self) -> Optional[Tuple[F.FrameHeader, bytes]]:
        """The next frame (recorded in ``server.seen``), or None when the client closed."""
        try:
            head = self.read_exact(F.HEADER_BYTES)
            if head is None:
                return None
            h = F.decode_header(head)
            payload = self.read_exact(h.length) if h.length else b""
        except OSError:
            return None
        if payload is None:
            return None
        with self.server.lock:
            self.server.seen.append((self.index, h, payload))
        return h, payload

    def read_control(self) -> Tuple[F.FrameHeader, Dict[str, Any]]:
        got = self.read_frame()
        assert got is not None, "client closed"
        return got[0], json.loads(got[1]) if got[1] else {}

    def welcome(self) -> None:
        h, hello = self.read_control()
        assert h.type == F.HELLO and hello["version"] == 1
        self.send(F.encode_control(F.WELCOME, 0, {"daemonId": "fake", "version": 1, "frameBytes": 4 << 20}))

    def send(self, *parts: bytes) -> None:
        for p in parts:
            self.sock.sendall(p)

    def data(self, rid: int, offset: int, payload: bytes, crc: Optional[int] = None) -> None:
        c = F.crc32c(payload) if crc is None else crc
        self.send(F.encode_header(F.DATA, rid, len(payload), offset, c), payload)

    def drain(self) -> None:
        """Reads (and records) frames until the client closes."""
        while self.read_frame() is not None:
            pass


class FakeDataPlane:
    """``with FakeDataPlane(script) as srv:`` listens on ``srv.address``; ``srv.seen`` lists
    ``(connection index, header, payload)`` of every frame the clients sent."""

    def __init__(self, script: Callable[[Peer], None]) -> None:
        self.script = script
        self.lock = threading.Lock()
        self.seen: List[Tuple[int, F.FrameHeader, bytes]] = []
        self.errors: List[BaseException] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._threads: List[threading.Thread] = []
        self._socks: List[socket.socket] = []
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    def _accept(self) -> None:
        index = 0
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            self._socks.append(sock)
            peer = Peer(sock, index, self)
            index += 1
            t = threading.Thread(target=self._run, args=(peer,), daemon=True)
            self._threads.append(t)
            t.start()

    def _run(self, peer: Peer) -> None:
        try:
            self.script(peer)
        except (OSError, AssertionError) as e:
            self.errors.append(e)
        finally:
            try:
                peer.sock.close()
            except OSError:
                pass

    def frames_of(self, ftype: int) -> List[Tuple[int, F.FrameHeader, bytes]]:
        with self.lock:
            return [s for s in self.seen if s[1].type == ftype]

    def close(self) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self._listener.close()
        for s in self._socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(10)
        self._accepter.join(10)

    def __enter__(self) -> "FakeDataPlane":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
