"""CRC32C of memory ranges without copying them.

``google_crc32c.value`` takes only read-only bytes-like objects (``bytes``), which would mean copying every
4 MiB chunk of a mapping before checking it. The wheel ships its native library (``libcrc32c``); when it is
found, ``crc32c_extend`` is called through ``ctypes`` on the mapped address itself. Otherwise each chunk is
copied into ``bytes`` first (correct, slower).
"""

from __future__ import annotations

import ctypes
import glob
import os
from typing import Any, Optional

import google_crc32c
import numpy as np


def _native() -> Optional[Any]:
    here = os.path.dirname(google_crc32c.__file__)
    for pattern in (os.path.join(here, "..", "google_crc32c.libs", "libcrc32c*.so*"), os.path.join(here, "libcrc32c*.so*")):
        for path in sorted(glob.glob(pattern)):
            try:
                lib = ctypes.CDLL(path)
                fn = lib.crc32c_extend
            except (OSError, AttributeError):
                continue
            fn.restype = ctypes.c_uint32
            fn.argtypes = [ctypes.c_uint32, ctypes.c_void_p, ctypes.c_size_t]
            return fn
    return None


_EXTEND = _native()


def crc32c_of(array: np.ndarray, start: int, end: int) -> int:
    """CRC32C of bytes ``[start, end)`` of the C-contiguous uint8 ``array``."""
    if _EXTEND is not None:
        return int(_EXTEND(0, array.ctypes.data + start, end - start))
    return int(google_crc32c.value(array[start:end].tobytes()))
