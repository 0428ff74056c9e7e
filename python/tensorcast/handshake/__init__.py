"""The handshake client: publish and read KV-transfer metadata of engine ranks on a tensorcast handshake
service (docs/handshake.md), background handshakes with at most one in flight per engine, and ``map_ranks``
for heterogeneous TP."""

from .rank_mapping import HeadRange, RankMapping, RemoteRead, heads_of_rank, map_ranks

__all__ = ["HeadRange", "RankMapping", "RemoteRead", "heads_of_rank", "map_ranks"]
