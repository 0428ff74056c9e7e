"""CRC32C (Castagnoli) of buffers without copying them, with the GIL released on large spans.

The one CRC32C path of the package: the data plane's frames (``tensorcast._dataplane.frames``, the
decoder's running CRC of each DATA payload as ``recv_into`` lands it) and the shm transport's check of every
4 MiB chunk of a mapped file (``tensorcast._load.mapped``) both call ``crc32c(data, crc)``.

Why not ``google_crc32c.extend`` alone: its C extension (google-crc32c 1.9) reads any buffer without a
release hook (``bytes``, numpy arrays) in place, but releases the GIL only for ``bytes`` of 1 MiB and more
(``_should_release_gil`` in its ``_crc32c.c``: a mutable buffer could change under it). A numpy array or a
mapping is hashed with the GIL held, so the shm chunk checks on two threads, or four connections' threads
hashing what they received, run one at a time (measured on 64 MiB in 4 MiB chunks, 2 cores: 13 GB/s on one
thread, 11 GB/s on two). The wheel ships the native library it wraps (``libcrc32c``, next to the package in
``google_crc32c.libs/`` on Linux wheels); ``crc32c_extend`` called through ``ctypes`` reads the memory at
its address, and ``ctypes`` releases the GIL around every foreign call (measured: 13 GB/s on one thread,
17 GB/s on two, a pure-Python thread keeps running meanwhile). Spans below ``NATIVE_MIN_BYTES`` (control
frames, small payloads) and ``bytes`` go to ``google_crc32c`` (cheaper to call; ``bytes`` of 1 MiB and more
release the GIL there). Where the library is not found (another wheel layout, a source build), every span
goes to ``google_crc32c`` (correct, no copy, GIL held). When only google-crc32c's pure-Python fallback is
installed, every frame is still checked but a load crawls: a ``RuntimeWarning`` says so once.
"""

from __future__ import annotations

import ctypes
import glob
import os
import warnings
from typing import Any, Optional

import google_crc32c as _gcrc
import numpy as np

#: Spans from this size go through the native library with the GIL released (when it is found).
NATIVE_MIN_BYTES = 64 << 10

if _gcrc.implementation != "c":  # pragma: no cover - depends on the installed wheel
    warnings.warn(
        "tensorcast: google_crc32c is using its pure-Python fallback; data-plane and shm loads will be slow "
        "(install a google-crc32c wheel with the C extension)",
        RuntimeWarning,
        stacklevel=2,
    )


def _native() -> Optional[Any]:
    """``crc32c_extend(crc, address, length)`` of the wheel's ``libcrc32c``, or None."""
    if _gcrc.implementation != "c":  # pragma: no cover
        return None
    here = os.path.dirname(_gcrc.__file__)
    patterns = (os.path.join(here, "..", "google_crc32c.libs", "libcrc32c*.so*"), os.path.join(here, "libcrc32c*.so*"))
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)):
            try:
                fn = ctypes.CDLL(path).crc32c_extend
            except (OSError, AttributeError):
                continue
            fn.restype = ctypes.c_uint32
            fn.argtypes = [ctypes.c_uint32, ctypes.c_void_p, ctypes.c_size_t]
            return fn
    return None


_EXTEND = _native()
#: True when large spans are hashed with the GIL released (the native library was found).
RELEASES_GIL = _EXTEND is not None


def crc32c(data: Any, crc: int = 0) -> int:
    """CRC32C of ``data`` (bytes, bytearray, memoryview, C-contiguous numpy array), continuing from ``crc``.

    No copy; the GIL is released for spans of ``NATIVE_MIN_BYTES`` and more when the native library is there.
    """
    if isinstance(data, bytes):
        return _gcrc.extend(crc, data) if crc else _gcrc.value(data)
    arr = data if isinstance(data, np.ndarray) else np.frombuffer(data, dtype=np.uint8)
    n = arr.nbytes
    if _EXTEND is not None and n >= NATIVE_MIN_BYTES and arr.flags.c_contiguous:
        return int(_EXTEND(crc, arr.__array_interface__["data"][0], n))
    return _gcrc.extend(crc, arr)
