"""Helpers of the load tests: vLLM-style TP slicing of a Llama checkpoint with torch (independent of
tensorcast's layout code, as test/fixtures/check_slices.py does), and where an array's memory lives."""

from __future__ import annotations

import glob
import json
import mmap
import os
from pathlib import Path
from typing import Any, Dict, Tuple

import numpy as np


def source_tensors(model: Path) -> Dict[str, Any]:
    """Every tensor of the checkpoint, read with safetensors (torch)."""
    from safetensors import safe_open

    out: Dict[str, Any] = {}
    for f in sorted(glob.glob(os.path.join(model, "*.safetensors"))):
        with safe_open(f, "pt") as h:
            for k in h.keys():
                out[k] = h.get_tensor(k)
    return out


def want_tp(model: Path, src: Dict[str, Any], size: int, rank: int) -> Dict[str, Any]:
    """Rank ``rank`` of ``size`` as vLLM slices a Llama: column-parallel q/gate/up/embed/lm_head (dim 0),
    row-parallel o/down (dim 1), k/v by kv heads (replicated when size > kv heads), the rest whole."""
    import torch

    cfg = json.loads((model / "config.json").read_text())
    heads = cfg["num_attention_heads"]
    kv = cfg.get("num_key_value_heads", heads)
    hd = cfg.get("head_dim", cfg["hidden_size"] // heads)
    want: Dict[str, Any] = {}
    for name, t in src.items():
        if name.endswith(("k_proj.weight", "v_proj.weight")):
            if size > kv:
                want[name] = t.narrow(0, (rank // (size // kv)) * hd, hd)
            else:
                per = t.shape[0] // size
                want[name] = t.narrow(0, rank * per, per)
        elif name.endswith(("o_proj.weight", "down_proj.weight")):
            want[name] = torch.chunk(t, size, dim=1)[rank]
        elif name.endswith(("q_proj.weight", "gate_proj.weight", "up_proj.weight", "embed_tokens.weight", "lm_head.weight")):
            assert t.shape[0] % size == 0, name
            want[name] = torch.chunk(t, size, dim=0)[rank]
        else:
            want[name] = t
    return want


def as_torch_bytes(x: Any) -> Any:
    """A tensor or numpy array as a torch tensor with the same bytes (BF16 held as int16 in numpy)."""
    import torch

    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    return x.contiguous()


def same(got: Any, want: Any) -> bool:
    """Equal shape and bytes (``want`` a torch tensor; ``got`` numpy or torch)."""
    import torch

    g = as_torch_bytes(got)
    w = want.contiguous()
    if tuple(g.shape) != tuple(w.shape):
        return False
    if g.dtype != w.dtype:
        if g.element_size() != w.element_size():
            return False
        g = g.view(w.dtype)
    return torch.equal(g.view(torch.uint8) if g.dim() else g, w.view(torch.uint8) if w.dim() else w)


def data_address(x: Any) -> int:
    if isinstance(x, np.ndarray):
        return int(x.__array_interface__["data"][0])
    return int(x.data_ptr())


def mapped_base(a: np.ndarray) -> Tuple[np.ndarray, mmap.mmap]:
    """The uint8 array over a whole mapping that ``a`` is a view of, and the ``mmap``; fails if ``a`` is not
    a view of a mapping (i.e. its bytes were copied)."""
    b = a
    while isinstance(b, np.ndarray):
        owner = b.base.obj if isinstance(b.base, memoryview) else b.base
        if isinstance(owner, mmap.mmap):
            return b, owner
        b = b.base
    raise AssertionError(f"not a view of an mmap: base chain ends in {type(b).__name__}")


def extent(x: Any) -> Tuple[int, int]:
    """[first byte, one past the last byte] of an array or tensor (strided ones included)."""
    if isinstance(x, np.ndarray):
        lo, hi = np.byte_bounds(x) if hasattr(np, "byte_bounds") else np.lib.array_utils.byte_bounds(x)
        return int(lo), int(hi)
    start = int(x.data_ptr())
    if x.numel() == 0:
        return start, start
    last = sum((n - 1) * s for n, s in zip(x.shape, x.stride()))
    return start, start + (last + 1) * x.element_size()


def inside(x: Any, lo: int, hi: int) -> bool:
    """Every byte of ``x`` lies in [lo, hi)."""
    a, b = extent(x)
    return lo <= a and b <= hi
