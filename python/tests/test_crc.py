"""The one CRC32C path (tensorcast._crc): the same value as google_crc32c for every buffer kind, span size
and continuation, without a copy, and through the native library (GIL released) on Linux wheels."""

from __future__ import annotations

import mmap
import sys

import google_crc32c
import numpy as np
import pytest

from tensorcast import _crc
from tensorcast._crc import NATIVE_MIN_BYTES, crc32c
from tensorcast._dataplane import crc32c as dataplane_crc32c

SIZES = (0, 1, 31, NATIVE_MIN_BYTES - 1, NATIVE_MIN_BYTES, (1 << 20) + 7, 4 << 20)


def test_one_path():
    assert dataplane_crc32c is crc32c


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the wheel's libcrc32c layout is checked on Linux")
def test_native_library_found_on_linux_wheels():
    # Without it every large span is hashed with the GIL held (the shm chunk checks and the data plane's
    # connections would run one at a time).
    assert _crc.RELEASES_GIL


@pytest.mark.parametrize("n", SIZES)
def test_same_value_for_every_buffer_kind(n):
    data = np.random.default_rng(n).integers(0, 256, n, dtype=np.uint8).tobytes()
    want = google_crc32c.value(data)
    arr = np.frombuffer(bytearray(data), dtype=np.uint8)
    assert crc32c(data) == want
    assert crc32c(bytearray(data)) == want
    assert crc32c(memoryview(bytearray(data))) == want
    assert crc32c(memoryview(data)) == want  # read-only view
    assert crc32c(arr) == want
    # continuation over a split at any point
    cut = n // 3
    assert crc32c(arr[cut:], crc32c(arr[:cut])) == want
    assert crc32c(data[cut:], crc32c(data[:cut])) == want


def test_mapped_memory_in_place():
    n = 3 << 20
    mm = mmap.mmap(-1, n)
    mm[:] = bytes(range(256)) * (n // 256)
    base = np.frombuffer(mm, dtype=np.uint8)
    assert crc32c(base[1 << 20 :]) == google_crc32c.value(bytes(mm[1 << 20 :]))
    del base
    mm.close()
