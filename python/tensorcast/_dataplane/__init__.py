"""The binary data plane in pure Python (docs/protocol.md): frames and a resumable decoder (``frames``,
``decoder``), one blocking connection doing HELLO, LOAD and object PUT/GET (``connection``), and
``DataPlane``, a thread-safe pool of connections to one daemon that splits a load across several of them
(``pool``). ``Client.dataplane`` builds one from ``/v1/info``'s ``dataAddress``."""

from .connection import UNSET, DataConnection
from .decoder import FrameDecoder
from .frames import FrameHeader, crc32c, decode_header, encode_control, encode_header
from .pool import DataPlane

__all__ = [
    "UNSET",
    "DataConnection",
    "DataPlane",
    "FrameDecoder",
    "FrameHeader",
    "crc32c",
    "decode_header",
    "encode_control",
    "encode_header",
]
