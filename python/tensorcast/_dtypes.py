"""safetensors dtypes as numpy and torch dtypes.

numpy has no bfloat16 or float8: their bytes are held in numpy as same-width integers (``BF16`` as
``int16``, ``F8_*`` as ``uint8``) and reinterpreted, without a copy, as the torch dtype by ``as_torch``.
Sub-byte dtypes (``F4``, ``F6_*``) come as their raw bytes (``uint8``, shape ``(nbytes,)``).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from .errors import tc_error

#: safetensors name -> (numpy dtype of the held bytes, torch dtype attribute name or None).
_TABLE: Dict[str, Tuple[str, Optional[str]]] = {
    "BOOL": ("bool", "bool"),
    "U8": ("uint8", "uint8"),
    "I8": ("int8", "int8"),
    "I16": ("<i2", "int16"),
    "U16": ("<u2", "uint16"),
    "F16": ("<f2", "float16"),
    "BF16": ("<i2", "bfloat16"),
    "I32": ("<i4", "int32"),
    "U32": ("<u4", "uint32"),
    "F32": ("<f4", "float32"),
    "C64": ("<c8", "complex64"),
    "F64": ("<f8", "float64"),
    "I64": ("<i8", "int64"),
    "U64": ("<u8", "uint64"),
    "F8_E5M2": ("uint8", "float8_e5m2"),
    "F8_E4M3": ("uint8", "float8_e4m3fn"),
    "F8_E8M0": ("uint8", "float8_e8m0fnu"),
    "F8_E4M3FNUZ": ("uint8", "float8_e4m3fnuz"),
    "F8_E5M2FNUZ": ("uint8", "float8_e5m2fnuz"),
    "F4": ("uint8", None),
    "F6_E2M3": ("uint8", None),
    "F6_E3M2": ("uint8", None),
}

_BITS = {"F4": 4, "F6_E2M3": 6, "F6_E3M2": 6}


def numpy_dtype(dtype: str) -> np.dtype:
    """The numpy dtype holding a tensor of safetensors dtype ``dtype``."""
    entry = _TABLE.get(dtype)
    if entry is None:
        raise tc_error("TC_ERR_FORMAT_UNKNOWN_DTYPE", f"unknown dtype {dtype!r}", {"dtype": dtype})
    return np.dtype(entry[0])


def byte_length(dtype: str, shape: Sequence[int]) -> int:
    """Bytes of a dense tensor."""
    n = 1
    for d in shape:
        n *= int(d)
    bits = _BITS.get(dtype)
    if bits is not None:
        return (n * bits + 7) // 8
    return n * numpy_dtype(dtype).itemsize


def array_on(buffer: Any, offset: int, dtype: str, shape: Sequence[int]) -> np.ndarray:
    """A numpy array of ``dtype``/``shape`` on ``buffer`` (anything with the buffer protocol) at
    ``offset``, without a copy. Sub-byte dtypes give their raw bytes."""
    nbytes = byte_length(dtype, shape)
    if dtype in _BITS:
        return np.frombuffer(buffer, dtype=np.uint8, count=nbytes, offset=offset)
    dt = numpy_dtype(dtype)
    count = nbytes // dt.itemsize
    return np.frombuffer(buffer, dtype=dt, count=count, offset=offset).reshape(tuple(int(d) for d in shape))


def import_torch() -> Any:
    """``torch``, imported on first use; a clear error when it is not installed."""
    try:
        import torch  # noqa: PLC0415 - optional dependency, imported lazily
    except ImportError as e:
        raise tc_error(
            "TC_ERR_INVALID_ARGUMENT",
            "as_torch=True needs PyTorch, which is not installed: pip install torch (or tensorcast[torch])",
            {"module": "torch"},
        ) from e
    return torch


def as_torch(array: np.ndarray, dtype: str) -> Any:
    """A torch tensor on ``array``'s memory (no copy), reinterpreted as ``dtype``'s torch dtype."""
    torch = import_torch()
    entry = _TABLE[dtype]
    t = torch.from_numpy(array) if array.flags.writeable else _from_readonly(torch, array)
    if entry[1] is None:
        return t
    target = getattr(torch, entry[1], None)
    if target is None:
        raise tc_error("TC_ERR_INVALID_ARGUMENT", f"this torch ({torch.__version__}) has no dtype for {dtype}", {"dtype": dtype})
    return t if t.dtype == target else t.view(target)


def _from_readonly(torch: Any, array: np.ndarray) -> Any:
    # torch.from_numpy warns on read-only arrays (mapped files opened read-only): the tensor shares the
    # memory all the same; writing to it is the caller's error (it faults on a read-only mapping).
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(array)
