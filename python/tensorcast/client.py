"""``Client``: the Python entry point to a tensorcast daemon.

The daemon does the heavy work (planning, materializing TP slices, leases); the client moves bytes into
memory the caller owns or maps: shared memory and the artifact files on the daemon's host (``mmap``, no
copy), the binary data plane across hosts (several connections, ``recv_into``, CRC32C per frame).
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any, Dict, Iterator, Optional, Sequence, Tuple

from ._args import check_connections, check_timeout
from ._config import resolve_connect
from ._http import HttpClient
from ._plan import Plan, request_plan
from .errors import tc_error

DEFAULT_CONNECTIONS = 4
DEFAULT_TIMEOUT_S = 600.0


#: Every Client, so a fork()ed child gets fresh locks (another thread may have held one at the fork).
_CLIENTS: "weakref.WeakSet[Client]" = weakref.WeakSet()


def _reset_after_fork() -> None:
    for c in list(_CLIENTS):
        c._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


class Client:
    """A connection to one daemon.

    ``url`` and ``token`` default as the CLI's do (``TENSORCAST_DAEMON``, ``TENSORCAST_TOKEN``,
    ``TENSORCAST_TOKEN_FILE``, ``~/.tensorcast/token``). ``connections`` is the number of data-plane
    connections a TCP load splits its bytes across; ``timeout`` (seconds) the default deadline of one call.
    Thread-safe; use it as a context manager or call ``close()``.

    ``fork()`` (multiprocessing's ``fork`` start method, PyTorch DataLoader workers): the child may keep
    using an inherited client. It opens its own connections (the parent's pooled sockets are dropped in the
    child, never used or shut down), takes its own leases for its own loads, and neither renews nor releases
    the parent's: arrays inherited from the parent stay valid only while the parent keeps them.
    """

    def __init__(
        self,
        url: Optional[str] = None,
        token: Optional[str] = None,
        *,
        token_file: Optional[str] = None,
        connections: int = DEFAULT_CONNECTIONS,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        check_connections(connections)
        resolved = resolve_connect(url, token, token_file)
        self.url = resolved.url
        self.token = resolved.token
        self.token_source = resolved.token_source
        self.connections = connections
        self.timeout = check_timeout(timeout, optional=False)
        self.http = HttpClient(self.url, self.token, self.token_source, timeout=self.timeout)
        self._lock = threading.Lock()
        self._info: Optional[Dict[str, Any]] = None
        self._dataplane: Any = None
        self._leases: Any = None
        self._closed = False
        _CLIENTS.add(self)

    # -- daemon facts -------------------------------------------------------------------------------

    def info(self, refresh: bool = False) -> Dict[str, Any]:
        """``GET /v1/info``: daemon id, version, data-plane address, shm folder, budget, handshake URL."""
        with self._lock:
            if self._info is None or refresh:
                self._info = self.http.json("GET", "/v1/info")
            return self._info

    def plan(
        self,
        key: str,
        tp: Optional[Tuple[int, int]] = None,
        view: Optional[Dict[str, Any]] = None,
        tensors: Optional[Sequence[str]] = None,
        rules: Optional[Dict[str, Any]] = None,
    ) -> Plan:
        """The plan of a load in one round trip (``POST /v1/plans``)."""
        self._check_open()
        return request_plan(self.http, key, tp=tp, view=view, tensors=tensors, rules=rules)

    @property
    def dataplane(self) -> Any:
        """The pooled data-plane connections to this daemon (``tensorcast._dataplane.DataPlane``)."""
        self._check_open()
        with self._lock:
            if self._dataplane is None:
                from ._dataplane import DataPlane

                info = self._info if self._info is not None else self.http.json("GET", "/v1/info")
                self._info = info
                if not isinstance(info, dict) or not isinstance(info.get("dataAddress"), str):
                    raise tc_error("TC_ERR_PROTOCOL", f"/v1/info names no data-plane address: {info!r:.200}")
                # The client's timeout bounds data-plane calls too (a load or iteration without its own).
                self._dataplane = DataPlane(
                    info["dataAddress"], self.token, self.token_source, connections=self.connections, timeout=self.timeout
                )
            return self._dataplane

    # -- loads --------------------------------------------------------------------------------------

    def load(
        self,
        key: str,
        tp: Optional[Tuple[int, int]] = None,
        view: Optional[Dict[str, Any]] = None,
        *,
        tensors: Optional[Sequence[str]] = None,
        transport: str = "auto",
        into: Any = None,
        as_torch: bool = False,
        timeout: Optional[float] = None,
    ) -> Any:
        """Loads a TP rank (``tp=(size, rank)``), a view or the whole artifact of ``key``.

        Returns a ``LoadResult``: a read-only mapping of tensor name to array (numpy, or torch with
        ``as_torch=True``) in plan order, with ``.stats`` and ``.release()``. See ``tensorcast._load``.
        """
        from ._load import load

        self._check_open()
        return load(self, key, tp=tp, view=view, tensors=tensors, transport=transport, into=into, as_torch=as_torch, timeout=timeout)

    def iter_weights(
        self,
        key: str,
        tp: Optional[Tuple[int, int]] = None,
        view: Optional[Dict[str, Any]] = None,
        *,
        tensors: Optional[Sequence[str]] = None,
        transport: str = "auto",
        as_torch: bool = True,
        max_in_flight_bytes: int = 256 << 20,
        timeout: Optional[float] = None,
    ) -> Iterator[Tuple[str, Any]]:
        """Yields ``(name, tensor)`` in plan order as each arrives, with bounded memory: the iterator
        vLLM's and SGLang's weight loaders consume. See ``tensorcast._load.iter_weights``."""
        from ._load import iter_weights

        self._check_open()
        return iter_weights(
            self,
            key,
            tp=tp,
            view=view,
            tensors=tensors,
            transport=transport,
            as_torch=as_torch,
            max_in_flight_bytes=max_in_flight_bytes,
            timeout=timeout,
        )

    # -- features and handshakes --------------------------------------------------------------------

    def features(self, store_id: str, **options: Any) -> Any:
        """The feature store ``store_id`` on this daemon (``tensorcast.features.FeatureStore``)."""
        from .features import FeatureStore

        self._check_open()
        return FeatureStore(self, store_id, **options)

    def handshakes(self, url: Optional[str] = None, **options: Any) -> Any:
        """Background handshakes with the handshake service (default: this daemon's ``--handshake-listen``
        URL from ``/v1/info``) (``tensorcast.handshake.Handshakes``)."""
        from .handshake import Handshakes

        self._check_open()
        if url is None:
            url = self.info().get("handshakeUrl")
            if not url:
                raise tc_error(
                    "TC_ERR_NOT_FOUND",
                    "this daemon runs no handshake listener (start it with --handshake-listen) and no url was given",
                )
        options.setdefault("token", self.token)
        return Handshakes(url, **options)

    # -- lifetime -----------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise tc_error("TC_ERR_ABORTED", "the client is closed")

    def close(self) -> None:
        """Closes the connections and releases the shm leases whose arrays are gone. Arrays still alive keep
        working: their leases stay renewed (by the lease keeper thread) until the arrays go, then are
        released. See ``tensorcast._load`` for the lifetime of mapped arrays."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            dp, self._dataplane = self._dataplane, None
            leases = self._leases
        if dp is not None:
            dp.close()
        if leases is not None:
            leases.client_closed()
        from ._load.mapped import forget_files

        forget_files(self)
        self.http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.url!r}{', closed' if self._closed else ''})"
