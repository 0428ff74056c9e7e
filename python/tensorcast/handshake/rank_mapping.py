"""Heterogeneous TP between a reader ("local", e.g. decode) and a remote engine (prefill): which remote TP ranks a
local rank reads, and which KV heads of each (docs/handshake.md "Rank mapping").

A port of ``src/handshake/rank-mapping.ts`` with the same rules (vLLM's ``nixl/tp_mapping.py``) and the same
errors; ``test/fixtures/rank-mapping-vectors.json``, written by the TypeScript implementation, keeps the two equal.

- local TP >= remote TP: local rank r reads one remote, ``r * remote_tp // local_tp``, and only its own heads;
- local TP < remote TP: local rank r reads remotes ``r*k .. r*k+k-1`` (``k = remote_tp // local_tp``), whole; when
  the remote replicates KV heads (``remote_tp > num_kv_heads``) only the first remote holding each head is read;
- a TP above the number of KV heads replicates them: rank r holds head ``r * num_kv_heads // tp`` alone;
- MLA: every rank holds the whole latent cache, so a local rank reads one remote.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from ..errors import tc_error

#: Largest TP (and rank, exclusive) the handshake service accepts.
MAX_HANDSHAKE_RANK = 4096
_MAX_SAFE = 2**53 - 1


@dataclass(frozen=True)
class HeadRange:
    """A range of KV heads, absolute (0 .. num_kv_heads)."""

    start: int
    count: int

    def to_dict(self) -> Dict[str, int]:
        return {"start": self.start, "count": self.count}


@dataclass(frozen=True)
class RemoteRead:
    """One remote rank a local rank reads: its heads, where they start in the remote's and the local's heads."""

    remote_rank: int
    heads: HeadRange
    remote_head_offset: int
    local_head_offset: int
    #: ``remote_head_offset * head_dim`` and ``heads.count * head_dim`` when head_dim was given, else None.
    remote_element_offset: Optional[int] = None
    element_count: Optional[int] = None

    def to_dict(self) -> Dict[str, Any]:
        """The TypeScript ``RemoteRead`` (camelCase keys; the element fields only with a head dim)."""
        out: Dict[str, Any] = {
            "remoteRank": self.remote_rank,
            "heads": self.heads.to_dict(),
            "remoteHeadOffset": self.remote_head_offset,
            "localHeadOffset": self.local_head_offset,
        }
        if self.remote_element_offset is not None:
            out["remoteElementOffset"] = self.remote_element_offset
            out["elementCount"] = self.element_count
        return out


@dataclass(frozen=True)
class RankMapping:
    """The mapping of one local rank: its heads, the remote reads in local head order, replication flags."""

    local_heads: HeadRange
    reads: List[RemoteRead]
    remote_replicated: bool
    local_replicated: bool

    def to_dict(self) -> Dict[str, Any]:
        """The TypeScript ``RankMapping`` as ``JSON.stringify`` writes it."""
        return {
            "localHeads": self.local_heads.to_dict(),
            "reads": [r.to_dict() for r in self.reads],
            "remoteReplicated": self.remote_replicated,
            "localReplicated": self.local_replicated,
        }


def heads_of_rank(tp: int, rank: int, num_kv_heads: int) -> HeadRange:
    """The heads rank ``rank`` of a TP group of ``tp`` holds."""
    if tp <= num_kv_heads:
        return HeadRange(rank * num_kv_heads // tp, num_kv_heads // tp)
    return HeadRange(rank * num_kv_heads // tp, 1)


def _safe_int(value: Any) -> Optional[int]:
    """``value`` as an int when JavaScript's ``Number.isSafeInteger`` would accept it (2.0 too), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if abs(value) <= _MAX_SAFE else None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) <= _MAX_SAFE:
        return int(value)
    return None


def _show(value: Any) -> str:
    return json.dumps(value) if value is None or isinstance(value, (str, bool)) else str(value)


def map_ranks(
    local_tp: int,
    local_rank: int,
    remote_tp: int,
    num_kv_heads: int,
    head_dim: Optional[int] = None,
    mla: bool = False,
) -> RankMapping:
    """Which remote ranks ``local_rank`` (of a local TP group of ``local_tp``) reads, and which heads of each.

    ``num_kv_heads`` is the model's KV heads (all ranks together; 1 for MLA); with ``head_dim`` each read also
    carries element offsets within a token's row. ``result.to_dict()`` is exactly TypeScript's ``mapRanks``.

    Raises TC_ERR_INVALID_ARGUMENT when a size is not a positive integer (a TP at most 4096), ``mla`` is not a
    bool, the rank is out of range, neither TP divides the other, or a TP and the KV heads do not divide each other.

    >>> map_ranks(local_tp=4, local_rank=3, remote_tp=2, num_kv_heads=8).reads[0].remote_rank
    1
    """
    given = {"localTp": local_tp, "localRank": local_rank, "remoteTp": remote_tp, "numKvHeads": num_kv_heads}
    if head_dim is not None:
        given["headDim"] = head_dim
    if mla is not False:
        given["mla"] = mla

    def bad(why: str) -> Exception:
        return tc_error("TC_ERR_INVALID_ARGUMENT", f"rank mapping: {why}", given)

    sizes = {}
    for name, value in (("localTp", local_tp), ("remoteTp", remote_tp)):
        n = _safe_int(value)
        if n is None or n < 1 or n > MAX_HANDSHAKE_RANK:
            raise bad(f"{name} must be an integer in 1..{MAX_HANDSHAKE_RANK} (got {_show(value)})")
        sizes[name] = n
    ltp, rtp = sizes["localTp"], sizes["remoteTp"]
    heads = _safe_int(num_kv_heads)
    if heads is None or heads < 1:
        raise bad(f"numKvHeads must be a positive integer (got {_show(num_kv_heads)})")
    rank = _safe_int(local_rank)
    if rank is None:
        raise bad(f"localRank must be an integer (got {_show(local_rank)})")
    if rank < 0 or rank >= ltp:
        raise bad(f"localRank {rank} is outside 0..{ltp - 1}")
    if not isinstance(mla, bool):
        raise bad(f"mla must be a boolean (got {_show(mla)})")
    dim: Optional[int] = None
    if head_dim is not None:
        dim = _safe_int(head_dim)
        if dim is None or dim < 1 or dim * heads > _MAX_SAFE:
            raise bad(
                f"headDim must be a positive integer whose product with numKvHeads is exact (got {_show(head_dim)})"
            )
    if max(ltp, rtp) % min(ltp, rtp) != 0:
        raise bad(f"local TP {ltp} and remote TP {rtp}: one must divide the other")
    if mla:
        everything = HeadRange(0, heads)
        return RankMapping(everything, [_read(rank * rtp // ltp, everything, 0, 0, dim)], False, False)
    for side, tp in (("local", ltp), ("remote", rtp)):
        if (heads % tp != 0) if tp <= heads else (tp % heads != 0):
            raise bad(f"{side} TP {tp} and {heads} KV heads: one must divide the other")
    local_heads = heads_of_rank(ltp, rank, heads)
    if ltp >= rtp:
        sources = [rank * rtp // ltp]
    else:
        k = rtp // ltp
        seen = set()
        sources = []
        for r in range(rank * k, (rank + 1) * k):
            head = heads_of_rank(rtp, r, heads).start
            if head in seen:
                continue
            seen.add(head)
            sources.append(r)
    reads = []
    for remote_rank in sources:
        remote = heads_of_rank(rtp, remote_rank, heads)
        start = max(remote.start, local_heads.start)
        end = min(remote.start + remote.count, local_heads.start + local_heads.count)
        if end <= start:
            raise tc_error(
                "TC_ERR_INTERNAL", f"rank mapping: remote rank {remote_rank} holds none of local rank {rank}'s heads"
            )
        heads_read = HeadRange(start, end - start)
        reads.append(_read(remote_rank, heads_read, start - remote.start, start - local_heads.start, dim))
    return RankMapping(local_heads, reads, rtp > heads, ltp > heads)


def _read(remote_rank: int, heads: HeadRange, remote_offset: int, local_offset: int, dim: Optional[int]) -> RemoteRead:
    if dim is None:
        return RemoteRead(remote_rank, heads, remote_offset, local_offset)
    return RemoteRead(remote_rank, heads, remote_offset, local_offset, remote_offset * dim, heads.count * dim)
