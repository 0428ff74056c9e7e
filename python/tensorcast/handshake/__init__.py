"""The handshake client: publish and read the KV-transfer metadata of engine ranks on a tensorcast handshake
listener (docs/handshake.md), background handshakes with at most one in flight per engine (a
``concurrent.futures.Future`` per handshake), and ``map_ranks`` for heterogeneous TP.

    from tensorcast.handshake import Handshakes, RankMetadata, map_ranks
    with Handshakes("http://10.0.0.5:7072", token, expect_hash="vllm-0.9-llama3-bf16") as hs:
        meta = hs.handshake("prefill-0", [(0, 0)]).result()[0]
"""

from .client import HandshakeClient, RankAnswer, tls_context
from .publisher import HandshakePublisher
from .rank_mapping import HeadRange, RankMapping, RemoteRead, heads_of_rank, map_ranks
from .rank_metadata import RankMetadata, decode_rank_metadata, encode_rank_metadata
from .scheduler import Handshakes

__all__ = [
    "HandshakeClient",
    "HandshakePublisher",
    "Handshakes",
    "HeadRange",
    "RankAnswer",
    "RankMapping",
    "RankMetadata",
    "RemoteRead",
    "decode_rank_metadata",
    "encode_rank_metadata",
    "heads_of_rank",
    "map_ranks",
    "tls_context",
]
