"""The same-host transports: the daemon's shm hand-off file and the artifact's own files, mapped with ``mmap``.

Both map files with ``mmap.ACCESS_COPY`` (a private mapping of a file opened read-only): reads share the
page cache (tmpfs pages for shm), nothing is copied, and the arrays are writable without touching the file
(a write copies that one page, privately) and without torch's read-only warning.
"""

from __future__ import annotations

import itertools
import mmap
import os
import threading
import time
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .._dtypes import byte_length, numpy_dtype
from .._http import segment
from .._plan import Plan, PlannedTensor
from .._crc import crc32c
from ..errors import TensorcastError, tc_error
from .leases import keeper_of

#: Sub-byte dtypes come as raw bytes (numpy has no such dtype).
_SUB_BYTE = {"F4", "F6_E2M3", "F6_E3M2"}
#: Artifacts whose files a client keeps mapped (most recently used first out).
FILE_CACHE_ARTIFACTS = 8
#: madvise(MADV_POPULATE_READ) (Linux 5.14+): fills the page tables of a new mapping in one call, much
#: faster than faulting page by page, and without breaking the sharing of a private mapping's pages.
_MADV_POPULATE_READ = 22
#: Check the chunks of a file in parallel threads (the CRC runs without the GIL) from this many chunks.
_PARALLEL_CHUNKS = 4


class Mapping:
    """A mapped file: the ``mmap`` (the object every array keeps alive through its ``.base`` chain) and
    one uint8 array over all of it that every array is a view of."""

    def __init__(self, path: str, length: int, populate: bool = False) -> None:
        self.path = path
        self.length = length
        if length == 0:
            self.mm: Any = bytearray(0)
        else:
            fd = os.open(path, os.O_RDONLY)
            try:
                self.mm = mmap.mmap(fd, length, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
            finally:
                os.close(fd)
            if populate and hasattr(self.mm, "madvise"):
                try:
                    self.mm.madvise(_MADV_POPULATE_READ)
                except OSError:
                    pass  # an older kernel: pages fault in as they are touched
        self.base = np.frombuffer(self.mm, dtype=np.uint8)

    def address_range(self) -> Tuple[int, int]:
        start = int(self.base.__array_interface__["data"][0]) if self.length else 0
        return start, start + self.length


def tensor_on(base: np.ndarray, offset: int, dtype: str, shape: Sequence[int]) -> np.ndarray:
    """``dtype``/``shape`` at ``offset`` of the uint8 array ``base``: a view, no copy."""
    n = byte_length(dtype, shape)
    raw = base[offset : offset + n]
    if dtype in _SUB_BYTE:
        return raw
    return raw.view(numpy_dtype(dtype)).reshape(tuple(int(d) for d in shape))


# -- shm ----------------------------------------------------------------------------------------------


class ShmLoad:
    """A view's bytes in the daemon's shm file, mapped and checked, under a lease.

    ``base`` is a uint8 array over the view's bytes made for this load alone (a fresh ``np.frombuffer`` of
    the mapping, possibly a mapping cached from an earlier load of the same file): every array of the load
    is a view of it, so the lease is held exactly while ``base`` lives."""

    def __init__(self, lease_id: str, expires_at: float, path: str, mapping: Mapping, base: np.ndarray, route: Optional[str], source: Optional[str]) -> None:
        self.lease_id = lease_id
        #: Unix ms, as the daemon answered.
        self.expires_at = expires_at
        self.path = path
        self.mapping = mapping
        self.base = base
        self.route = route
        self.source = source

    def address_range(self) -> Tuple[int, int]:
        start = int(self.base.__array_interface__["data"][0]) if self.base.nbytes else 0
        return start, start + int(self.base.nbytes)


def open_shm(client: Any, plan: Plan, timeout: Optional[float], dest: Optional[np.ndarray] = None) -> ShmLoad:
    """Takes a lease on the plan's view (``POST /v1/shm-leases``), maps its file and checks every chunk.

    A mapping of the same file (same device and inode) cached from a load of the last few seconds is used
    again (nothing to map or fault); the chunks are checked all the same. The lease is not yet held by the
    keeper: the caller either hands it the load's ``base`` (``keeper.hold``) or drops it (``keeper.drop``).
    With ``dest`` (a uint8 array of the view's size) each chunk is copied there right after its check, while
    it is still in the CPU cache.

    :raises TensorcastError: TC_ERR_FORBIDDEN (the file is not reachable from this process),
        TC_ERR_SHORT_READ (the file is shorter than the view), TC_ERR_CHECKSUM (a chunk differs: the lease is
        released with ``discard=1`` so the daemon rebuilds the replica), and the daemon's lease errors
        (TC_ERR_BUDGET, TC_ERR_TIMEOUT, ...).
    """
    body: Dict[str, Any] = {"artifactId": plan.artifact_id, "view": plan.view, "viewId": plan.view_id}
    if timeout is not None:
        body["timeoutMs"] = int(timeout * 1000)
    lease = client.http.json("POST", "/v1/shm-leases", body, timeout=timeout)
    keeper = keeper_of(client)
    lease_id = str(lease["leaseId"])
    try:
        path, nbytes = str(lease["path"]), int(lease["bytes"])
        if nbytes != plan.total_bytes:
            raise tc_error("TC_ERR_PROTOCOL", f"the lease has {nbytes} bytes, the plan {plan.total_bytes}")
        try:
            st = os.stat(path)
        except OSError as e:
            raise tc_error(
                "TC_ERR_FORBIDDEN",
                f"cannot read the daemon's shm file {path} (is the daemon on this host, its shm dir readable by this user?): {e}; use transport='tcp'",
                {"path": path},
            ) from e
        if st.st_size < nbytes:
            raise tc_error("TC_ERR_SHORT_READ", f"{path}: {st.st_size} bytes, the lease says {nbytes}", {"path": path})
        key = (st.st_dev, st.st_ino)
        mapping = keeper.cached_map(key, nbytes) if nbytes else None
        base: Optional[np.ndarray] = None
        if mapping is not None:
            base = np.frombuffer(mapping.mm, dtype=np.uint8, count=nbytes)
            try:
                _check_chunks(base, lease.get("checksums") or {}, path, dest)
            except TensorcastError as e:
                if e.code != "TC_ERR_CHECKSUM":
                    raise
                # This process may have written into arrays of an earlier load (private pages of the
                # cached mapping): check a fresh mapping before blaming the daemon's file.
                keeper.forget_map(key)
                mapping, base = None, None
        if mapping is None:
            try:
                mapping = Mapping(path, nbytes, populate=True)
            except OSError as e:
                raise tc_error("TC_ERR_FORBIDDEN", f"cannot map the daemon's shm file {path}: {e}; use transport='tcp'", {"path": path}) from e
            base = np.frombuffer(mapping.mm, dtype=np.uint8, count=nbytes) if nbytes else np.empty(0, dtype=np.uint8)
            _check_chunks(base, lease.get("checksums") or {}, path, dest)
        if nbytes:
            keeper.put_map(key, mapping)
    except TensorcastError as e:
        keeper.drop(lease_id, discard=e.code == "TC_ERR_CHECKSUM")
        raise
    except BaseException:
        keeper.drop(lease_id)
        raise
    assert base is not None
    return ShmLoad(lease_id, float(lease["expiresAt"]), path, mapping, base, lease.get("route"), lease.get("source"))


#: Threads that check chunks besides the calling one: the other cores, at most 3.
_CRC_HELPERS = max(1, min(3, (os.cpu_count() or 1) - 1))
_pool: Any = None
_pool_lock = threading.Lock()


def _reset_after_fork() -> None:
    # A fork()ed child has none of the pool's threads (work sent to it would wait forever) and may have
    # inherited a lock some other thread held.
    global _pool, _pool_lock, _files_lock
    _pool = None
    _pool_lock = threading.Lock()
    _files_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _crc_pool() -> Any:
    global _pool
    with _pool_lock:
        if _pool is None:
            from concurrent.futures import ThreadPoolExecutor

            _pool = ThreadPoolExecutor(max_workers=_CRC_HELPERS, thread_name_prefix="tensorcast-crc")
        return _pool


def _check_chunks(base: np.ndarray, checksums: Dict[str, Any], path: str, dest: Optional[np.ndarray] = None) -> None:
    if checksums.get("algorithm") != "crc32c":
        raise tc_error("TC_ERR_PROTOCOL", f"unknown checksum algorithm {checksums.get('algorithm')!r}")
    chunk = int(checksums["chunkBytes"])
    crcs: List[int] = [int(c) for c in checksums["crcs"]]
    n = int(base.nbytes)
    want_chunks = (n + chunk - 1) // chunk
    if len(crcs) != want_chunks:
        raise tc_error("TC_ERR_PROTOCOL", f"{len(crcs)} checksums for {want_chunks} chunks of {path}")
    spans = [(i * chunk, min(n, (i + 1) * chunk)) for i in range(want_chunks)]

    def one(span: Tuple[int, int]) -> int:
        crc = crc32c(base[span[0] : span[1]])
        if dest is not None:
            np.copyto(dest[span[0] : span[1]], base[span[0] : span[1]])
        return crc

    if len(spans) >= _PARALLEL_CHUNKS and (os.cpu_count() or 1) > 1:
        # Chunks are taken in order from a shared counter by the calling thread and the pool's threads (the
        # CRC and the copy run without the GIL), so no thread waits while another has chunks left.
        got: List[int] = [0] * len(spans)
        taken = itertools.count()

        def worker() -> None:
            for i in iter(taken.__next__, None):
                if i >= len(spans):
                    return
                got[i] = one(spans[i])

        pool = _crc_pool()
        helpers = [pool.submit(worker) for _ in range(_CRC_HELPERS)]
        try:
            worker()
        finally:
            for f in helpers:
                f.exception()  # waits: no helper touches base or dest once this returns or raises
        for f in helpers:
            f.result()
    else:
        got = [one(sp) for sp in spans]
    for i, (g, want) in enumerate(zip(got, crcs)):
        if g != want:
            a, b = spans[i]
            raise tc_error(
                "TC_ERR_CHECKSUM",
                f"{path}: chunk {i} (bytes {a}..{b}) has CRC32C {g:#010x}, the daemon wrote {want:#010x}",
                {"path": path, "chunk": i},
            )


# -- files --------------------------------------------------------------------------------------------


class ArtifactFiles:
    """An artifact's shard files, mapped, with each tensor's dtype, shape, shard and file position."""

    def __init__(self, artifact_id: str, route: Optional[str], shards: List[Mapping], tensors: Dict[str, Tuple[str, Tuple[int, ...], int, int]]) -> None:
        self.artifact_id = artifact_id
        self.route = route
        self.shards = shards
        #: name -> (dtype, shape, shard, file position)
        self.tensors = tensors

    def source(self, name: str) -> np.ndarray:
        """The whole stored tensor ``name``, a view on its shard's mapping."""
        entry = self.tensors.get(name)
        if entry is None:
            raise tc_error("TC_ERR_INTERNAL", f"the daemon's placement lacks tensor '{name}'")
        dtype, shape, shard, position = entry
        return tensor_on(self.shards[shard].base, position, dtype, shape)


_files_lock = threading.Lock()


def artifact_files(client: Any, artifact_id: str, timeout: Optional[float]) -> ArtifactFiles:
    """The mapped files of ``artifact_id`` (cached per client: stored artifacts are immutable).

    :raises TensorcastError: TC_ERR_FORBIDDEN when this process cannot read the daemon's files (another
        host, another user): use ``shm`` or ``tcp`` then; TC_ERR_INVALID_ARGUMENT for a lazy artifact.
    """
    with _files_lock:
        cache: "OrderedDict[str, ArtifactFiles]" = client.__dict__.setdefault("_file_maps", OrderedDict())
        hit = cache.get(artifact_id)
        if hit is not None:
            cache.move_to_end(artifact_id)
            return hit
    aid = segment(artifact_id)
    placement = client.http.json("GET", f"/v1/artifacts/{aid}/placement", timeout=timeout)
    detail = client.http.json("GET", f"/v1/artifacts/{aid}", timeout=timeout)
    shards: List[Mapping] = []
    for s in placement["shards"]:
        path = os.path.join(placement["dir"], s["file"])
        try:
            size = os.stat(path).st_size
            if size != int(s["bytes"]):
                raise tc_error("TC_ERR_INTERNAL", f"{path}: {size} bytes on disk, the daemon says {s['bytes']}")
            shards.append(Mapping(path, size))
        except OSError as e:
            raise tc_error(
                "TC_ERR_FORBIDDEN",
                f"cannot read the daemon's file {path} (is the daemon on this host, readable by this user?): {e}; use transport='shm' or 'tcp'",
                {"path": path},
            ) from e
    kinds = {t[0]: (str(t[1]), tuple(int(d) for d in t[2])) for t in detail["index"]["tensors"]}
    tensors = {name: (*kinds[name], int(shard), int(pos)) for name, shard, pos in placement["tensors"]}
    files = ArtifactFiles(artifact_id, placement.get("route"), shards, tensors)  # type: ignore[arg-type]
    with _files_lock:
        cache[artifact_id] = files
        while len(cache) > FILE_CACHE_ARTIFACTS:
            cache.popitem(last=False)
    return files


def forget_files(client: Any) -> None:
    """Drops the client's cached mappings (arrays made from them keep theirs)."""
    with _files_lock:
        client.__dict__.pop("_file_maps", None)


def _box(src: np.ndarray, box: Sequence[Any], name: str) -> np.ndarray:
    index = []
    for d, r in enumerate(box):
        if r is None:
            index.append(slice(None))
            continue
        start, length = int(r[0]), int(r[1])
        if start < 0:
            start += src.shape[d]
        if start < 0 or length < 0 or start + length > src.shape[d]:
            raise tc_error("TC_ERR_VIEW_OUT_OF_RANGE", f"{name}: [{r[0]}, {r[1]}] outside dimension {d} of {src.shape[d]}")
        index.append(slice(start, start + length))
    return src[tuple(index)]


def file_tensor(files: ArtifactFiles, t: PlannedTensor, spec: Any) -> Tuple[np.ndarray, bool]:
    """Tensor ``t`` of a plan as an array over the mapped files, and whether it had to be gathered (copied).

    ``spec`` is the plan's normalized view entry: None (whole), a box, or ``{"pieces", "padDim0"}``. One
    box is a strided view of the stored tensor (no copy; not C-contiguous when it cuts an inner dimension);
    several pieces or padding rows are gathered into a new array (one copy).
    """
    src = files.source(t.name)
    dtype = files.tensors[t.name][0]
    if spec is None:
        return src, False
    if dtype in _SUB_BYTE:
        raise tc_error(
            "TC_ERR_VIEW_MISALIGNED",
            f"{t.name}: slices of {dtype} tensors are not mapped in place by the Python client; use transport='shm' or 'tcp'",
        )
    if isinstance(spec, dict):
        pieces = [_box(src, box, t.name) for box in spec.get("pieces", [])]
        pad = int(spec.get("padDim0") or 0)
        if len(pieces) == 1 and pad == 0:
            return pieces[0], False
        if pad:
            pieces.append(np.zeros((pad, *src.shape[1:]), dtype=src.dtype))
        return np.concatenate(pieces, axis=0), True
    return _box(src, spec, t.name), False


def now() -> float:
    return time.perf_counter()
