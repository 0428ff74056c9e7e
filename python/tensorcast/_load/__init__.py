"""Loads: a TP rank, a view or a whole artifact as named numpy arrays or torch tensors.

``client.load(key, tp=(size, rank))`` plans the load (``POST /v1/plans``), moves the bytes over one
transport and returns a ``LoadResult`` (a read-only mapping name -> array in plan order, with ``.plan``,
``.stats`` and ``.release()``). ``client.iter_weights(...)`` yields ``(name, tensor)`` with bounded memory
(see ``tensorcast._load.weights``).

Transports
----------
- ``"shm"`` (same host): the daemon writes the view into a file in its shm folder and leases it
  (``POST /v1/shm-leases``); the client maps the file, checks every 4 MiB chunk's CRC32C, and the arrays are
  views on the mapping (no copy).
- ``"files"`` (same host, the daemon's data directory readable by this process): the artifact's own
  safetensors files are mapped (``GET /v1/artifacts/<id>/placement``; the mappings are cached per client:
  stored artifacts are immutable, so no lease is needed). A tensor whose view is one box is a strided numpy
  view of the stored tensor (no copy; *not* C-contiguous when the box cuts an inner dimension, e.g. a
  row-parallel dim-1 split: numpy and ``torch.from_numpy`` handle that; call ``.contiguous()`` if a kernel
  needs dense rows). Fused tensors (several pieces) and padded ones (vocab padding) are gathered into new
  arrays: one copy, counted in ``stats.copies``.
- ``"tcp"``: the binary data plane (``tensorcast._dataplane``), several connections, ``recv_into`` a new
  buffer of the plan's size (``new_buffer``: populated huge pages when large), CRC32C checked per frame.
- ``"auto"`` (default): ``shm`` when the daemon is on this host (its control URL is a loopback address and
  the ``shmDir`` it reports in ``/v1/info`` exists here), else ``tcp``.

``into=``: a writable, C-contiguous buffer (numpy array, ``bytearray``, CPU torch tensor) of exactly the
plan's ``total_bytes`` (else TC_ERR_DESTINATION_SIZE before any data moves). Every transport fills it (the
mapped ones copy once, and the shm lease is released before ``load`` returns) and the arrays are views on it.

Lifetime of mapped arrays (``shm`` and ``files`` without ``into=``)
-------------------------------------------------------------------
- The arrays are views of an ``mmap`` of the file: a private mapping (``MAP_PRIVATE``) of the file opened
  read-only. Reads share the page cache (tmpfs pages for shm): no copy. The arrays are writable: a write
  copies that one page privately and never reaches the file or other processes (no torch read-only warning,
  no SIGSEGV). Within one process, loads of the same file may share a mapping: an array you write to may
  show the write in another load's arrays of the same bytes; ``.copy()`` / ``.clone()`` first if that
  matters. (A later shm load that finds such a private write fails its checksum on the shared mapping and
  maps the file afresh, so the write never makes a load fail or blames the daemon.)
- ``shm``: each load has one owner, a uint8 array over its view's bytes (``np.frombuffer`` of the mapping)
  that every array of the load is a view of (``arr.base``), and every torch tensor made from them keeps
  alive (``torch.from_numpy`` holds the array). The lease is held exactly as long as that owner lives: until
  the last array or tensor of the load is gone and the result is released or dropped. A background thread
  per client (daemon thread, ``tensorcast-lease-keeper``) renews held leases every third of their TTL
  (60 s by default). When the owner goes, a ``weakref.finalize`` enqueues the lease and the keeper thread
  sends ``DELETE /v1/shm-leases/<id>`` (finalizers never do HTTP themselves: they may run on any thread).
- ``result.release()`` (idempotent; also at the end of ``with client.load(...) as r:``) drops the result's
  references and sends the pending releases before returning: when the caller holds no array of the load,
  its lease is gone when ``release()`` returns. Arrays the caller still holds are *not* invalidated: they
  keep the mapping and the lease until they are gone too. So no use-after-unmap (SIGBUS) is possible: an
  array is always backed by a mapping whose lease is held. Using the result itself after ``release()``
  (``r["name"]``, ``len(r)``, iteration) raises TC_ERR_ABORTED.
- The client keeps the mapping of an shm file for 5 s after the last load that used it (the TypeScript SDK
  does too), so a view loaded again soon maps and faults nothing; its chunks are checked again all the same.
  Such a cached mapping holds no lease (it is never handed out without a new lease and a new check).
- ``Client.close()`` closes the connections, drops the cached mappings and releases every lease whose
  arrays are gone. Arrays still alive keep working: their leases stay renewed by the keeper thread (which has
  its own connection) until the arrays go; then they are released and the thread ends. At interpreter exit
  held leases are released (best effort; the daemon expires any left after their TTL).
- ``files``: no lease (stored artifacts are immutable). The mapping of each shard file is unmapped when the
  last array made from it and the client's cache (8 artifacts, cleared by ``close()``) let go of it.
- A process stopped (SIGSTOP, a debugger) longer than the TTL loses its leases: the daemon may then reuse
  the shm file for another view (the mapped bytes change); the keeper logs a warning when a renew finds its
  lease gone.
- Checks: every shm load verifies each 4 MiB chunk's CRC32C against the lease's checksums (the calling thread and a small
  process-wide pool, ``tensorcast-crc``, for large views), so the mapped bytes have been read once when
  ``load`` returns. ``files`` loads read nothing before the caller does (the files are the daemon's own,
  checked when they were imported).
"""

from __future__ import annotations

import ipaddress
import mmap
import os
import sys
from typing import Any, Dict, Optional, Sequence, Tuple
from urllib.parse import urlsplit

import numpy as np

from .._args import check_timeout
from .._dtypes import as_torch as _as_torch
from .._dtypes import import_torch
from .._plan import Plan, request_plan
from ..errors import tc_error
from . import mapped
from .leases import LeaseKeeper, keeper_of
from .result import LoadResult, LoadStats

__all__ = ["load", "iter_weights", "LoadResult", "LoadStats", "LeaseKeeper"]

TRANSPORTS = ("auto", "shm", "tcp", "files")


def check_transport(transport: Any) -> None:
    if transport not in TRANSPORTS:
        raise tc_error(
            "TC_ERR_INVALID_ARGUMENT", f"transport must be one of {', '.join(TRANSPORTS)}, got {transport!r}", {"transport": repr(transport)}
        )


def choose_transport(client: Any, transport: str) -> str:
    """``auto``: ``shm`` when the daemon runs on this host (loopback URL and its shm dir exists here), else ``tcp``."""
    if transport != "auto":
        return transport
    host = urlsplit(client.url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        shm_dir = client.info().get("shmDir")
        if shm_dir and os.path.isdir(shm_dir):
            return "shm"
    return "tcp"


def destination(into: Any, total: int) -> np.ndarray:
    """``into`` as a flat writable uint8 numpy array over the same memory.

    :raises TensorcastError: TC_ERR_DESTINATION_SIZE (not exactly ``total`` bytes), TC_ERR_INVALID_ARGUMENT
        (read-only, not contiguous, not on the CPU, or not a buffer).
    """
    if isinstance(into, np.ndarray):
        if into.dtype.hasobject:
            raise tc_error("TC_ERR_INVALID_ARGUMENT", f"into= must hold plain numbers, got an array of {into.dtype}")
        if not into.flags.c_contiguous or not into.flags.writeable:
            raise tc_error("TC_ERR_INVALID_ARGUMENT", "into= must be a writable C-contiguous array")
        flat = into.reshape(-1).view(np.uint8)
    elif type(into).__module__.startswith("torch"):
        torch = import_torch()
        if not isinstance(into, torch.Tensor) or into.device.type != "cpu" or not into.is_contiguous():
            raise tc_error("TC_ERR_INVALID_ARGUMENT", "into= must be a contiguous CPU torch tensor")
        flat = into.detach().reshape(-1).view(torch.uint8).numpy()
    else:
        try:
            mv = memoryview(into)
        except TypeError as e:
            raise tc_error("TC_ERR_INVALID_ARGUMENT", f"into= must be a numpy array, a bytearray or a torch tensor, got {type(into).__name__}") from e
        if mv.readonly or not mv.c_contiguous:
            raise tc_error("TC_ERR_INVALID_ARGUMENT", "into= must be a writable contiguous buffer")
        flat = np.frombuffer(mv.cast("B"), dtype=np.uint8)
    if flat.nbytes != total:
        raise tc_error(
            "TC_ERR_DESTINATION_SIZE",
            f"into= has {flat.nbytes} bytes, the load needs exactly {total}",
            {"destinationBytes": int(flat.nbytes), "totalBytes": total},
        )
    return flat


def new_buffer(total: int, as_torch: bool) -> np.ndarray:
    """A fresh uint8 buffer of ``total`` bytes for the data plane to write (torch tensors made from it share it).

    A large buffer is fresh memory that would fault in page by page as the data plane writes it (a few
    microseconds per 4 KiB page in a VM: more than the transfer itself). So from ``_ADVISE_MIN_BYTES`` it is
    a private anonymous ``mmap`` advised into transparent huge pages and populated in one call
    (``mmap.madvise``; ``MADV_POPULATE_WRITE`` needs Linux 5.14, else pages fault in as written; elsewhere no
    advice). Measured for 78 MiB, 2 cores: 6.5 ms to map and populate + 2.8 ms to write it all, against 42 ms
    to write fresh 4 KiB pages. The arrays (and ``torch.from_numpy`` tensors) keep the mapping alive; it is
    unmapped when the last of them goes. Smaller buffers: ``torch.empty`` with ``as_torch``, else ``np.empty``.
    """
    if total >= _ADVISE_MIN_BYTES:
        mm = mmap.mmap(-1, total, flags=mmap.MAP_PRIVATE) if hasattr(mmap, "MAP_PRIVATE") else mmap.mmap(-1, total)
        for advice in _FRESH_ADVICE:
            try:
                mm.madvise(advice)
            except (OSError, ValueError):
                pass  # an older kernel or another OS: pages fault in as written
        return np.frombuffer(mm, dtype=np.uint8)
    if as_torch:
        torch = import_torch()
        return torch.empty(total, dtype=torch.uint8).numpy()
    return np.empty(total, dtype=np.uint8)


_ADVISE_MIN_BYTES = 4 << 20
#: Linux: transparent huge pages, then populate writable (MADV_POPULATE_WRITE = 23, no stdlib constant yet).
_FRESH_ADVICE = (
    (getattr(mmap, "MADV_HUGEPAGE"), getattr(mmap, "MADV_POPULATE_WRITE", 23))
    if sys.platform.startswith("linux") and hasattr(mmap.mmap, "madvise") and hasattr(mmap, "MADV_HUGEPAGE")
    else ()
)


class Deadline:
    """The deadline of one load: ``timeout`` seconds (None: none) for all its steps together."""

    def __init__(self, timeout: Optional[float]) -> None:
        timeout = check_timeout(timeout)
        self.timeout = timeout
        self.end = None if timeout is None else mapped.now() + float(timeout)

    def left(self) -> Optional[float]:
        """Seconds left (None: no deadline). :raises TensorcastError: TC_ERR_TIMEOUT when none are."""
        if self.end is None:
            return None
        left = self.end - mapped.now()
        if left <= 0:
            raise tc_error("TC_ERR_TIMEOUT", f"the load did not finish within {self.timeout:g} s", {"timeoutSeconds": self.timeout})
        return left


def _dp_stat(stats: Any, name: str) -> Optional[str]:
    if isinstance(stats, dict):
        v = stats.get(name)
    else:
        v = getattr(stats, name, None)
    return None if v is None else str(v)


def _finish(plan: Plan, arrays: Dict[str, np.ndarray], as_torch: bool) -> Dict[str, Any]:
    if not as_torch:
        return arrays
    by_name = {t.name: t.dtype for t in plan.tensors}
    return {name: _as_torch(a, by_name[name]) for name, a in arrays.items()}


def load(
    client: Any,
    key: str,
    tp: Optional[Tuple[int, int]] = None,
    view: Optional[Dict[str, Any]] = None,
    tensors: Optional[Sequence[str]] = None,
    transport: str = "auto",
    into: Any = None,
    as_torch: bool = False,
    timeout: Optional[float] = None,
) -> LoadResult:
    """Loads a TP rank (``tp=(size, rank)``), a view, a list of tensors or the whole artifact of ``key``.

    ``timeout`` (seconds) bounds the whole load (plan, lease or placement, transfer); default: the client's
    per-request timeout for each step.

    :returns: a ``LoadResult`` (see the module docstring for the lifetime of mapped arrays).
    :raises TensorcastError: TC_ERR_INVALID_ARGUMENT (unknown transport, malformed tp, several of
        tp/view/tensors), TC_ERR_DESTINATION_SIZE (``into`` of the wrong size), the daemon's plan errors
        (TC_ERR_NOT_FOUND, TC_ERR_VIEW_*, TC_ERR_LAYOUT_*, TC_ERR_AUTH), TC_ERR_FORBIDDEN (``files``/``shm``
        from another host or user), TC_ERR_CHECKSUM, TC_ERR_SHORT_READ, and the data plane's errors.
    """
    check_transport(transport)
    dl = Deadline(timeout)
    if as_torch:
        import_torch()
    t0 = mapped.now()
    plan = request_plan(client.http, key, tp=tp, view=view, tensors=tensors, timeout=dl.left())
    dest = destination(into, plan.total_bytes) if into is not None else None
    chosen = choose_transport(client, transport)
    try:
        if chosen == "shm":
            return _load_shm(client, plan, dest, as_torch, dl, t0)
        if chosen == "files":
            return _load_files(client, plan, dest, as_torch, dl, t0)
        return _load_tcp(client, plan, dest, as_torch, dl, t0)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, ArithmeticError) as e:
        # A lease, placement or artifact answer without the fields it promises (a daemon of another
        # version, a proxy): never a raw Python exception to the caller. Leases were released on the way out.
        raise tc_error("TC_ERR_PROTOCOL", f"{chosen} load of {plan.artifact_id}: the daemon's answer is malformed: {e!r}") from e


def _load_shm(client: Any, plan: Plan, dest: Optional[np.ndarray], as_torch: bool, dl: Deadline, t0: float) -> LoadResult:
    keeper = keeper_of(client)
    shm = mapped.open_shm(client, plan, dl.left(), dest)
    if dest is not None or plan.total_bytes == 0:
        # Copied once into the caller's buffer (chunk by chunk as checked): the lease goes at once.
        keeper.drop(shm.lease_id)
        buf = dest if dest is not None else np.empty(0, dtype=np.uint8)
        arrays = {t.name: mapped.tensor_on(buf, t.offset, t.dtype, t.shape) for t in plan.tensors}
        stats = LoadStats("shm", shm.route, shm.source, plan.total_bytes, mapped.now() - t0, 1 if dest is not None else 0)
        return LoadResult(plan, _finish(plan, arrays, as_torch), stats, keeper, buf)
    keeper.hold(shm.lease_id, shm.expires_at, shm.base)
    arrays = {t.name: mapped.tensor_on(shm.base, t.offset, t.dtype, t.shape) for t in plan.tensors}
    stats = LoadStats("shm", shm.route, shm.source, plan.total_bytes, mapped.now() - t0, 0)
    owner = shm
    del shm
    return LoadResult(plan, _finish(plan, arrays, as_torch), stats, keeper, owner)


def _load_files(client: Any, plan: Plan, dest: Optional[np.ndarray], as_torch: bool, dl: Deadline, t0: float) -> LoadResult:
    files = mapped.artifact_files(client, plan.artifact_id, dl.left())
    view = plan.view
    arrays: Dict[str, np.ndarray] = {}
    gathered = False
    for t in plan.tensors:
        spec = None if view is None else view.get(t.name)
        if view is not None and t.name not in view:
            raise tc_error("TC_ERR_INTERNAL", f"the plan's view lacks tensor '{t.name}'")
        a, copied = mapped.file_tensor(files, t, spec)
        if tuple(a.shape) != tuple(t.shape) and t.dtype not in mapped._SUB_BYTE:
            raise tc_error("TC_ERR_INTERNAL", f"{t.name}: mapped shape {a.shape}, the plan says {t.shape}")
        if dest is not None:
            out = mapped.tensor_on(dest, t.offset, t.dtype, t.shape)
            np.copyto(out, a)
            a = out
        gathered = gathered or copied
        arrays[t.name] = a
    copies = 1 if dest is not None or gathered else 0
    stats = LoadStats("files", files.route, "client_materialized", plan.total_bytes, mapped.now() - t0, copies)
    return LoadResult(plan, _finish(plan, arrays, as_torch), stats, None, dest if dest is not None else files)


def _load_tcp(client: Any, plan: Plan, dest: Optional[np.ndarray], as_torch: bool, dl: Deadline, t0: float) -> LoadResult:
    buf = dest if dest is not None else new_buffer(plan.total_bytes, as_torch)
    dp_stats: Any = None
    if plan.total_bytes:
        dp_stats = client.dataplane.load_into(plan.artifact_id, plan.view, plan.view_id, buf, 0, None, timeout=dl.left())
    arrays = {t.name: mapped.tensor_on(buf, t.offset, t.dtype, t.shape) for t in plan.tensors}
    stats = LoadStats("tcp", _dp_stat(dp_stats, "route"), _dp_stat(dp_stats, "source"), plan.total_bytes, mapped.now() - t0, 0)
    return LoadResult(plan, _finish(plan, arrays, as_torch), stats, None, buf)


# At the end: weights imports this module's helpers (check_transport, choose_transport, load, new_buffer).
from .weights import iter_weights  # noqa: E402
