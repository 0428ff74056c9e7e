"""A resumable frame decoder: bytes may arrive split anywhere.

Fed through ``push(chunk)`` (any chunks), or as a socket's read target through ``read_buffer()`` /
``commit(n)``: while a DATA payload is pending and the sink gave it a destination, ``read_buffer()`` returns
the rest of that destination, so ``sock.recv_into`` lands the bytes where they belong (no intermediate
copy, no payload-sized allocation). The payload's CRC32C is extended as the reads land, in spans of 1 MiB
(recent bytes, still in cache; ``tensorcast._crc`` releases the GIL for spans that large, so several
connections' threads hash in parallel) and compared when the frame is complete. The Python twin of
``src/protocol/frame-decoder.ts``.

Errors: a bad magic, version, unknown type, oversized length, or a control frame whose CRC32C does not
match raise ``TC_ERR_PROTOCOL`` (the decoder then stays failed). A DATA frame whose CRC32C does not match is
delivered with ``ok=False``: the receiver decides (the data plane raises ``TC_ERR_CHECKSUM`` and does not
count the bytes as delivered).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from ..errors import tc_error
from .frames import (
    DATA,
    HEADER_BYTES,
    MAX_CONTROL_BYTES,
    MAX_DATA_BYTES,
    FrameHeader,
    crc32c,
    decode_header,
    protocol_error,
)

#: Reads smaller than this go through the scratch buffer even when a destination is pending.
DIRECT_MIN_BYTES = 16 << 10
#: The running CRC32C is extended in spans of this much (hashed with the GIL released, see ``tensorcast._crc``).
CRC_SPAN_BYTES = 1 << 20

OnFrame = Callable[[FrameHeader, memoryview, bool], None]
Sink = Callable[[FrameHeader], Optional[memoryview]]


class FrameDecoder:
    """Decodes frames, calling ``on_frame(header, payload, ok)`` for each complete one.

    ``sink(header)`` gives a DATA payload's destination: a writable memoryview of exactly ``header.length``
    bytes, or None to reject the frame (``TC_ERR_PROTOCOL``). Without a sink, DATA lands in a new buffer.
    A control payload handed to ``on_frame`` is only valid during the call.
    """

    def __init__(
        self,
        on_frame: OnFrame,
        sink: Optional[Sink] = None,
        *,
        max_control_bytes: int = MAX_CONTROL_BYTES,
        max_data_bytes: int = MAX_DATA_BYTES,
        scratch_bytes: int = 256 << 10,
    ) -> None:
        self._on_frame = on_frame
        self._sink = sink
        self.max_control_bytes = max_control_bytes
        self.max_data_bytes = max_data_bytes
        self._header = bytearray(HEADER_BYTES)
        self._header_filled = 0
        self._current: Optional[FrameHeader] = None
        self._target: Optional[memoryview] = None
        self._filled = 0
        self._crc = 0
        self._hashed = 0  # payload bytes the running CRC covers
        self._scratch = memoryview(bytearray(scratch_bytes))
        self._last_direct = False
        self._failed: Optional[BaseException] = None

    @property
    def idle(self) -> bool:
        """True between frames (no header or payload partly read)."""
        return self._current is None and self._header_filled == 0

    def push(self, chunk: Any) -> None:
        """Feeds bytes. @raises TC_ERR_PROTOCOL; after one error every later call raises it again."""
        if self._failed is not None:
            raise self._failed
        try:
            data = chunk if isinstance(chunk, memoryview) else memoryview(chunk)
            data = data.cast("B") if data.format != "B" or data.ndim != 1 else data
            at, size = 0, len(data)
            while at < size:
                if self._current is None:
                    n = min(HEADER_BYTES - self._header_filled, size - at)
                    self._header[self._header_filled : self._header_filled + n] = data[at : at + n]
                    self._header_filled += n
                    at += n
                    if self._header_filled == HEADER_BYTES:
                        self._start_frame()
                else:
                    target = self._target
                    assert target is not None
                    n = min(len(target) - self._filled, size - at)
                    target[self._filled : self._filled + n] = data[at : at + n]
                    self._filled += n
                    self._hash()
                    at += n
                    if self._filled == len(target):
                        self._finish_frame()
        except BaseException as error:
            self._failed = error
            raise

    def read_buffer(self) -> memoryview:
        """Where the next socket read should land: the pending destination's rest, or the scratch buffer."""
        target = self._target
        if self._current is not None and target is not None and len(target) - self._filled >= DIRECT_MIN_BYTES:
            self._last_direct = True
            return target[self._filled :]
        self._last_direct = False
        return self._scratch

    def commit(self, n: int) -> None:
        """Records that ``n`` bytes landed in the last ``read_buffer()``. @raises TC_ERR_PROTOCOL"""
        if not self._last_direct:
            self.push(self._scratch[:n])
            return
        if self._failed is not None:
            raise self._failed
        target = self._target
        assert target is not None
        try:
            self._filled += n
            self._hash()
            if self._filled == len(target):
                self._finish_frame()
        except BaseException as error:
            self._failed = error
            raise

    def _hash(self) -> None:
        """Extends the payload's CRC32C over the bytes landed since the last extension, once they are
        ``CRC_SPAN_BYTES`` (recent, so still in cache; hashed with the GIL released) or the
        payload is complete."""
        target = self._target
        assert target is not None
        if self._filled - self._hashed >= CRC_SPAN_BYTES or self._filled == len(target):
            self._crc = crc32c(target[self._hashed : self._filled], self._crc)
            self._hashed = self._filled

    def _start_frame(self) -> None:
        h = decode_header(self._header, self.max_control_bytes, self.max_data_bytes)
        self._current = h
        self._header_filled = 0
        self._filled = 0
        self._crc = 0
        self._hashed = 0
        if h.type == DATA and self._sink is not None:
            dest = self._sink(h)
            if dest is None:
                raise protocol_error(f"unexpected DATA frame for request {h.request_id} at offset {h.offset}")
            if len(dest) != h.length:
                raise tc_error("TC_ERR_INTERNAL", "data sink returned a buffer of the wrong size")
            self._target = dest
        else:
            self._target = memoryview(bytearray(h.length))
        if h.length == 0:
            self._finish_frame()

    def _finish_frame(self) -> None:
        h = self._current
        payload = self._target
        assert h is not None and payload is not None
        self._current = None
        self._target = None
        self._filled = 0
        ok = self._crc == h.crc
        if not ok and h.type != DATA:
            raise protocol_error(f"checksum mismatch on a control frame (type {h.type})")
        self._on_frame(h, payload, ok)
