"""``DataPlane``: pooled data-plane connections to one daemon, the TCP transport of the Python client.

A load's byte range is split across up to ``connections`` connections, one thread each (``recv_into`` and
the CRC32C of a frame release the GIL, so the parts overlap), in ranges of at least 16 MiB as the TypeScript
SDK splits them (``src/client/transfers.ts``). The first part that fails fails the load: the others are
abandoned (CANCEL, socket shut down) and joined before the error is raised, so no byte lands in the
caller's buffer after ``load_into`` returned or raised. Connections are created lazily, reused, checked out
under a lock (any number of threads may load at once), and a connection that saw an error is discarded.

Objects (docs/protocol.md "Objects") move over the same connections: ``put_object`` and ``get_object``.
"""

from __future__ import annotations

import math
import os
import threading
import time
import weakref
from typing import Any, Dict, List, Optional, Tuple

from .._args import check_connections, positive_seconds
from ..errors import TensorcastError, tc_error
from .connection import UNSET, DataConnection, _byte_view, _source_view

#: Ranges below this are not split across connections.
MIN_PART_BYTES = 16 << 20
ROUTE_CHOICES = ("auto", "resident_view", "derived_view", "canonical")
#: Routes from most to least preferred (src/protocol/route-kinds.ts); a split load reports the least preferred.
ROUTE_KINDS = ("local", "resident_view", "derived_view_from_canonical", "canonical")
DEFAULT_TIMEOUT_S = 600.0


class DataPlane:
    """Pooled data-plane connections to the daemon at ``data_address`` (``host:port``, ``/v1/info``'s
    ``dataAddress``). ``token_source`` names where the token came from in ``TC_ERR_AUTH`` messages.
    Thread-safe. ``close()`` closes the idle connections (and any returned later).

    Example::

        dp = DataPlane("127.0.0.1:7071", token, "TENSORCAST_TOKEN")
        buf = numpy.empty(plan.total_bytes, numpy.uint8)
        stats = dp.load_into(plan.artifact_id, plan.view, plan.view_id, buf)
    """

    def __init__(
        self,
        data_address: str,
        token: str,
        token_source: str = "the token argument",
        connections: int = 4,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        max_idle: int = 16,
    ) -> None:
        check_connections(connections)
        positive_seconds("timeout", timeout)
        self.data_address = data_address
        self.connections = connections
        self.timeout = float(timeout)
        self._token = token
        self._token_source = token_source
        self._max_idle = max_idle
        self._idle: List[DataConnection] = []
        self._lock = threading.Lock()
        self._closed = False
        _POOLS.add(self)

    def _after_fork_in_child(self) -> None:
        # The idle connections are the parent's sockets: a child that used one would interleave its frames
        # with the parent's. Dropped unused (no CANCEL, no shutdown: the parent's copies stay intact).
        self._idle = []
        self._lock = threading.Lock()

    # -- the pool ---------------------------------------------------------------------------------------

    def _acquire(self, deadline: float) -> DataConnection:
        with self._lock:
            if self._closed:
                raise tc_error("TC_ERR_ABORTED", "the data plane was closed")
            while self._idle:
                c = self._idle.pop()
                if c.alive():
                    return c
                c.close()
        return DataConnection.open(self.data_address, self._token, self._token_source, deadline)

    def _release(self, c: DataConnection) -> None:
        with self._lock:
            if not self._closed and c.usable and len(self._idle) < self._max_idle:
                self._idle.append(c)
                return
        c.close()

    @property
    def idle_count(self) -> int:
        """Idle connections kept for reuse."""
        with self._lock:
            return len(self._idle)

    def close(self) -> None:
        """Closes every idle connection; connections in use are closed when their request ends."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for c in idle:
            c.close()

    def __enter__(self) -> "DataPlane":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _deadline(self, timeout: Optional[float]) -> float:
        return time.monotonic() + (self.timeout if timeout is None else positive_seconds("timeout", timeout))

    # -- loads ------------------------------------------------------------------------------------------

    def load_into(
        self,
        artifact_id: str,
        view: Optional[Dict[str, Any]],
        view_id: Optional[str],
        dest: Any,
        start: int = 0,
        end: Optional[int] = None,
        *,
        timeout: Optional[float] = None,
        route: str = "auto",
        connections: Optional[int] = None,
    ) -> Dict[str, Any]:
        """Loads bytes ``[start, end)`` of a view's output (the plan's ``artifact_id``, normalized ``view`` and
        ``view_id``; ``None``/``None`` for the whole artifact) into ``dest``: any writable C-contiguous buffer
        (bytearray, numpy array, ``torch_tensor.numpy()``, memoryview, mmap) of at least ``end - start``
        bytes; byte ``i`` of the range lands at ``dest`` byte ``i - start``. ``end`` defaults to
        ``start + len(dest)`` in bytes. The range is split across up to ``connections`` (default: the
        pool's) connections in parts of at least 16 MiB. ``timeout`` (seconds, default the pool's) bounds the
        whole load, on the daemon too. ``route``: ``auto``, ``resident_view``, ``derived_view`` or ``canonical``.

        Returns ``{"bytes", "route", "source", "seconds", "connections", "fallback", "sourceDaemon",
        "wireBytes", "readBytes"}`` (route: the least preferred route a part took; source: ``materialized``
        when a part built a replica, else ``streamed`` when one streamed, else ``replica_hit``).

        @raises TC_ERR_INVALID_ARGUMENT (dest, range, route), TC_ERR_DESTINATION_SIZE (dest too small),
        TC_ERR_TIMEOUT, TC_ERR_UNAVAILABLE, TC_ERR_AUTH, TC_ERR_CHECKSUM, TC_ERR_PROTOCOL, the daemon's codes
        (TC_ERR_NOT_FOUND, ...). On failure the contents of ``dest`` are unspecified.
        """
        began = time.monotonic()
        deadline = self._deadline(timeout)
        if route not in ROUTE_CHOICES:
            raise tc_error("TC_ERR_INVALID_ARGUMENT", f"route must be one of {', '.join(ROUTE_CHOICES)}, got {route!r}")
        mv = _byte_view(dest, "dest")
        if end is None:
            end = start + len(mv)
        if not (isinstance(start, int) and isinstance(end, int)) or start < 0 or end < start:
            raise tc_error("TC_ERR_INVALID_ARGUMENT", f"bad range [{start}, {end})")
        total = end - start
        if len(mv) < total:
            raise tc_error(
                "TC_ERR_DESTINATION_SIZE", f"dest holds {len(mv)} bytes; the range [{start}, {end}) is {total}"
            )
        parts = self.connections if connections is None else check_connections(connections)
        n = max(1, min(parts, math.ceil(total / MIN_PART_BYTES)))
        step = max(4096, math.ceil(total / n / 4096) * 4096)
        ranges: List[Tuple[int, int]] = [(s, min(end, s + step)) for s in range(start, end, step)] or [(start, end)]
        ends: List[Optional[Dict[str, Any]]] = [None] * len(ranges)
        failure: List[TensorcastError] = []
        active: Dict[int, DataConnection] = {}
        lock = threading.Lock()

        def part(i: int) -> None:
            s, e = ranges[i]
            conn: Optional[DataConnection] = None
            try:
                conn = self._acquire(deadline)
                with lock:
                    if failure:
                        return
                    active[i] = conn
                ends[i] = conn.load(artifact_id, view, view_id, s, e, mv[s - start : e - start], deadline, route)
            except TensorcastError as err:
                with lock:
                    first = not failure
                    if first:
                        failure.append(err)
                    others = [c for j, c in active.items() if j != i] if first else []
                for c in others:
                    c.abort(tc_error("TC_ERR_ABORTED", "another part of this load failed"))
            except BaseException as err:  # pragma: no cover - a bug; fail the load with it
                with lock:
                    if not failure:
                        failure.append(tc_error("TC_ERR_INTERNAL", f"data plane load part failed: {err!r}"))
                    others = [c for j, c in active.items() if j != i]
                for c in others:
                    c.abort(tc_error("TC_ERR_ABORTED", "another part of this load failed"))
            finally:
                with lock:
                    active.pop(i, None)
                if conn is not None:
                    self._release(conn)

        if total > 0:
            if len(ranges) == 1:
                part(0)
            else:
                threads = [
                    threading.Thread(target=part, args=(i,), name=f"tensorcast-load-{i}", daemon=True)
                    for i in range(1, len(ranges))
                ]
                for t in threads:
                    t.start()
                part(0)
                for t in threads:
                    t.join()
        if failure:
            raise failure[0]
        done = [x for x in ends if x is not None]
        sources = {x.get("source") for x in done}
        routes = [x.get("route") for x in done]
        return {
            "bytes": total,
            "route": max(routes, key=lambda r: ROUTE_KINDS.index(r) if r in ROUTE_KINDS else -1) if routes else "local",
            "source": "materialized"
            if "materialized" in sources
            else "streamed"
            if "streamed" in sources
            else "replica_hit",
            "seconds": time.monotonic() - began,
            "connections": len(ranges) if total > 0 else 0,
            "fallback": next((x["fallback"] for x in done if x.get("fallback")), None),
            "sourceDaemon": next((x["sourceDaemon"] for x in done if x.get("sourceDaemon")), None),
            "wireBytes": sum(int(x.get("wireBytes") or 0) for x in done),
            "readBytes": sum(int(x.get("readBytes") or 0) for x in done),
        }

    # -- objects ----------------------------------------------------------------------------------------

    def put_object(
        self,
        key: str,
        data: Any,
        *,
        txn: Optional[str] = None,
        if_version: Any = UNSET,
        ttl_ms: Optional[int] = None,
        wait_for_room: Optional[bool] = None,
        store_token: Optional[str] = None,
        crc: Optional[int] = None,
        timeout: Optional[float] = None,
    ) -> Dict[str, int]:
        """Stores ``data`` (bytes, bytearray, memoryview, numpy array: any C-contiguous buffer, sent without a
        copy; do not change it until the call returns) as the object ``key`` (``<namespace>/<name>``) with one
        PUT. ``if_version``: the key's current version must be this, ``None`` = the key must not exist (left
        out: no condition). ``txn``: park the object invisible in that transaction. ``ttl_ms``, ``wait_for_room``
        (wait up to the deadline for namespace room), ``store_token`` (the namespace's), ``crc`` (the CRC32C of
        the whole object, checked by the daemon before it commits: ``tensorcast._dataplane.crc32c(data)``),
        ``timeout`` (seconds).

        Returns ``{"bytes", "version"}`` once the daemon answered DONE (``version``: the fencing token).

        @raises TC_ERR_INVALID_ARGUMENT, TC_ERR_AUTH, TC_ERR_BACKPRESSURE, TC_ERR_BUDGET, TC_ERR_CONFLICT,
        TC_ERR_CHECKSUM, TC_ERR_TIMEOUT, TC_ERR_UNAVAILABLE, TC_ERR_PROTOCOL
        """
        deadline = self._deadline(timeout)
        mv = _source_view(data, "data")
        if crc is not None and (not isinstance(crc, int) or not 0 <= crc <= 0xFFFFFFFF):
            raise tc_error("TC_ERR_INVALID_ARGUMENT", f"crc must be a CRC32C (0..2^32-1), got {crc!r}")
        if if_version is not UNSET and if_version is not None and (not isinstance(if_version, int) or if_version < 0):
            raise tc_error(
                "TC_ERR_INVALID_ARGUMENT", f"if_version must be a version (int >= 0) or None, got {if_version!r}"
            )
        conn = self._acquire(deadline)
        try:
            return conn.put(
                key,
                mv,
                deadline,
                txn=txn,
                if_version=if_version,
                ttl_ms=ttl_ms,
                wait_for_room=wait_for_room,
                store_token=store_token,
                crc=crc,
            )
        finally:
            self._release(conn)

    def get_object(
        self,
        key: str,
        *,
        into: Any = None,
        expect_bytes: Optional[int] = None,
        store_token: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> Tuple[Any, int]:
        """Reads the object ``key`` with one GET: into ``into`` (a writable buffer of exactly the object's
        size; its size is sent as ``expectBytes``, so the daemon refuses a mismatch before any byte moves:
        ``into`` larger -> TC_ERR_SHORT_READ, smaller -> TC_ERR_DESTINATION_SIZE), else into a new bytearray
        (``expect_bytes``, when given, is checked the same way). Returns ``(buffer, version)`` once exactly the
        object's bytes landed, each frame's CRC32C checked; on failure nothing more lands in ``into``.

        @raises TC_ERR_NOT_FOUND, TC_ERR_OBJECT_LOST, TC_ERR_AUTH, TC_ERR_SHORT_READ, TC_ERR_DESTINATION_SIZE,
        TC_ERR_CHECKSUM, TC_ERR_TIMEOUT, TC_ERR_UNAVAILABLE
        """
        deadline = self._deadline(timeout)
        if into is not None:
            _byte_view(into, "into")
        conn = self._acquire(deadline)
        try:
            return conn.get(key, into, deadline, expect_bytes=expect_bytes, store_token=store_token)
        finally:
            self._release(conn)


_POOLS: "weakref.WeakSet[DataPlane]" = weakref.WeakSet()


def _reset_after_fork() -> None:
    for p in list(_POOLS):
        p._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
