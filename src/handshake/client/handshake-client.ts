// The handshake SDK: `handshakes(options)` gives a client of one handshake listener. Readers call get()
// (background handshakes, cached per remote engine, see handshake-scheduler.ts); publishers call
// publish() once or publisher() to stay published.

import { tcError } from '../../core/errors.js';
import {
  HANDSHAKE_ENGINES_PATH,
  HANDSHAKE_ID_PATTERN,
  MAX_HANDSHAKE_RANK,
  enginePath,
  type EngineList,
  type EngineSummary,
  type PublishAnswer,
} from '../../protocol/http/handshake.js';
import type { RankMetadata } from '../rank-metadata.js';
import { HandshakeHttp, type HandshakeClientTlsOptions, type RankAnswer } from './handshake-http.js';
import { HandshakePublisher, encodedRank, positiveMs, putRank, type PublisherOptions } from './handshake-publisher.js';
import { HandshakeScheduler, type HandshakeStats } from './handshake-scheduler.js';
import { resolveRetry, type FailurePolicy, type RetryOptions } from './retry-policy.js';

/** Options of {@link handshakes}. */
export interface HandshakesOptions {
  /** The listener, `http://host:port` or `https://host:port`. */
  readonly url: string;
  /** Bearer token of the listener. */
  readonly token?: string;
  /** CA of the listener's certificate; client certificate and key for mTLS. */
  readonly tls?: HandshakeClientTlsOptions;
  /** Deadline of one handshake, retries included, and of one get() call (default 5000 ms). */
  readonly timeoutMs?: number;
  /** 'retry' (default): retryable errors are retried with backoff; 'fail': the first error is final. */
  readonly failurePolicy?: FailurePolicy;
  readonly retry?: RetryOptions;
  /** The compatibility hash readers expect (overridable per call): a peer with another one is refused undecoded. */
  readonly expectHash?: string;
  /** Cached ranks older than this are fetched again (default: kept until invalidated). */
  readonly maxAgeMs?: number;
  /** Largest answer accepted, in bytes (default 4 MiB + 64 KiB). */
  readonly maxAnswerBytes?: number;
}

/** Options of {@link HandshakeClient.get}. */
export interface HandshakeGetOptions {
  readonly tpRank: number;
  readonly dpRank: number;
  /** Overrides the client's expectHash for this call. */
  readonly expectHash?: string;
  /**
   * The incarnation the caller knows the engine runs (e.g. from a transfer request): a cache of another
   * one is dropped, and a listener still serving another one is asked again until the deadline.
   */
  readonly incarnation?: string;
  /** Overrides the client's timeoutMs for this call's wait. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** One rank, for {@link HandshakeClient.handshake}. */
export interface RankRef {
  readonly tpRank: number;
  readonly dpRank: number;
}

/**
 * A client of one handshake listener.
 *
 * @example
 * const hs = handshakes({ url: 'http://10.0.0.5:7072', token, expectHash: 'vllm-0.9-llama3-bf16' });
 * const meta = await hs.get('prefill-0', { tpRank: 1, dpRank: 0 });
 * await hs.close();
 */
export class HandshakeClient {
  private readonly http: HandshakeHttp;
  private readonly scheduler: HandshakeScheduler;
  private readonly publishers = new Set<HandshakePublisher>();
  private readonly timeoutMs: number;

  /** @throws TC_ERR_INVALID_ARGUMENT for a bad url, timeout, retry option or hash */
  constructor(private readonly options: HandshakesOptions) {
    this.timeoutMs = positiveMs('timeoutMs', options.timeoutMs ?? 5000);
    if (options.maxAgeMs !== undefined) positiveMs('maxAgeMs', options.maxAgeMs);
    if (options.expectHash !== undefined) checkId('expectHash', options.expectHash);
    const policy = options.failurePolicy ?? 'retry';
    if (policy !== 'retry' && policy !== 'fail') {
      throw tcError('TC_ERR_INVALID_ARGUMENT', `failurePolicy must be 'retry' or 'fail', not '${String(policy)}'`);
    }
    this.http = new HandshakeHttp({
      url: options.url,
      ...(options.token === undefined ? {} : { token: options.token }),
      ...(options.tls === undefined ? {} : { tls: options.tls }),
      ...(options.maxAnswerBytes === undefined ? {} : { maxAnswerBytes: options.maxAnswerBytes }),
    });
    this.scheduler = new HandshakeScheduler({
      http: this.http,
      timeoutMs: this.timeoutMs,
      failurePolicy: policy,
      retry: resolveRetry(options.retry),
      ...(options.maxAgeMs === undefined ? {} : { maxAgeMs: options.maxAgeMs }),
    });
  }

  /** The listener's base URL. */
  get url(): string {
    return this.http.url;
  }

  /**
   * One rank's metadata: from the cache without I/O, else from a background handshake with the engine
   * (shared with concurrent callers; at most one in flight per engine).
   *
   * @throws TC_ERR_INCOMPATIBLE (details expected, actual: the payload was not decoded); TC_ERR_NOT_FOUND /
   * TC_ERR_EXPIRED (after retries); TC_ERR_TIMEOUT; TC_ERR_AUTH; TC_ERR_MALFORMED; TC_ERR_UNAVAILABLE;
   * TC_ERR_ABORTED (signal, close); TC_ERR_INVALID_ARGUMENT
   * @example const meta = await hs.get('prefill-0', { tpRank: 0, dpRank: 0 });
   */
  get(engineId: string, options: HandshakeGetOptions): Promise<RankMetadata> {
    return this.fetch(engineId, options, false);
  }

  /**
   * An explicit handshake: fetches the given ranks afresh (one handshake, ranks in parallel), refreshing
   * the cache; resolves with them in the order given.
   *
   * @throws as get()
   */
  handshake(
    engineId: string,
    ranks: readonly RankRef[],
    options: { expectHash?: string; signal?: AbortSignal } = {},
  ): Promise<RankMetadata[]> {
    return Promise.all(ranks.map((r) => this.fetch(engineId, { ...options, tpRank: r.tpRank, dpRank: r.dpRank }, true)));
  }

  /**
   * One rank in one GET, bypassing the cache and the failure policy: the decoded metadata and the payload
   * bytes exactly as published (for tools that store or forward them).
   *
   * @throws TC_ERR_INCOMPATIBLE (checked before decoding), TC_ERR_NOT_FOUND, TC_ERR_EXPIRED, and as get()
   */
  fetchRank(engineId: string, options: { tpRank: number; dpRank: number; expectHash?: string }): Promise<RankAnswer> {
    checkId('engine id', engineId);
    checkRank('tpRank', options.tpRank);
    checkRank('dpRank', options.dpRank);
    const expectHash = options.expectHash ?? this.options.expectHash;
    if (expectHash !== undefined) checkId('expectHash', expectHash);
    return this.http.rank(engineId, options.tpRank, options.dpRank, expectHash, { timeoutMs: this.timeoutMs });
  }

  /**
   * The listener's summary of one engine (live ranks, sizes, expiry).
   *
   * @throws TC_ERR_NOT_FOUND when it has no live rank
   */
  engine(engineId: string): Promise<EngineSummary> {
    checkId('engine id', engineId);
    return this.http.json<EngineSummary>('GET', enginePath(engineId), { timeoutMs: this.timeoutMs });
  }

  /** Every engine with live ranks, ordered by engine id. */
  async engines(): Promise<EngineSummary[]> {
    const list = await this.http.json<EngineList>('GET', HANDSHAKE_ENGINES_PATH, { timeoutMs: this.timeoutMs });
    return [...list.engines];
  }

  /** Drops the cached ranks of `engineId` (of every engine when omitted): the next get() handshakes again. */
  invalidate(engineId?: string): void {
    this.scheduler.invalidate(engineId);
  }

  /** Counters: handshakes started, in flight per engine now and at most, retries, failures, cache hits. */
  stats(): HandshakeStats {
    return this.scheduler.stats();
  }

  /**
   * Publishes one rank (PUT; the headers come from the payload). `meta` is encoded; raw payload bytes are
   * validated and sent unchanged.
   *
   * @throws TC_ERR_MALFORMED; TC_ERR_INCOMPATIBLE (the live incarnation has another hash); TC_ERR_TOO_LARGE; TC_ERR_AUTH
   */
  publish(meta: RankMetadata | Uint8Array): Promise<PublishAnswer> {
    return putRank(this.http, encodedRank(meta), this.timeoutMs);
  }

  /**
   * Publishes one rank and keeps it published (renewals; published again when the listener lost it) until
   * the returned publisher's stop().
   *
   * @example const p = await hs.publisher(meta); ... await p.stop({ remove: true });
   */
  async publisher(meta: RankMetadata | Uint8Array, options: PublisherOptions = {}): Promise<HandshakePublisher> {
    if (options.renewEveryMs !== undefined) positiveMs('renewEveryMs', options.renewEveryMs);
    const publisher = new HandshakePublisher(this.http, encodedRank(meta), this.timeoutMs, options);
    await publisher.start();
    this.publishers.add(publisher);
    return publisher;
  }

  /** Stops publishers (without removing their ranks), rejects waiting callers, closes the connections. */
  async close(): Promise<void> {
    this.scheduler.close();
    await Promise.all([...this.publishers].map((p) => p.stop()));
    // Handshakes still in flight have no caller left: their requests are cut rather than waited for.
    await this.http.destroy();
  }

  // async: a bad argument rejects like any other failure; everything up to scheduler.get() runs in the
  // caller's tick, so callers of one tick share one handshake.
  private async fetch(engineId: string, options: HandshakeGetOptions, force: boolean): Promise<RankMetadata> {
    checkId('engine id', engineId);
    checkRank('tpRank', options.tpRank);
    checkRank('dpRank', options.dpRank);
    const expectHash = options.expectHash ?? this.options.expectHash;
    if (expectHash !== undefined) checkId('expectHash', expectHash);
    if (options.incarnation !== undefined) checkId('incarnation', options.incarnation);
    const timeoutMs = options.timeoutMs === undefined ? this.timeoutMs : positiveMs('timeoutMs', options.timeoutMs);
    return this.scheduler.get(engineId, {
      tpRank: options.tpRank,
      dpRank: options.dpRank,
      timeoutMs,
      force,
      ...(expectHash === undefined ? {} : { expectHash }),
      ...(options.incarnation === undefined ? {} : { incarnation: options.incarnation }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
  }
}

/**
 * A client of the handshake listener at `options.url`.
 *
 * @throws TC_ERR_INVALID_ARGUMENT for bad options
 * @example const hs = handshakes({ url: 'http://127.0.0.1:7072', token: process.env.TOKEN });
 */
export function handshakes(options: HandshakesOptions): HandshakeClient {
  return new HandshakeClient(options);
}

function checkId(what: string, value: string): void {
  if (typeof value !== 'string' || !HANDSHAKE_ID_PATTERN.test(value)) {
    throw tcError('TC_ERR_INVALID_ARGUMENT', `${what} '${String(value).slice(0, 64)}' must be 1..128 characters of [A-Za-z0-9._:@+-]`);
  }
}

function checkRank(what: string, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value >= MAX_HANDSHAKE_RANK) {
    throw tcError('TC_ERR_INVALID_ARGUMENT', `${what} must be an integer in 0..${MAX_HANDSHAKE_RANK - 1}, not ${String(value)}`);
  }
}
