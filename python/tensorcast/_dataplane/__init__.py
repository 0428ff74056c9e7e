"""The binary data plane in pure Python (docs/protocol.md): frames, a resumable decoder, one connection
(HELLO, LOAD, object PUT/GET) and ``DataPlane``, a thread-safe pool of connections to one daemon."""

from .frames import FrameHeader, crc32c, decode_header, encode_control, encode_header
from .decoder import FrameDecoder

__all__ = ["FrameDecoder", "FrameHeader", "crc32c", "decode_header", "encode_control", "encode_header"]
