"""Background handshakes (a port of ``src/handshake/client/handshake-scheduler.ts``): at most one handshake in
flight per remote engine; a caller that wants a rank the current handshake is fetching joins it (it gets the same
``concurrent.futures.Future``), the others are parked and start the next handshake together when it ends (a
handshake fetches every rank parked at its start, in parallel). Answers are cached per engine and reused without
I/O until the engine shows a new incarnation, a caller asks for another incarnation or hash, ``invalidate`` drops
them, or they are older than ``max_age_ms``. Failures follow retry-policy.ts: under ``failure_policy='retry'`` the
retryable codes (unavailable, backend, not found, expired, 5xx...) are retried with exponential backoff and jitter
until ``max_attempts`` or the handshake's deadline; an incompatible hash, a refused token or a malformed payload
never are.

Threads: handshakes run on a ``ThreadPoolExecutor`` (``max_workers``), each rank GET of a handshake on a second
pool (rank GETs never wait on anything, so the two pools cannot deadlock). ``close()`` fails the waiting futures
with TC_ERR_ABORTED and joins the threads.
"""

from __future__ import annotations

import random
import ssl
import threading
import time
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from .._args import positive_ms
from ..errors import TensorcastError, tc_error
from .client import HandshakeClient, RankAnswer, check_id, check_rank, is_retryable
from .publisher import HandshakePublisher
from .rank_metadata import RankMetadata

Key = Tuple[int, int]

DEFAULT_RETRY = {"max_attempts": 5, "base_delay_ms": 100.0, "max_delay_ms": 2000.0}


def resolve_retry(retry: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """The retry options with defaults filled in (``max_attempts``, ``base_delay_ms``, ``max_delay_ms``).
    Raises TC_ERR_INVALID_ARGUMENT for attempts below 1 or negative/inverted delays."""
    r = dict(DEFAULT_RETRY)
    for k, v in (retry or {}).items():
        if k not in r:
            raise tc_error(
                "TC_ERR_INVALID_ARGUMENT", f"unknown retry option {k!r} (max_attempts, base_delay_ms, max_delay_ms)"
            )
        if v is not None:
            r[k] = v
    ok = (
        isinstance(r["max_attempts"], int)
        and not isinstance(r["max_attempts"], bool)
        and r["max_attempts"] >= 1
        and isinstance(r["base_delay_ms"], (int, float))
        and isinstance(r["max_delay_ms"], (int, float))
        and 0 <= r["base_delay_ms"] <= r["max_delay_ms"]
    )
    if not ok:
        raise tc_error(
            "TC_ERR_INVALID_ARGUMENT",
            f"retry options {r}: need max_attempts >= 1 and 0 <= base_delay_ms <= max_delay_ms",
        )
    return r


def backoff_ms(retry: Dict[str, Any], attempt: int) -> float:
    """The delay before attempt ``attempt`` (2 = the first retry): ``base * 2^(attempt-2)`` capped at the
    maximum, of which a random half is jitter."""
    full = min(retry["max_delay_ms"], retry["base_delay_ms"] * 2 ** max(0, attempt - 2))
    return full / 2 + random.random() * (full / 2)


@dataclass
class _Flight:
    group: str
    expect_hash: Optional[str]
    incarnation: Optional[str]
    generation: int
    remaining: Dict[Key, Future]  # ranks not answered yet: callers may still join these futures
    started_ms: float


@dataclass
class _Parked:
    key: Key
    group: str
    expect_hash: Optional[str]
    incarnation: Optional[str]
    force: bool
    future: Future


@dataclass
class _Slot:
    cache: Dict[Key, Tuple[RankMetadata, float]] = field(default_factory=dict)
    incarnation: Optional[str] = None
    generation: int = 0
    flight: Optional[_Flight] = None
    last_error: Optional[TensorcastError] = None
    queued: List[_Parked] = field(default_factory=list)
    handshakes: int = 0
    in_flight: int = 0
    max_in_flight: int = 0


def _now_ms() -> float:
    return time.monotonic() * 1000


class Handshakes:
    """Background handshakes with one handshake listener, a cache of the answers, and the direct calls of
    ``HandshakeClient`` (``publish``, ``fetch_rank``, ``engine``, ``engines``, ``renew``, ``remove``).

    ``Handshakes(url, token=None, *, ssl_context=None, timeout_ms=5000, failure_policy='retry', retry=None,
    expect_hash=None, max_age_ms=None, max_answer_bytes=None, max_workers=4)``; also ``client.handshakes()``.

    >>> with Handshakes("http://10.0.0.5:7072", token, expect_hash="vllm-0.9-llama3-bf16") as hs:
    ...     fut = hs.handshake("prefill-0", [(0, 0), (1, 0)])   # a concurrent.futures.Future
    ...     metas = fut.result()                               # [RankMetadata, RankMetadata]
    ...     meta = hs.get("prefill-0", 1, 0)                   # from the cache, no I/O
    """

    def __init__(
        self,
        url: str,
        token: Optional[str] = None,
        *,
        ssl_context: Optional[ssl.SSLContext] = None,
        timeout_ms: float = 5000,
        failure_policy: str = "retry",
        retry: Optional[Dict[str, Any]] = None,
        expect_hash: Optional[str] = None,
        max_age_ms: Optional[float] = None,
        max_answer_bytes: Optional[int] = None,
        max_workers: int = 4,
    ) -> None:
        if failure_policy not in ("retry", "fail"):
            raise tc_error(
                "TC_ERR_INVALID_ARGUMENT", f"failure_policy must be 'retry' or 'fail', not {failure_policy!r}"
            )
        self.max_age_ms = None if max_age_ms is None else positive_ms("max_age_ms", max_age_ms)
        self.retry = resolve_retry(retry)
        self.failure_policy = failure_policy
        self.client = HandshakeClient(
            url,
            token,
            ssl_context=ssl_context,
            timeout_ms=timeout_ms,
            expect_hash=expect_hash,
            max_answer_bytes=max_answer_bytes,
        )
        self.timeout_ms = self.client.timeout_ms
        self.expect_hash = self.client.expect_hash
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._slots: Dict[str, _Slot] = {}
        self._publishers: List[HandshakePublisher] = []
        self._aggregates: "weakref.WeakValueDictionary[Any, Future]" = weakref.WeakValueDictionary()
        self._counters = dict.fromkeys(
            ("handshakes_started", "rank_requests", "retries", "failures", "cache_hits", "parked"), 0
        )
        self._flights = ThreadPoolExecutor(max_workers, thread_name_prefix="tensorcast-handshake")
        self._gets = ThreadPoolExecutor(max_workers * 4, thread_name_prefix="tensorcast-handshake-get")

    # -- the direct calls -------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.client.url

    def publish(self, meta: Union[RankMetadata, bytes]) -> Dict[str, Any]:
        """``HandshakeClient.publish``."""
        return self.client.publish(meta)

    def publisher(
        self, meta: Union[RankMetadata, bytes], renew_every_ms: Optional[float] = None
    ) -> "HandshakePublisher":
        """Publishes one rank and keeps it published (renewals; published again when the listener lost it) until
        the returned publisher's ``stop()``; ``close()`` stops the publishers still running (ranks kept)."""
        p = HandshakePublisher(self.client, meta, renew_every_ms)
        with self._lock:
            self._publishers.append(p)
        return p

    def fetch_rank(self, engine_id: str, tp_rank: int, dp_rank: int, expect_hash: Optional[str] = None) -> RankAnswer:
        """One GET, bypassing the cache and the failure policy (``HandshakeClient.fetch_rank``)."""
        return self.client.fetch_rank(engine_id, tp_rank, dp_rank, expect_hash)

    def engine(self, engine_id: str) -> Dict[str, Any]:
        return self.client.engine(engine_id)

    def engines(self) -> List[Dict[str, Any]]:
        return self.client.engines()

    def renew(self, engine_id: str, incarnation: str) -> Dict[str, Any]:
        return self.client.renew(engine_id, incarnation)

    def remove(self, engine_id: str, incarnation: Optional[str] = None) -> Dict[str, Any]:
        return self.client.remove(engine_id, incarnation)

    # -- background handshakes -------------------------------------------------------------------------------

    def get_async(
        self,
        engine_id: str,
        tp_rank: int,
        dp_rank: int,
        *,
        expect_hash: Optional[str] = None,
        incarnation: Optional[str] = None,
        force: bool = False,
    ) -> Future:
        """A future of one rank's ``RankMetadata``: already done from the cache, else the future of the engine's
        current handshake for that rank (joined) or of its next one (parked). See ``get`` for the errors."""
        return self._request(engine_id, [(tp_rank, dp_rank)], expect_hash, incarnation, force)[0]

    def get(
        self,
        engine_id: str,
        tp_rank: int,
        dp_rank: int,
        *,
        expect_hash: Optional[str] = None,
        incarnation: Optional[str] = None,
        timeout_ms: Optional[float] = None,
    ) -> RankMetadata:
        """One rank's metadata: from the cache without I/O, else from a background handshake (shared with
        concurrent callers; at most one in flight per engine). ``incarnation``: the one the caller knows the engine
        runs; a cache of another one is dropped and the listener asked again until the deadline.

        Raises TC_ERR_INCOMPATIBLE (the payload was not decoded); TC_ERR_NOT_FOUND / TC_ERR_EXPIRED (after retries);
        TC_ERR_TIMEOUT; TC_ERR_AUTH; TC_ERR_MALFORMED; TC_ERR_UNAVAILABLE; TC_ERR_ABORTED (closed);
        TC_ERR_INVALID_ARGUMENT.
        """
        wait = self.timeout_ms if timeout_ms is None else positive_ms("timeout_ms", timeout_ms)
        fut = self.get_async(engine_id, tp_rank, dp_rank, expect_hash=expect_hash, incarnation=incarnation)
        return self._result(fut, wait, engine_id, (tp_rank, dp_rank))

    def handshake(
        self,
        engine_id: str,
        ranks: Sequence[Tuple[int, int]],
        *,
        expect_hash: Optional[str] = None,
        incarnation: Optional[str] = None,
    ) -> Future:
        """An explicit handshake: the given ``(tp_rank, dp_rank)`` ranks fetched afresh (one handshake, ranks in
        parallel; joined with the engine's handshake in flight when that one fetches them), refreshing the cache.
        Returns a ``concurrent.futures.Future`` of the ``RankMetadata`` list in the order given; its exception is
        the first rank's error (as ``get``). A second call for the same ranks while they are in flight (or parked)
        returns the same future."""
        futures = self._request(engine_id, list(ranks), expect_hash, incarnation, True)
        key = (engine_id, tuple(id(f) for f in futures))
        with self._lock:
            same = self._aggregates.get(key)
            if same is not None and not same.done():
                return same
            out: Future = Future()
            out.set_running_or_notify_cancel()
            self._aggregates[key] = out  # weak: gone with the caller's future (which keeps the rank futures alive)
        left = [len(futures)]
        lock = threading.Lock()

        def done(_: Future) -> None:
            with lock:
                left[0] -= 1
                if left[0] != 0:
                    return
            for f in futures:
                if f.exception() is not None:
                    out.set_exception(f.exception())
                    return
            out.set_result([f.result() for f in futures])

        if not futures:
            out.set_result([])
        for f in futures:
            f.add_done_callback(done)
        return out

    def invalidate(self, engine_id: Optional[str] = None) -> None:
        """Drops the cached ranks of ``engine_id`` (of every engine when None): the next get() handshakes again."""
        with self._lock:
            for eid, slot in self._slots.items():
                if engine_id is None or eid == engine_id:
                    self._drop(slot)

    def stats(self) -> Dict[str, Any]:
        """Counters: handshakes_started, rank_requests, retries, failures, cache_hits, parked,
        max_in_flight_per_engine (1 unless single-flight broke) and per engine
        {handshakes, in_flight, max_in_flight}."""
        with self._lock:
            engines = {
                eid: {"handshakes": s.handshakes, "in_flight": s.in_flight, "max_in_flight": s.max_in_flight}
                for eid, s in self._slots.items()
            }
            out: Dict[str, Any] = dict(self._counters)
        out["max_in_flight_per_engine"] = max([e["max_in_flight"] for e in engines.values()] + [0])
        out["engines"] = engines
        return out

    def close(self) -> None:
        """Fails every waiting future (TC_ERR_ABORTED), stops the handshakes (a GET in flight ends within its
        deadline) and the publishers (their ranks stay published until their TTL) and joins the threads; closes
        the connections. Idempotent."""
        with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()
            waiting = []
            for slot in self._slots.values():
                waiting.extend(p.future for p in slot.queued)
                slot.queued = []
                if slot.flight is not None:
                    waiting.extend(slot.flight.remaining.values())
            publishers, self._publishers = self._publishers, []
        closed = tc_error("TC_ERR_ABORTED", "the handshake client was closed")
        for f in waiting:
            _settle(f, closed)
        for p in publishers:
            p.stop()
        self._flights.shutdown(wait=True)
        self._gets.shutdown(wait=True)
        self.client.close()

    def __enter__(self) -> "Handshakes":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- inside ------------------------------------------------------------------------------------------------

    def _result(self, fut: Future, wait_ms: float, engine_id: str, key: Key) -> RankMetadata:
        import concurrent.futures

        try:
            return fut.result(timeout=wait_ms / 1000)
        except concurrent.futures.TimeoutError:
            with self._lock:
                last = self._slots[engine_id].last_error if engine_id in self._slots else None
            message = f"no handshake with engine '{engine_id}' answered rank {key[0]}/{key[1]} within {wait_ms:g} ms"
            details: Dict[str, Any] = {"engineId": engine_id, "timeoutMs": wait_ms}
            if last is not None:
                message += f" (last error {last.code}: {last.message})"
                details["lastCode"] = last.code
            raise tc_error("TC_ERR_TIMEOUT", message, details) from last

    def _request(
        self,
        engine_id: str,
        ranks: List[Tuple[int, int]],
        expect_hash: Optional[str],
        incarnation: Optional[str],
        force: bool,
    ) -> List[Future]:
        check_id("engine id", engine_id)
        for r in ranks:
            if not isinstance(r, (tuple, list)) or len(r) != 2:
                raise tc_error("TC_ERR_INVALID_ARGUMENT", f"a rank is a (tp_rank, dp_rank) pair, not {r!r}")
            check_rank("tp_rank", r[0])
            check_rank("dp_rank", r[1])
        expect = self.expect_hash if expect_hash is None else check_id("expect_hash", expect_hash)
        if incarnation is not None:
            check_id("incarnation", incarnation)
        group = f"{expect or ''}|{incarnation or ''}"
        out: List[Future] = []
        with self._lock:
            if self._closed.is_set():
                f: Future = Future()
                f.set_exception(tc_error("TC_ERR_ABORTED", "the handshake client is closed"))
                return [f for _ in ranks]
            slot = self._slots.setdefault(engine_id, _Slot())
            if incarnation is not None and slot.incarnation is not None and slot.incarnation != incarnation:
                self._drop(slot)
            for tp, dp in ranks:
                key = (tp, dp)
                if not force:
                    hit = self._lookup(slot, key, expect)
                    if hit is not None:
                        self._counters["cache_hits"] += 1
                        f = Future()
                        f.set_result(hit)
                        out.append(f)
                        continue
                self._counters["parked"] += 1
                flight = slot.flight
                joinable = flight is not None and flight.group == group and flight.generation == slot.generation
                if flight is not None and joinable and key in flight.remaining:
                    out.append(flight.remaining[key])  # joins the handshake in flight
                    continue
                same = [p for p in slot.queued if p.key == key and p.group == group and not p.future.done()]
                if same:
                    out.append(same[0].future)  # parked behind the one in flight with an earlier caller
                    continue
                f = Future()
                f.set_running_or_notify_cancel()
                slot.queued.append(_Parked(key, group, expect, incarnation, force, f))
                out.append(f)
            self._start_next(engine_id, slot)
        return out

    def _drop(self, slot: _Slot) -> None:
        slot.cache.clear()
        slot.incarnation = None
        slot.generation += 1

    def _lookup(self, slot: _Slot, key: Key, expect_hash: Optional[str]) -> Optional[RankMetadata]:
        entry = slot.cache.get(key)
        if entry is None:
            return None
        meta, fetched = entry
        if self.max_age_ms is not None and _now_ms() - fetched > self.max_age_ms:
            del slot.cache[key]
            return None
        if expect_hash is not None and meta.compatibility_hash != expect_hash:
            self._drop(slot)  # the engine may have restarted with another configuration: the listener decides
            return None
        return meta

    def _start_next(self, engine_id: str, slot: _Slot) -> None:
        """Under the lock: starts the engine's next handshake unless one is in flight."""
        if slot.flight is not None or self._closed.is_set():
            return
        for p in slot.queued:  # the handshake that just ended may have fetched what parked callers want
            if p.future.done() or p.force:
                continue
            hit = self._lookup(slot, p.key, p.expect_hash)
            if hit is not None:
                _settle(p.future, hit)
        slot.queued = [p for p in slot.queued if not p.future.done()]
        if not slot.queued:
            return
        first = slot.queued[0]
        taking = [p for p in slot.queued if p.group == first.group]
        slot.queued = [p for p in slot.queued if p.group != first.group]
        flight = _Flight(first.group, first.expect_hash, first.incarnation, slot.generation, {}, _now_ms())
        for p in taking:
            flight.remaining.setdefault(p.key, p.future)
        slot.flight = flight
        slot.handshakes += 1
        slot.in_flight += 1
        slot.max_in_flight = max(slot.max_in_flight, slot.in_flight)
        self._counters["handshakes_started"] += 1
        self._flights.submit(self._run_and_next, engine_id, slot, flight)

    def _run_and_next(self, engine_id: str, slot: _Slot, flight: _Flight) -> None:
        try:
            self._run(engine_id, slot, flight)
        finally:
            with self._lock:
                slot.in_flight -= 1
                slot.flight = None
                if slot.queued:
                    self._start_next(engine_id, slot)

    def _run(self, engine_id: str, slot: _Slot, flight: _Flight) -> None:
        """One handshake: every remaining rank in parallel, attempt after attempt, until done, failed or late."""
        deadline = flight.started_ms + self.timeout_ms
        failed = [False]
        last_error: List[Optional[TensorcastError]] = [None]

        def out_of_time() -> TensorcastError:
            return tc_error(
                "TC_ERR_TIMEOUT", f"the handshake with engine '{engine_id}' did not complete in {self.timeout_ms:g} ms"
            )

        def finish(key: Key, result: Union[RankMetadata, BaseException]) -> None:
            with self._lock:
                fut = flight.remaining.pop(key, None)
            if fut is None:
                return
            if isinstance(result, BaseException):
                failed[0] = True
            _settle(fut, result)

        try:
            attempt = 0
            while flight.remaining:
                attempt += 1
                if attempt > 1:
                    delay = backoff_ms(self.retry, attempt)
                    if _now_ms() + delay >= deadline:
                        raise out_of_time()
                    with self._lock:
                        self._counters["retries"] += 1
                    self._closed.wait(delay / 1000)
                if self._closed.is_set():
                    raise tc_error("TC_ERR_ABORTED", "the handshake client was closed")
                left = deadline - _now_ms()
                if left <= 0:
                    raise out_of_time()
                with self._lock:
                    asked = list(flight.remaining.keys())
                    self._counters["rank_requests"] += len(asked)
                gets = [
                    self._gets.submit(self.client.fetch_rank, engine_id, tp, dp, flight.expect_hash, left)
                    for tp, dp in asked
                ]
                answers: Dict[Key, RankAnswer] = {}
                errors: Dict[Key, TensorcastError] = {}
                for key, g in zip(asked, gets):
                    e = g.exception()
                    if e is None:
                        answers[key] = g.result()
                    else:
                        errors[key] = _as_tensorcast(e)
                if self._closed.is_set():
                    raise tc_error("TC_ERR_ABORTED", "the handshake client was closed")
                incarnations = {a.meta.incarnation for a in answers.values()}
                if len(incarnations) > 1:
                    # The engine restarted between two of these GETs: ask again for every rank of this attempt.
                    n = len(incarnations)
                    conflict = tc_error("TC_ERR_CONFLICT", f"engine '{engine_id}' answered with {n} incarnations")
                    for key in answers:
                        errors[key] = conflict
                    answers = {}
                for key, answer in answers.items():
                    wanted = flight.incarnation
                    if wanted is not None and answer.meta.incarnation != wanted:
                        errors[key] = tc_error(
                            "TC_ERR_NOT_FOUND",
                            f"engine '{engine_id}' is at incarnation '{answer.meta.incarnation}', not '{wanted}' (yet)",
                            {"engineId": engine_id, "wanted": wanted, "published": answer.meta.incarnation},
                        )
                        continue
                    with self._lock:
                        self._store(slot, flight, key, answer.meta)
                        slot.last_error = None
                    finish(key, answer.meta)
                for key, error in errors.items():
                    if error.code == "TC_ERR_TIMEOUT" and _now_ms() >= deadline - 1:
                        raise out_of_time()
                    last_error[0] = error
                    with self._lock:
                        slot.last_error = error
                    again = (
                        self.failure_policy == "retry"
                        and (is_retryable(error) or error.code == "TC_ERR_CONFLICT")
                        and attempt < self.retry["max_attempts"]
                    )
                    if not again:
                        finish(key, error)
        except BaseException as e:  # noqa: B902 - every rank still waiting gets the reason
            reason = _as_tensorcast(e)
            last = last_error[0]
            if last is not None and reason.code == "TC_ERR_TIMEOUT":
                reason = tc_error(
                    "TC_ERR_TIMEOUT",
                    f"{reason.message} (last error {last.code}: {last.message})",
                    {"engineId": engine_id, "timeoutMs": self.timeout_ms, "lastCode": last.code},
                )
                reason.__cause__ = last
            for key in list(flight.remaining.keys()):
                finish(key, reason)
        finally:
            if failed[0]:
                with self._lock:
                    self._counters["failures"] += 1

    def _store(self, slot: _Slot, flight: _Flight, key: Key, meta: RankMetadata) -> None:
        if slot.generation != flight.generation:
            return
        if slot.incarnation != meta.incarnation:
            slot.cache.clear()  # a new incarnation: every rank cached of the old one is stale
            slot.incarnation = meta.incarnation
        slot.cache[key] = (meta, _now_ms())


def _settle(fut: Future, result: Union[RankMetadata, BaseException]) -> None:
    if fut.done():
        return
    try:
        if isinstance(result, BaseException):
            fut.set_exception(result)
        else:
            fut.set_result(result)
    except Exception:  # settled meanwhile by another thread (close)
        pass


def _as_tensorcast(error: BaseException) -> TensorcastError:
    if isinstance(error, TensorcastError):
        return error
    return tc_error("TC_ERR_INTERNAL", f"handshake failed: {error}")
