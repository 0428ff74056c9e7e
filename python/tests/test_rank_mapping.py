"""map_ranks gives exactly TypeScript's mapRanks: every vector of test/fixtures/rank-mapping-vectors.json (written
by the TypeScript implementation, which test/python/rank-mapping-vectors.test.ts checks against the same file)."""

from __future__ import annotations

import json
import os

import pytest

import tensorcast
from tensorcast.handshake import map_ranks

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
with open(os.path.join(ROOT, "test", "fixtures", "rank-mapping-vectors.json")) as f:
    VECTORS = json.load(f)["vectors"]

_ARGS = {"localTp": "local_tp", "localRank": "local_rank", "remoteTp": "remote_tp", "numKvHeads": "num_kv_heads",
         "headDim": "head_dim", "mla": "mla"}


def _call(inp):
    kwargs = {_ARGS[k]: v for k, v in inp.items()}
    kwargs.setdefault("local_rank", None)  # a missing rank: TypeScript sees undefined
    return map_ranks(**kwargs)


def test_the_vectors_cover_mappings_and_errors():
    assert sum(1 for v in VECTORS if "error" in v) > 50
    assert sum(1 for v in VECTORS if "output" in v) > 500
    assert any(len(v["output"]["reads"]) > 1 for v in VECTORS if "output" in v)
    assert any(v["output"]["remoteReplicated"] for v in VECTORS if "output" in v)


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: json.dumps(v["input"], separators=(",", ":")))
def test_map_ranks_matches_typescript(vector):
    if "error" in vector:
        with pytest.raises(tensorcast.TensorcastError) as info:
            _call(vector["input"])
        assert info.value.code == vector["error"]
    else:
        assert _call(vector["input"]).to_dict() == vector["output"]


def test_the_lazy_top_level_name():
    assert tensorcast.map_ranks is map_ranks
    m = tensorcast.map_ranks(local_tp=4, local_rank=3, remote_tp=2, num_kv_heads=8)
    assert (m.reads[0].remote_rank, m.local_heads.start, m.reads[0].remote_head_offset) == (1, 6, 2)
