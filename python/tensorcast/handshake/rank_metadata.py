"""One rank's KV-transfer metadata and its msgpack form (docs/handshake.md "Payload schema"), as
``src/handshake/rank-metadata.ts`` writes and reads it: snake_case keys following vLLM's NixlAgentMetadata, a
schema version ``v``. Decoding is strict: unknown keys, wrong types, out-of-range numbers and trailing bytes are
TC_ERR_MALFORMED, never a half-filled object.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Union

import msgpack

from ..errors import tc_error
from .rank_mapping import MAX_HANDSHAKE_RANK

#: The schema version written and read (``v``).
RANK_METADATA_VERSION = 1
#: At most this many entries in each list.
MAX_LIST_LENGTH = 65536
#: At most this many keys in ``extra``, each value at most 64 KiB once encoded.
MAX_EXTRA_KEYS = 64
_MAX_EXTRA_BYTES = 64 * 1024
_MAX_SAFE = 2**53 - 1
#: Engine ids, incarnations and hashes: 1..128 of these characters.
ID_PATTERN = re.compile(r"[A-Za-z0-9._:@+-]{1,128}")

_WIRE_KEYS = (
    "v",
    "engine_id",
    "tp_rank",
    "dp_rank",
    "compatibility_hash",
    "incarnation",
    "agent_metadata",
    "kv_caches_base_addr",
    "block_lens",
    "block_strides",
    "num_blocks",
    "block_size",
    "kv_cache_layout",
    "tp_size",
    "device_id",
    "extra",
)


@dataclass
class RankMetadata:
    """What a reader needs to read one rank's KV blocks. Field names are the wire keys (vLLM's).

    ``compatibility_hash`` covers everything both sides must agree on; ``incarnation`` changes when the engine
    restarts; ``agent_metadata`` is the transfer agent's opaque blob; ``kv_caches_base_addr`` uint64 per region.
    """

    engine_id: str
    tp_rank: int
    dp_rank: int
    compatibility_hash: str
    incarnation: str
    agent_metadata: bytes
    kv_caches_base_addr: List[int]
    block_lens: List[int]
    block_strides: List[int]
    num_blocks: int
    block_size: int
    kv_cache_layout: str
    tp_size: int
    device_id: int
    extra: Optional[Dict[str, Any]] = field(default=None)

    def to_wire(self) -> Dict[str, Any]:
        """The msgpack map (``v`` first, keys in the TypeScript order; ``extra`` only when set)."""
        out: Dict[str, Any] = {"v": RANK_METADATA_VERSION}
        for key in _WIRE_KEYS[1:]:
            value = getattr(self, key)
            if value is not None:
                out[key] = bytes(value) if key == "agent_metadata" else value
        return out


def _malformed(message: str) -> Exception:
    return tc_error("TC_ERR_MALFORMED", f"rank payload: {message}")


def encode_rank_metadata(meta: RankMetadata) -> bytes:
    """``meta`` validated and encoded to its msgpack payload. Raises TC_ERR_MALFORMED for a field out of schema."""
    try:
        payload = msgpack.packb(meta.to_wire(), use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as e:
        raise _malformed(f"cannot be encoded: {e}") from e
    decode_rank_metadata(payload)
    return payload


def decode_rank_metadata(payload: Union[bytes, bytearray, memoryview], max_bytes: Optional[int] = None) -> RankMetadata:
    """Decodes and validates a msgpack payload; ``max_bytes`` caps it before anything is read.

    Raises TC_ERR_TOO_LARGE above ``max_bytes``; TC_ERR_MALFORMED for anything that is not a valid payload.
    """
    n = len(payload)
    if max_bytes is not None and n > max_bytes:
        raise tc_error(
            "TC_ERR_TOO_LARGE",
            f"rank payload of {n} bytes is above the cap of {max_bytes}",
            {"bytes": n, "cap": max_bytes},
        )
    try:
        raw = msgpack.unpackb(
            bytes(payload),
            raw=False,
            strict_map_key=False,
            max_str_len=1 << 20,
            max_bin_len=n,
            max_array_len=MAX_LIST_LENGTH,
            max_map_len=1024,
            max_ext_len=0,
        )
    except Exception as e:  # msgpack raises ExtraData, FormatError, StackError, ValueError, UnicodeDecodeError...
        raise _malformed(f"not valid msgpack: {e}") from e
    return _validate(raw)


def _int(key: str, value: Any, top: int) -> int:
    n: Any = value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) <= _MAX_SAFE:
        n = int(value)  # JavaScript reads a float64 2.0 as the number 2
    if isinstance(n, bool) or not isinstance(n, int) or n < 0 or n > top or n > _MAX_SAFE:
        raise _malformed(f"'{key}' must be an integer in 0..{top}")
    return n


def _id(raw: Dict[str, Any], key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise _malformed(f"'{key}' must be 1..128 characters of [A-Za-z0-9._:@+-]")
    return value


def _list(raw: Dict[str, Any], key: str) -> list:
    value = raw.get(key)
    if not isinstance(value, (list, tuple)):
        raise _malformed(f"'{key}' must be an array")
    return list(value)


def _address(value: Any) -> int:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and 0 <= value <= _MAX_SAFE:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value >= 1 << 64:
        raise _malformed("'kv_caches_base_addr' holds uint64 values only")
    return value


def _validate(raw: Any) -> RankMetadata:
    if not isinstance(raw, dict):
        raise _malformed("the payload is not a map")
    for key in raw:
        if not isinstance(key, str) or key not in _WIRE_KEYS:
            raise _malformed(f"unknown key '{str(key)[:64]}'")
    if not (isinstance(raw.get("v"), int) and not isinstance(raw.get("v"), bool) and raw["v"] == RANK_METADATA_VERSION):
        raise _malformed(f"schema version {raw.get('v')} is not {RANK_METADATA_VERSION}")
    agent = raw.get("agent_metadata")
    if not isinstance(agent, bytes):
        raise _malformed("'agent_metadata' must be msgpack bin (bytes)")
    layout = raw.get("kv_cache_layout")
    # JavaScript counts UTF-16 code units.
    if not isinstance(layout, str) or not 0 < len(layout.encode("utf-16-le", "surrogatepass")) // 2 <= 32:
        raise _malformed("'kv_cache_layout' must be a string of 1..32 characters")
    tp_size = _int("tp_size", raw.get("tp_size"), MAX_HANDSHAKE_RANK)
    tp_rank = _int("tp_rank", raw.get("tp_rank"), MAX_HANDSHAKE_RANK - 1)
    if tp_size < 1 or tp_rank >= tp_size:
        raise _malformed(f"'tp_rank' {tp_rank} must be below 'tp_size' {tp_size} (at least 1)")
    meta = RankMetadata(
        engine_id=_id(raw, "engine_id"),
        tp_rank=tp_rank,
        dp_rank=_int("dp_rank", raw.get("dp_rank"), MAX_HANDSHAKE_RANK - 1),
        compatibility_hash=_id(raw, "compatibility_hash"),
        incarnation=_id(raw, "incarnation"),
        agent_metadata=agent,
        kv_caches_base_addr=[_address(v) for v in _list(raw, "kv_caches_base_addr")],
        block_lens=[_int("block_lens[]", v, _MAX_SAFE) for v in _list(raw, "block_lens")],
        block_strides=[_int("block_strides[]", v, _MAX_SAFE) for v in _list(raw, "block_strides")],
        num_blocks=_int("num_blocks", raw.get("num_blocks"), _MAX_SAFE),
        block_size=_int("block_size", raw.get("block_size"), _MAX_SAFE),
        kv_cache_layout=layout,
        tp_size=tp_size,
        device_id=_int("device_id", raw.get("device_id"), _MAX_SAFE),
        extra=None if "extra" not in raw else _validate_extra(raw["extra"]),
    )
    return meta


def _validate_extra(extra: Any) -> Dict[str, Any]:
    if not isinstance(extra, dict):
        raise _malformed("'extra' must be a map")
    if len(extra) > MAX_EXTRA_KEYS:
        raise _malformed(f"'extra' has {len(extra)} keys (at most {MAX_EXTRA_KEYS})")
    for key, value in extra.items():
        if not isinstance(key, str):
            raise _malformed(f"'extra' key {str(key)[:64]!r} is not a string")
        try:
            size = len(msgpack.packb(value, use_bin_type=True))
        except Exception as e:
            raise _malformed(f"'extra.{key[:64]}' cannot be encoded: {e}") from e
        if size > _MAX_EXTRA_BYTES:
            raise _malformed(f"'extra.{key[:64]}' is {size} bytes (at most {_MAX_EXTRA_BYTES})")
    return extra
