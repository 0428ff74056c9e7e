// Background handshakes, one remote engine at a time: at most one handshake in flight per engine; callers
// that want a rank it is fetching join it, the others are parked and start the next one together when it
// ends (a handshake fetches every rank parked at its start, in parallel). Answers are cached per engine
// and reused without I/O until the engine shows a new incarnation, a caller asks for another incarnation
// or hash, `invalidate` drops them, or they are older than `maxAgeMs`.

import { isTensorcastError, tcError, type TensorcastError } from '../../core/errors.js';
import type { RankMetadata } from '../rank-metadata.js';
import type { HandshakeHttp, RankAnswer } from './handshake-http.js';
import { backoffMs, isRetryable, type FailurePolicy, type ResolvedRetry } from './retry-policy.js';

/** What the scheduler needs from the client. */
export interface SchedulerOptions {
  readonly http: HandshakeHttp;
  readonly timeoutMs: number;
  readonly failurePolicy: FailurePolicy;
  readonly retry: ResolvedRetry;
  readonly maxAgeMs?: number;
}

/** One caller's request. */
export interface RankRequest {
  readonly tpRank: number;
  readonly dpRank: number;
  readonly expectHash?: string;
  readonly incarnation?: string;
  /** Skip the cache (an explicit handshake). */
  readonly force?: boolean;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

/** Counters of one engine's handshakes. */
export interface EngineHandshakeStats {
  readonly handshakes: number;
  /** Handshakes in flight now (0 or 1). */
  readonly inFlight: number;
  /** Most handshakes ever in flight at once for this engine: 1 unless single-flight broke. */
  readonly maxInFlight: number;
}

/** Counters of a client's handshakes (stats()). */
export interface HandshakeStats {
  /** Handshakes started (each fetches one or more ranks of one engine). */
  readonly handshakesStarted: number;
  /** Rank GETs sent, retries included. */
  readonly rankRequests: number;
  /** Attempts after the first, over all handshakes. */
  readonly retries: number;
  /** Handshakes that ended with at least one rank failed. */
  readonly failures: number;
  /** get() calls answered from the cache, without I/O. */
  readonly cacheHits: number;
  /** get() calls that waited for a handshake (started one, joined one or were parked behind one). */
  readonly parked: number;
  /** Most handshakes in flight at once for any one engine. */
  readonly maxInFlightPerEngine: number;
  readonly engines: Readonly<Record<string, EngineHandshakeStats>>;
}

interface Waiter {
  readonly key: string;
  readonly group: string;
  readonly request: RankRequest;
  settled: boolean;
  settle(result: RankMetadata | TensorcastError): void;
}

interface Flight {
  readonly group: string;
  readonly expectHash: string | undefined;
  readonly incarnation: string | undefined;
  readonly generation: number;
  /** Ranks not answered yet: callers may still join for these. */
  readonly remaining: Map<string, { tpRank: number; dpRank: number }>;
  readonly waiters: Waiter[];
}

interface Slot {
  readonly cache: Map<string, { meta: RankMetadata; fetchedAtMs: number }>;
  incarnation: string | undefined;
  /** Bumped when the cache is dropped: a handshake started before stores nothing. */
  generation: number;
  flight: Flight | undefined;
  /** The last error of this engine's handshakes, named when a caller's deadline passes. */
  lastError: TensorcastError | undefined;
  queued: Waiter[];
  scheduled: boolean;
  handshakes: number;
  inFlight: number;
  maxInFlight: number;
}

const rankKey = (tpRank: number, dpRank: number): string => `${tpRank}/${dpRank}`;

/**
 * Runs and caches handshakes for one client.
 *
 * @example const meta = await scheduler.get('prefill-0', { tpRank: 0, dpRank: 0, timeoutMs: 5000 });
 */
export class HandshakeScheduler {
  private readonly slots = new Map<string, Slot>();
  private readonly sleeps = new Set<{ readonly resolve: () => void }>();
  private closed = false;
  private counters = { handshakesStarted: 0, rankRequests: 0, retries: 0, failures: 0, cacheHits: 0, parked: 0 };

  constructor(private readonly options: SchedulerOptions) {}

  /** One rank's metadata: from the cache, or from the engine's current or next handshake. */
  get(engineId: string, request: RankRequest): Promise<RankMetadata> {
    if (this.closed) return Promise.reject(tcError('TC_ERR_ABORTED', 'the handshake client is closed'));
    const slot = this.slot(engineId);
    if (request.incarnation !== undefined && slot.incarnation !== undefined && slot.incarnation !== request.incarnation) this.drop(slot);
    const key = rankKey(request.tpRank, request.dpRank);
    if (request.force !== true) {
      const hit = this.lookup(slot, key, request.expectHash);
      if (hit !== undefined) {
        this.counters.cacheHits++;
        return Promise.resolve(hit);
      }
    }
    this.counters.parked++;
    return new Promise<RankMetadata>((resolve, reject) => {
      const { signal } = request;
      const onAbort = (): void =>
        waiter.settle(tcError('TC_ERR_ABORTED', `get(${engineId}, ${key}) aborted by the caller`, { cause: signal?.reason }));
      const timer = setTimeout(() => {
        const last = slot.lastError;
        const message = `no handshake with engine '${engineId}' answered rank ${key} within ${request.timeoutMs} ms`;
        waiter.settle(
          tcError('TC_ERR_TIMEOUT', last === undefined ? message : `${message} (last error ${last.code}: ${last.message})`, {
            ...(last === undefined ? {} : { cause: last }),
            details: { engineId, timeoutMs: request.timeoutMs, ...(last === undefined ? {} : { lastCode: last.code }) },
          }),
        );
      }, request.timeoutMs);
      const waiter: Waiter = {
        key,
        group: `${request.expectHash ?? ''}|${request.incarnation ?? ''}`,
        request,
        settled: false,
        settle: (result) => {
          if (waiter.settled) return;
          waiter.settled = true;
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          if (result instanceof Error) reject(result);
          else resolve(result);
        },
      };
      if (signal?.aborted === true) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      const flight = slot.flight;
      if (flight !== undefined && flight.group === waiter.group && flight.generation === slot.generation && flight.remaining.has(key)) {
        flight.waiters.push(waiter);
      } else {
        slot.queued.push(waiter);
        this.schedule(engineId, slot);
      }
    });
  }

  /** Drops the cache of `engineId` (every engine when omitted); the next get() handshakes again. */
  invalidate(engineId?: string): void {
    if (engineId === undefined) for (const slot of this.slots.values()) this.drop(slot);
    else {
      const slot = this.slots.get(engineId);
      if (slot !== undefined) this.drop(slot);
    }
  }

  /** The counters so far. */
  stats(): HandshakeStats {
    const engines: Record<string, EngineHandshakeStats> = {};
    let maxInFlightPerEngine = 0;
    for (const [id, s] of this.slots) {
      engines[id] = { handshakes: s.handshakes, inFlight: s.inFlight, maxInFlight: s.maxInFlight };
      maxInFlightPerEngine = Math.max(maxInFlightPerEngine, s.maxInFlight);
    }
    return { ...this.counters, maxInFlightPerEngine, engines };
  }

  /** Rejects every waiting caller (TC_ERR_ABORTED) and stops the handshakes in flight. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const closed = tcError('TC_ERR_ABORTED', 'the handshake client was closed');
    for (const s of [...this.sleeps]) s.resolve();
    for (const slot of this.slots.values()) {
      for (const w of slot.queued) w.settle(closed);
      for (const w of slot.flight?.waiters ?? []) w.settle(closed);
    }
  }

  private slot(engineId: string): Slot {
    let slot = this.slots.get(engineId);
    if (slot === undefined) {
      slot = {
        cache: new Map(),
        incarnation: undefined,
        generation: 0,
        flight: undefined,
        lastError: undefined,
        queued: [],
        scheduled: false,
        handshakes: 0,
        inFlight: 0,
        maxInFlight: 0,
      };
      this.slots.set(engineId, slot);
    }
    return slot;
  }

  private drop(slot: Slot): void {
    slot.cache.clear();
    slot.incarnation = undefined;
    slot.generation++;
  }

  private lookup(slot: Slot, key: string, expectHash: string | undefined): RankMetadata | undefined {
    const entry = slot.cache.get(key);
    if (entry === undefined) return undefined;
    const { maxAgeMs } = this.options;
    if (maxAgeMs !== undefined && Date.now() - entry.fetchedAtMs > maxAgeMs) {
      slot.cache.delete(key);
      return undefined;
    }
    if (expectHash !== undefined && entry.meta.compatibilityHash !== expectHash) {
      // The engine may have restarted with another configuration: ask the listener, which decides.
      this.drop(slot);
      return undefined;
    }
    return entry.meta;
  }

  /** Starts the next handshake of `slot` on a microtask, so callers of one tick share it. */
  private schedule(engineId: string, slot: Slot): void {
    if (slot.flight !== undefined || slot.scheduled || this.closed) return;
    slot.scheduled = true;
    queueMicrotask(() => {
      slot.scheduled = false;
      this.startNext(engineId, slot);
    });
  }

  private startNext(engineId: string, slot: Slot): void {
    if (slot.flight !== undefined || this.closed) return;
    // The handshake that just ended may have fetched what parked callers want.
    for (const w of slot.queued) {
      if (w.settled || w.request.force === true) continue;
      const hit = this.lookup(slot, w.key, w.request.expectHash);
      if (hit !== undefined) w.settle(hit);
    }
    slot.queued = slot.queued.filter((w) => !w.settled);
    const first = slot.queued[0];
    if (first === undefined) return;
    const taking = slot.queued.filter((w) => w.group === first.group);
    slot.queued = slot.queued.filter((w) => w.group !== first.group);
    const flight: Flight = {
      group: first.group,
      expectHash: first.request.expectHash,
      incarnation: first.request.incarnation,
      generation: slot.generation,
      remaining: new Map(taking.map((w) => [w.key, { tpRank: w.request.tpRank, dpRank: w.request.dpRank }])),
      waiters: taking,
    };
    slot.flight = flight;
    slot.handshakes++;
    slot.inFlight++;
    slot.maxInFlight = Math.max(slot.maxInFlight, slot.inFlight);
    this.counters.handshakesStarted++;
    void this.run(engineId, slot, flight).finally(() => {
      slot.inFlight--;
      slot.flight = undefined;
      if (slot.queued.length > 0) this.schedule(engineId, slot);
    });
  }

  /** One handshake: every remaining rank in parallel, attempt after attempt, until done, failed or out of time. */
  private async run(engineId: string, slot: Slot, flight: Flight): Promise<void> {
    const { http, timeoutMs, failurePolicy, retry } = this.options;
    // The deadline is kept by undici's request timers and by checks between attempts: an AbortSignal per
    // handshake costs more than the rest of the client's work on a 64 KiB answer.
    const deadline = Date.now() + timeoutMs;
    const outOfTime = (): TensorcastError =>
      tcError('TC_ERR_TIMEOUT', `the handshake with engine '${engineId}' did not complete in ${timeoutMs} ms`);
    let lastError: TensorcastError | undefined;
    let failed = false;
    const finish = (key: string, result: RankMetadata | TensorcastError): void => {
      flight.remaining.delete(key);
      if (result instanceof Error) failed = true;
      for (const w of flight.waiters) if (w.key === key) w.settle(result);
    };
    try {
      for (let attempt = 1; flight.remaining.size > 0; attempt++) {
        if (attempt > 1) {
          const delay = backoffMs(retry, attempt);
          if (Date.now() + delay >= deadline) throw outOfTime();
          this.counters.retries++;
          await this.sleep(delay);
        }
        if (this.closed) throw tcError('TC_ERR_ABORTED', 'the handshake client was closed');
        const left = deadline - Date.now();
        if (left <= 0) throw outOfTime();
        const asked = [...flight.remaining];
        this.counters.rankRequests += asked.length;
        const results = await Promise.allSettled(
          asked.map(([, r]) => http.rank(engineId, r.tpRank, r.dpRank, flight.expectHash, { timeoutMs: left })),
        );
        if (this.closed) throw tcError('TC_ERR_ABORTED', 'the handshake client was closed');
        const answers = new Map<string, RankAnswer>();
        const errors = new Map<string, TensorcastError>();
        results.forEach((r, i) => {
          const key = asked[i]![0];
          if (r.status === 'fulfilled') answers.set(key, r.value);
          else errors.set(key, asTensorcastError(r.reason));
        });
        const incarnations = new Set([...answers.values()].map((a) => a.meta.incarnation));
        if (incarnations.size > 1) {
          // The engine restarted between two of these GETs: ask again for every rank of this attempt.
          const conflict = tcError('TC_ERR_CONFLICT', `engine '${engineId}' answered with ${incarnations.size} incarnations at once`);
          for (const key of answers.keys()) errors.set(key, conflict);
          answers.clear();
        }
        for (const [key, answer] of answers) {
          const wanted = flight.incarnation;
          if (wanted !== undefined && answer.meta.incarnation !== wanted) {
            errors.set(
              key,
              tcError('TC_ERR_NOT_FOUND', `engine '${engineId}' is at incarnation '${answer.meta.incarnation}', not '${wanted}' (yet)`, {
                details: { engineId, wanted, published: answer.meta.incarnation },
              }),
            );
            continue;
          }
          this.store(slot, flight, key, answer.meta);
          slot.lastError = undefined;
          finish(key, answer.meta);
        }
        for (const [key, error] of errors) {
          // A request cut by the handshake's deadline ends the handshake, naming the error before it.
          if (error.code === 'TC_ERR_TIMEOUT' && Date.now() >= deadline - 1) throw outOfTime();
          lastError = error;
          slot.lastError = error;
          const again =
            failurePolicy === 'retry' && (isRetryable(error) || error.code === 'TC_ERR_CONFLICT') && attempt < retry.maxAttempts;
          if (!again) finish(key, error);
        }
      }
    } catch (error) {
      const reason = asTensorcastError(error);
      const err =
        lastError === undefined || reason.code !== 'TC_ERR_TIMEOUT'
          ? reason
          : tcError('TC_ERR_TIMEOUT', `${reason.message} (last error ${lastError.code}: ${lastError.message})`, {
              cause: lastError,
              details: { engineId, timeoutMs, lastCode: lastError.code },
            });
      for (const key of [...flight.remaining.keys()]) finish(key, err);
    } finally {
      if (failed) this.counters.failures++;
    }
  }

  /** A backoff delay that close() cuts short. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const entry = { timer: setTimeout(() => done(), ms), resolve: () => done() };
      const done = (): void => {
        clearTimeout(entry.timer);
        this.sleeps.delete(entry);
        resolve();
      };
      this.sleeps.add(entry);
    });
  }

  private store(slot: Slot, flight: Flight, key: string, meta: RankMetadata): void {
    if (slot.generation !== flight.generation) return;
    if (slot.incarnation !== meta.incarnation) {
      // A new incarnation: the engine restarted, and every rank cached of the old one is stale.
      slot.cache.clear();
      slot.incarnation = meta.incarnation;
    }
    slot.cache.set(key, { meta, fetchedAtMs: Date.now() });
  }
}

function asTensorcastError(error: unknown): TensorcastError {
  if (isTensorcastError(error)) return error;
  return tcError('TC_ERR_INTERNAL', `handshake failed: ${(error as Error | undefined)?.message ?? String(error)}`, { cause: error });
}
