"""The shm lease keeper of a ``Client``: one daemon thread that renews held leases and releases dropped ones.

A lease expires ``ttl`` after its last renew (60 s by default); the keeper renews each lease it holds once a
third of its TTL has passed since the last renew. A lease is dropped when its mapping is no longer referenced
by any array: a ``weakref.finalize`` on the mapping object only *enqueues* the lease id (a finalizer runs on
whatever thread drops the last reference, so it must not do blocking HTTP); the keeper thread, or a caller's
``flush()`` (``LoadResult.release()``, ``Client.close()``), sends the ``DELETE``.

The keeper outlives ``Client.close()`` while leases are held: it keeps renewing leases whose arrays are
alive, releases each one when its arrays go, and its thread ends when it holds none. At interpreter exit the
held leases are released (best effort; the daemon expires the rest after their TTL).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from typing import Any, Dict, List, Optional, Tuple

from .._http import HttpClient, segment
from ..errors import TensorcastError

log = logging.getLogger("tensorcast")

#: Renew a lease once this fraction of its TTL has passed since its last renew.
RENEW_FRACTION = 1 / 3
#: Timeout of one renew or release request (seconds).
REQUEST_TIMEOUT_S = 10.0
#: Most time the releases at interpreter exit may take, all together (seconds).
EXIT_RELEASE_S = 2.0
#: How long a mapping of an shm file stays cached after the last load that used it (seconds): a view loaded
#: again soon maps nothing and faults nothing (the TypeScript SDK keeps its mappings as long).
MAP_KEEP_S = 5.0

_KEEPERS: "weakref.WeakSet[LeaseKeeper]" = weakref.WeakSet()


class _Lease:
    __slots__ = ("lease_id", "ttl", "renewed_at", "lost")

    def __init__(self, lease_id: str, ttl: float) -> None:
        self.lease_id = lease_id
        self.ttl = ttl
        self.renewed_at = time.monotonic()
        self.lost = False


class LeaseKeeper:
    """Renews and releases the shm leases of one client (see the module docstring)."""

    def __init__(self, base_url: str, token: Optional[str], token_source: str) -> None:
        self.http = HttpClient(base_url, token, token_source, timeout=REQUEST_TIMEOUT_S)
        self._cond = threading.Condition()
        self._held: Dict[str, _Lease] = {}
        #: (lease id, discard) pairs waiting for their DELETE.
        self._dropped: List[Tuple[str, bool]] = []
        self._thread: Optional[threading.Thread] = None
        self._client_closed = False
        #: (st_dev, st_ino) of an shm file -> (its mapping, monotonic time of last use).
        self._maps: Dict[Tuple[int, int], Tuple[Any, float]] = {}
        _KEEPERS.add(self)

    def _after_fork_in_child(self) -> None:
        # The held leases are the parent's: the parent renews and releases them; the child (whose copies
        # of the arrays die with it, or through the finalizers, which then find nothing held) does neither.
        # Its own loads take their own leases. The keeper thread did not survive the fork.
        self._cond = threading.Condition()
        self._held = {}
        self._dropped = []
        self._thread = None
        self._maps = {}

    # -- called by loads --------------------------------------------------------------------------

    def hold(self, lease_id: str, expires_at_ms: float, owner: Any) -> None:
        """Keeps ``lease_id`` renewed until ``owner`` (the mapping every array references) is collected."""
        ttl = max(0.3, expires_at_ms / 1000.0 - time.time())
        with self._cond:
            self._held[lease_id] = _Lease(lease_id, ttl)
            self._ensure_thread()
            self._cond.notify_all()
        weakref.finalize(owner, self._enqueue, lease_id, False)

    def drop(self, lease_id: str, discard: bool = False) -> None:
        """Releases ``lease_id`` now, in the calling thread (a lease never handed to arrays)."""
        with self._cond:
            self._held.pop(lease_id, None)
        self._delete(lease_id, discard)

    def held(self) -> List[str]:
        """The ids of the leases held now (arrays on them alive)."""
        with self._cond:
            return list(self._held)

    # -- the cache of shm mappings ----------------------------------------------------------------

    def cached_map(self, key: Tuple[int, int], length: int) -> Optional[Any]:
        """A cached mapping of the file ``key`` covering ``length`` bytes, or None."""
        with self._cond:
            hit = self._maps.get(key)
            if hit is None or hit[0].length < length:
                return None
            self._maps[key] = (hit[0], time.monotonic())
            return hit[0]

    def put_map(self, key: Tuple[int, int], mapping: Any) -> None:
        with self._cond:
            if self._client_closed:
                return
            self._maps[key] = (mapping, time.monotonic())
            self._ensure_thread()
            self._cond.notify_all()

    def forget_map(self, key: Tuple[int, int]) -> None:
        with self._cond:
            self._maps.pop(key, None)

    def _trim_maps(self, now: float) -> Optional[float]:
        # Under the lock: drops mappings unused for MAP_KEEP_S; returns when the next one is due.
        for key, (_m, used) in list(self._maps.items()):
            if used + MAP_KEEP_S <= now or self._client_closed:
                del self._maps[key]
        return min((used + MAP_KEEP_S for _m, used in self._maps.values()), default=None)

    def flush(self) -> None:
        """Sends the pending releases in the calling thread."""
        with self._cond:
            dropped, self._dropped = self._dropped, []
        for lease_id, discard in dropped:
            self._delete(lease_id, discard)

    def client_closed(self) -> None:
        """The client closed: release what is dropped; held leases stay renewed until their arrays go."""
        with self._cond:
            self._client_closed = True
            self._maps.clear()
            self._cond.notify_all()
        self.flush()

    # -- internals --------------------------------------------------------------------------------

    def _enqueue(self, lease_id: str, discard: bool) -> None:
        # Runs in a finalizer (any thread, maybe inside the GC): no I/O, no blocking beyond the lock.
        with self._cond:
            if self._held.pop(lease_id, None) is None:
                return
            self._dropped.append((lease_id, discard))
            self._cond.notify_all()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="tensorcast-lease-keeper", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._dropped:
                        break
                    now = time.monotonic()
                    map_due = self._trim_maps(now)
                    if not self._held:
                        if map_due is not None:
                            self._cond.wait(map_due - now)
                            continue
                        if self._client_closed:
                            self._thread = None
                            self.http.close()
                            return
                        # Nothing held: wait for work, then end after a while idle (a later hold restarts it).
                        if not self._cond.wait(5.0) and not self._held and not self._dropped and not self._maps:
                            self._thread = None
                            return
                        continue
                    due = min(le.renewed_at + le.ttl * RENEW_FRACTION for le in self._held.values())
                    if due <= now:
                        break
                    self._cond.wait(min(due, map_due if map_due is not None else due) - now)
                dropped, self._dropped = self._dropped, []
                now = time.monotonic()
                to_renew = [le for le in self._held.values() if le.renewed_at + le.ttl * RENEW_FRACTION <= now]
            for lease_id, discard in dropped:
                self._delete(lease_id, discard)
            for le in to_renew:
                self._renew(le)

    def _renew(self, le: _Lease) -> None:
        try:
            body = self.http.json("POST", f"/v1/shm-leases/{segment(le.lease_id)}/renew", timeout=REQUEST_TIMEOUT_S)
            le.ttl = max(0.3, float(body["expiresAt"]) / 1000.0 - time.time())
            le.renewed_at = time.monotonic()
        except TensorcastError as e:
            if e.code == "TC_ERR_LEASE_NOT_FOUND":
                # Expired (this process was stopped longer than the TTL?): the daemon may reuse the file.
                log.warning("tensorcast: shm lease %s expired while arrays still use it: %s", le.lease_id, e)
                le.lost = True
                with self._cond:
                    self._held.pop(le.lease_id, None)
            else:
                log.warning("tensorcast: renewing shm lease %s failed (retrying): %s", le.lease_id, e)
                le.renewed_at = time.monotonic() - le.ttl * RENEW_FRACTION + 1.0

    def _delete(self, lease_id: str, discard: bool, quiet: bool = False, timeout: float = REQUEST_TIMEOUT_S) -> bool:
        """Sends the DELETE; False when the daemon could not be reached or did not answer in time."""
        path = f"/v1/shm-leases/{segment(lease_id)}" + ("?discard=1" if discard else "")
        try:
            self.http.request("DELETE", path, timeout=timeout)
        except TensorcastError as e:
            if e.code != "TC_ERR_LEASE_NOT_FOUND" and not quiet:
                log.warning("tensorcast: releasing shm lease %s failed (it expires by itself): %s", lease_id, e)
            return e.code not in ("TC_ERR_UNAVAILABLE", "TC_ERR_TIMEOUT")
        return True

    def release_all(self) -> None:
        """At interpreter exit: release every lease (the arrays go with the process)."""
        with self._cond:
            ids = [(i, False) for i in self._held] + self._dropped
            self._held, self._dropped = {}, []
        # Bounded: a daemon that does not answer (stopped, gone) must not hold the exit a request timeout per
        # lease. The first release that cannot get through ends the attempt; the daemon expires the rest.
        end = time.monotonic() + EXIT_RELEASE_S
        for lease_id, discard in ids:
            left = end - time.monotonic()
            if left <= 0.05 or not self._delete(lease_id, discard, quiet=True, timeout=left):
                return


def keeper_of(client: Any) -> LeaseKeeper:
    """The client's lease keeper, created on first use."""
    with client._lock:
        if client._leases is None:
            client._leases = LeaseKeeper(client.url, client.token, client.token_source)
        return client._leases


def _reset_after_fork() -> None:
    for k in list(_KEEPERS):
        k._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


@atexit.register
def _release_at_exit() -> None:
    for k in list(_KEEPERS):
        try:
            k.release_all()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
