"""Every rank of TP 1, 2 and 4 of a transformers-written Llama, over shm, files and tcp, as numpy and as torch,
equals torch slicing of the original checkpoint (vLLM's slicing, written here independently of
tensorcast's layout code); mapped results are views of the mapping (no copy); ``into=`` fills the caller's
buffer on every transport."""

from __future__ import annotations

import numpy as np
import pytest

import tensorcast
from conftest import model_daemon, module_client, require_module
from load_helpers import extent, inside, mapped_base, same, source_tensors, want_tp

TRANSPORTS = ("shm", "files", "tcp")


@pytest.fixture(scope="module")
def env(tmp_path_factory, request, hf_model):
    require_module("safetensors")
    d = model_daemon(tmp_path_factory, request, hf_model)
    return d, module_client(request, d), hf_model, source_tensors(hf_model)


def mapping_ranges(result):
    """The address ranges of the mappings a result's arrays may live on."""
    owner = result._owner
    maps = owner.shards if hasattr(owner, "shards") else [owner]
    return [m.address_range() for m in maps]


@pytest.mark.parametrize("as_torch", [False, True], ids=["numpy", "torch"])
@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("size", [1, 2, 4])
def test_every_rank_equals_torch_slicing(env, size, transport, as_torch):
    import torch

    d, client, model, src = env
    for rank in range(size):
        want = want_tp(model, src, size, rank)
        r = client.load("model:hf:v1", tp=(size, rank), transport=transport, as_torch=as_torch)
        assert r.stats.transport == transport and r.stats.bytes == r.plan.total_bytes
        assert list(r) == [t.name for t in r.plan.tensors]
        assert set(r) == set(want)
        for name, got in r.items():
            if as_torch:
                assert isinstance(got, torch.Tensor) and got.dtype == torch.bfloat16, name
            else:
                assert isinstance(got, np.ndarray) and got.dtype == np.int16, name
            assert same(got, want[name]), f"{transport} tp={size} rank={rank}: {name} differs"
        if transport in ("shm", "files"):
            # No copy: every array lies inside one of the result's mappings.
            assert r.stats.copies == 0
            ranges = mapping_ranges(r)
            for name, got in r.items():
                assert any(inside(got, lo, hi) for lo, hi in ranges), f"{name} is not on the mapping"
                if not as_torch:
                    base, _mm = mapped_base(got)
                    assert any(int(base.__array_interface__["data"][0]) == lo for lo, _ in ranges)
        r.release()


def test_shm_arrays_are_views_of_one_mapping(env):
    _d, client, _model, _src = env
    with client.load("model:hf:v1", tp=(2, 1), transport="shm") as r:
        bases = {id(mapped_base(a)[0]) for a in r.values()}
        assert len(bases) == 1
        base, mm = mapped_base(next(iter(r.values())))
        lo, hi = extent(base)
        assert hi - lo == r.plan.total_bytes <= len(mm)
        # At its planned offset, each tensor's first byte.
        for t in r.plan.tensors:
            assert extent(r[t.name])[0] == lo + t.offset


def test_files_dim1_split_is_a_strided_view(env):
    _d, client, _model, _src = env
    r = client.load("model:hf:v1", tp=(2, 0), transport="files")
    down = r["model.layers.0.mlp.down_proj.weight"]
    assert not down.flags.c_contiguous and r.stats.copies == 0
    base, _ = mapped_base(down)
    full = base.nbytes
    lo, hi = extent(base)
    assert inside(down, lo, lo + full)
    r.release()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_into_fills_the_callers_buffer(env, transport):
    import torch

    d, client, model, src = env
    want = want_tp(model, src, 4, 3)
    plan = client.plan("model:hf:v1", tp=(4, 3))
    for kind in ("numpy", "bytearray", "torch"):
        if kind == "numpy":
            buf = np.zeros(plan.total_bytes, dtype=np.uint8)
        elif kind == "bytearray":
            buf = bytearray(plan.total_bytes)
        else:
            buf = torch.zeros(plan.total_bytes // 2, dtype=torch.bfloat16)
        r = client.load("model:hf:v1", tp=(4, 3), transport=transport, into=buf, as_torch=kind == "torch")
        lo, hi = extent(buf) if kind != "bytearray" else extent(np.frombuffer(buf, np.uint8))
        for name, got in r.items():
            assert same(got, want[name]), f"{transport} into {kind}: {name}"
            assert inside(got, lo, hi), f"{name} is not on the caller's buffer"
        assert r.stats.copies == (0 if transport == "tcp" else 1)
        r.release()
    if transport == "shm":
        # The copy released the lease at once.
        assert client._leases.held() == []


def test_wrong_destination_size_before_any_io(env):
    d, client, _model, _src = env
    before = d.request("GET", "/v1/replicas")["replicas"]
    for transport in TRANSPORTS:
        with pytest.raises(tensorcast.InvalidArgumentError) as e:
            client.load("model:hf:v1", tp=(2, 0), transport=transport, into=np.zeros(7, dtype=np.uint8))
        assert e.value.code == "TC_ERR_DESTINATION_SIZE"
    with pytest.raises(tensorcast.InvalidArgumentError):
        client.load("model:hf:v1", tp=(2, 0), into=b"read-only bytes")
    assert d.request("GET", "/v1/replicas")["replicas"] == before


def test_views_and_tensor_lists(env):
    import torch

    _d, client, _model, src = env
    view = {
        "model.layers.1.self_attn.o_proj.weight": [[10, 20], [-64, 32]],
        "model.norm.weight": None,
        "lm_head.weight": [[1000, 24]],
    }
    want = {
        "model.layers.1.self_attn.o_proj.weight": src["model.layers.1.self_attn.o_proj.weight"][10:30, 192:224],
        "model.norm.weight": src["model.norm.weight"],
        "lm_head.weight": src["lm_head.weight"][1000:1024],
    }
    for transport in TRANSPORTS:
        r = client.load("model:hf:v1", view=view, transport=transport, as_torch=True)
        assert set(r) == set(want)
        for name, got in r.items():
            assert torch.equal(got, want[name]), f"{transport}: {name}"
        r.release()
        r = client.load("model:hf:v1", tensors=["model.norm.weight"], transport=transport)
        assert list(r) == ["model.norm.weight"] and same(r["model.norm.weight"], src["model.norm.weight"])
        r.release()


def test_whole_artifact_and_auto(env):
    _d, client, _model, src = env
    r = client.load("model:hf:v1")
    assert r.stats.transport == "shm"  # the daemon is on this host
    assert set(r) == set(src) and all(same(r[n], src[n]) for n in src)
    r.release()
    r.release()  # idempotent
    with pytest.raises(tensorcast.TensorcastError) as e:
        r["model.norm.weight"]
    assert e.value.code == "TC_ERR_ABORTED"


def test_fused_pieces_and_padding_are_gathered_once(env):
    import torch

    _d, client, _model, src = env
    name = "model.layers.0.mlp.gate_proj.weight"
    view = {name: {"pieces": [[[0, 16], [0, 256]], [[256, 8], [0, 256]]], "padDim0": 3}, "model.norm.weight": None}
    t = src[name]
    want = torch.cat([t[0:16], t[256:264], torch.zeros(3, 256, dtype=t.dtype)])
    for transport in TRANSPORTS:
        r = client.load("model:hf:v1", view=view, transport=transport, as_torch=True)
        assert torch.equal(r[name], want), transport
        assert torch.equal(r["model.norm.weight"], src["model.norm.weight"])
        if transport == "files":
            assert r.stats.copies == 1  # the fused tensor was gathered; the norm is still a view of the file
            ranges = mapping_ranges(r)
            assert any(inside(r["model.norm.weight"], lo, hi) for lo, hi in ranges)
        r.release()


def test_timeout_bounds_the_whole_load(env):
    _d, client, _model, _src = env
    for transport in TRANSPORTS:
        with pytest.raises(tensorcast.TensorcastError) as e:
            client.load("model:hf:v1", tp=(2, 0), transport=transport, timeout=1e-9)
        assert e.value.code == "TC_ERR_TIMEOUT"
    with pytest.raises(tensorcast.InvalidArgumentError):
        client.load("model:hf:v1", timeout=0)
    assert client._leases is None or client._leases.held() == []
