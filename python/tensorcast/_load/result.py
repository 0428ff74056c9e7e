"""``LoadResult``: the arrays of one load, by name, in plan order, with how they came."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Iterator, Mapping, Optional

from .._plan import Plan
from ..errors import tc_error


@dataclass(frozen=True)
class LoadStats:
    #: ``shm``, ``files`` or ``tcp``.
    transport: str
    #: How the daemon reached the bytes (``local``, ``peer``, ...), as the daemon reports it.
    route: Optional[str]
    #: ``replica_hit``, ``materialized``, ``streamed``, ``client_materialized``.
    source: Optional[str]
    #: Bytes of the load (the plan's total).
    bytes: int
    seconds: float
    #: Copies of the bytes this client made: 0 for mapped arrays; 1 when copied into ``into=`` or when a
    #: fused/padded tensor was gathered from a mapped file (counted once per load that gathered).
    copies: int

    @property
    def gbps(self) -> float:
        """GB/s (10^9 bytes per second)."""
        return self.bytes / self.seconds / 1e9 if self.seconds > 0 else float("inf")


class LoadResult(Mapping):
    """A read-only mapping of tensor name to array (numpy, or torch with ``as_torch=True``) in plan order.

    ``.plan`` is the load's plan, ``.stats`` its ``LoadStats``. ``release()`` (idempotent; also on leaving a
    ``with`` block) drops the result's references to its arrays; see ``tensorcast._load`` for what that means
    for mapped arrays and their leases.
    """

    def __init__(self, plan: Plan, arrays: Dict[str, Any], stats: LoadStats, keeper: Any = None, owner: Any = None) -> None:
        self.plan = plan
        self.stats = stats
        self._arrays: Optional[Dict[str, Any]] = arrays
        self._keeper = keeper
        # The mapping (or destination buffer) every array keeps alive; held here too so the result alone
        # keeps it while its arrays are reachable only through the result.
        self._owner = owner

    def _live(self) -> Dict[str, Any]:
        if self._arrays is None:
            raise tc_error("TC_ERR_ABORTED", "this load result was released; keep the arrays you need before release()")
        return self._arrays

    def __getitem__(self, name: str) -> Any:
        return self._live()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._live())

    def __len__(self) -> int:
        return len(self._live())

    def __contains__(self, name: object) -> bool:
        return self._arrays is not None and name in self._arrays

    @property
    def released(self) -> bool:
        return self._arrays is None

    def release(self) -> None:
        """Drops the result's references to its arrays (idempotent). A mapping and its lease go as soon as
        no array made from it is referenced anywhere (at once, when the caller holds none); pending lease
        releases are sent before this returns."""
        if self._arrays is None:
            return
        self._arrays = None
        self._owner = None
        if self._keeper is not None:
            self._keeper.flush()

    def __enter__(self) -> "LoadResult":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def __repr__(self) -> str:
        n = "released" if self._arrays is None else f"{len(self._arrays)} tensors"
        return f"LoadResult({self.plan.artifact_id}, {n}, {self.stats.transport}, {self.stats.bytes} bytes)"
