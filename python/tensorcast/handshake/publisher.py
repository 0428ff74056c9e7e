"""The publisher side (a port of ``src/handshake/client/handshake-publisher.ts``): publish one rank and keep it
alive by renewing the engine's incarnation every ``renew_every_ms`` (default a third of the listener's TTL),
publishing it again when the listener no longer has it (it expired, or a memory listener restarted), until stop().
One daemon thread per publisher; keep-alive failures never stop it (the next round tries again)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Dict, Optional, Union

from .._args import positive_ms
from ..errors import TensorcastError
from .client import HandshakeClient, encoded_rank
from .rank_metadata import RankMetadata

_log = logging.getLogger("tensorcast.handshake")


class HandshakePublisher:
    """Keeps one rank published until ``stop()``; made by ``Handshakes.publisher(meta)`` (or
    ``HandshakePublisher(client, meta)``), which publishes once first (its errors raised there).

    >>> p = hs.publisher(meta)          # published; renewed in the background
    >>> p.stop(remove=True)             # the engine's ranks of this incarnation are deleted
    """

    def __init__(
        self, client: HandshakeClient, meta: Union[RankMetadata, bytes], renew_every_ms: Optional[float] = None
    ) -> None:
        self.client = client
        self.meta, self._payload = encoded_rank(meta)
        if renew_every_ms is not None:
            positive_ms("renew_every_ms", renew_every_ms)
        self._stop = threading.Event()
        self._counts = {"publishes": 0, "renewals": 0, "republishes": 0, "errors": 0}
        answer = client.publish(self._payload)
        self._counts["publishes"] += 1
        ttl = answer.get("ttlMs")
        ttl_ms = ttl if isinstance(ttl, (int, float)) and ttl > 0 else answer.get("expiresAtMs", 0) - time.time() * 1000
        default = max(100, ttl_ms // 3) if ttl_ms > 0 else 20_000
        self.renew_every_ms = float(renew_every_ms if renew_every_ms is not None else default)
        self.answer: Dict[str, Any] = answer
        name = f"tensorcast-publisher-{self.meta.engine_id}"
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def stats(self) -> Dict[str, Any]:
        """publishes, renewals, republishes (the listener had lost the rank), errors, renew_every_ms."""
        return {**self._counts, "renew_every_ms": self.renew_every_ms}

    def stop(self, remove: bool = False) -> None:
        """Stops renewing (joins the thread); with ``remove``, also deletes the engine's ranks of this incarnation
        (every rank of it, not only this one)."""
        self._stop.set()
        self._thread.join()
        if remove:
            self.client.remove(self.meta.engine_id, self.meta.incarnation)

    def _loop(self) -> None:
        while not self._stop.wait(self.renew_every_ms / 1000):
            self._tick()

    def _listed(self) -> bool:
        try:
            summary = self.client.engine(self.meta.engine_id)
        except TensorcastError as e:
            if e.code == "TC_ERR_NOT_FOUND":
                return False
            raise
        m = self.meta
        ranks = summary.get("ranks", [])
        return summary.get("incarnation") == m.incarnation and any(
            r.get("tpRank") == m.tp_rank and r.get("dpRank") == m.dp_rank for r in ranks
        )

    def _tick(self) -> None:
        m = self.meta
        try:
            lost = False
            try:
                renewed = self.client.renew(m.engine_id, m.incarnation)
                self._counts["renewals"] += 1
                lost = renewed.get("renewed") == 0
            except TensorcastError as e:
                if e.code not in ("TC_ERR_NOT_FOUND", "TC_ERR_EXPIRED"):
                    raise
                lost = True
            # renewal covers every rank of the incarnation: it succeeds while this rank alone is gone
            if not lost:
                lost = not self._listed()
            if lost and not self._stop.is_set():
                self.client.publish(self._payload)
                self._counts["publishes"] += 1
                self._counts["republishes"] += 1
        except TensorcastError as e:
            self._counts["errors"] += 1
            _log.warning("handshake keep-alive of %s failed (%s); trying again next round", m.engine_id, e)
