"""The data-plane wire format (docs/protocol.md): a 32-byte little-endian header, then the payload.

Control frames carry JSON; DATA frames carry view bytes at an output offset with the CRC32C of the payload.
This is the Python twin of ``src/protocol/frames.ts``; the shared vectors under ``test/fixtures/protocol/``
(generated from the TypeScript encoder) keep the two in step.

CRC32C is ``tensorcast._crc.crc32c`` (re-exported here): hardware CRC32C over any buffer in place, the GIL
released on large spans (see that module for why and how).
"""

from __future__ import annotations

import json
import struct
from typing import Any, Dict, NamedTuple

from .._crc import crc32c  # noqa: F401 - re-exported (tests, tensorcast._dataplane)
from ..errors import tc_error

MAGIC = 0x50444354  # "TCDP" read as a little-endian u32
PROTOCOL_VERSION = 1
HEADER_BYTES = 32
MAX_CONTROL_BYTES = 16 << 20
MAX_DATA_BYTES = 16 << 20
#: Largest frame a server accepts before HELLO (and the largest HELLO a client should send).
HELLO_PHASE_BYTES = 8 << 10
_MAX_SAFE_INTEGER = (1 << 53) - 1

HELLO, WELCOME, LOAD, DATA, END, ERROR, CREDIT, CANCEL, PUT, GET, INFO, DONE, SAPPEND, SREAD = range(1, 15)
FRAME_NAMES = {
    HELLO: "HELLO",
    WELCOME: "WELCOME",
    LOAD: "LOAD",
    DATA: "DATA",
    END: "END",
    ERROR: "ERROR",
    CREDIT: "CREDIT",
    CANCEL: "CANCEL",
    PUT: "PUT",
    GET: "GET",
    INFO: "INFO",
    DONE: "DONE",
    SAPPEND: "SAPPEND",
    SREAD: "SREAD",
}

_HEADER = struct.Struct("<IBBHIIQII")  # magic, version, type, flags, request id, length, offset, crc, reserved


class FrameHeader(NamedTuple):
    """A decoded header. ``offset``: DATA, the payload's output offset; CREDIT, the bytes granted."""

    type: int
    request_id: int
    length: int
    offset: int
    crc: int


def protocol_error(message: str):
    """A protocol violation (``TC_ERR_PROTOCOL``)."""
    return tc_error("TC_ERR_PROTOCOL", f"data plane: {message}")


def encode_header(ftype: int, request_id: int, length: int, offset: int = 0, crc: int = 0) -> bytes:
    """The 32-byte header of a frame."""
    return _HEADER.pack(MAGIC, PROTOCOL_VERSION, ftype, 0, request_id & 0xFFFFFFFF, length, offset, crc & 0xFFFFFFFF, 0)


def encode_control(ftype: int, request_id: int, body: Any, offset: int = 0) -> bytes:
    """A control frame: header + compact JSON payload with its CRC32C. @raises TC_ERR_INVALID_ARGUMENT"""
    payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(payload) > MAX_CONTROL_BYTES:
        raise tc_error("TC_ERR_INVALID_ARGUMENT", f"control frame of {len(payload)} bytes exceeds {MAX_CONTROL_BYTES}")
    return encode_header(ftype, request_id, len(payload), offset, crc32c(payload)) + payload


def encode_data_header(request_id: int, offset: int, payload: Any) -> bytes:
    """The header of a DATA frame carrying ``payload`` at ``offset`` (its CRC32C computed here)."""
    return encode_header(
        DATA,
        request_id,
        len(payload) if not isinstance(payload, memoryview) else payload.nbytes,
        offset,
        crc32c(payload),
    )


def decode_header(
    buf: Any, max_control_bytes: int = MAX_CONTROL_BYTES, max_data_bytes: int = MAX_DATA_BYTES
) -> FrameHeader:
    """Parses and checks the 32 bytes at the start of ``buf``. @raises TC_ERR_PROTOCOL"""
    magic, version, ftype, _flags, request_id, length, offset, crc, _reserved = _HEADER.unpack_from(buf, 0)
    if magic != MAGIC:
        raise protocol_error("bad magic (not a tensorcast data-plane stream)")
    if version != PROTOCOL_VERSION:
        raise protocol_error(f"unsupported protocol version {version} (this side speaks {PROTOCOL_VERSION})")
    if ftype not in FRAME_NAMES:
        raise protocol_error(f"unknown frame type {ftype}")
    limit = max_data_bytes if ftype == DATA else max_control_bytes
    if length > limit:
        raise protocol_error(f"frame of {length} bytes exceeds the limit of {limit}")
    if offset > _MAX_SAFE_INTEGER:
        raise protocol_error("frame offset beyond 2^53")
    return FrameHeader(ftype, request_id, length, offset, crc)


def parse_control(payload: Any, what: str) -> Dict[str, Any]:
    """A control payload as a JSON object. @raises TC_ERR_PROTOCOL"""
    try:
        value = json.loads(bytes(payload).decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise protocol_error(f"{what} frame: payload is not JSON") from None
    if not isinstance(value, dict):
        raise protocol_error(f"{what} frame: payload is not a JSON object")
    return value
