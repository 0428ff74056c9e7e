// The publisher side: PUT one rank's payload (headers taken from the payload itself), and keep it alive
// by renewing the engine's incarnation every `renewEveryMs`, publishing it again when the listener no
// longer has it (404/410: it expired, or a memory listener restarted) until stop().

import { isTensorcastError, tcError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import {
  COMPAT_HASH_HEADER,
  INCARNATION_HEADER,
  MSGPACK_TYPE,
  enginePath,
  rankPath,
  renewPath,
  type EngineSummary,
  type PublishAnswer,
  type RenewAnswer,
} from '../../protocol/http/handshake.js';
import { decodeRankMetadata, encodeRankMetadata, type RankMetadata } from '../rank-metadata.js';
import type { HandshakeHttp } from './handshake-http.js';

/** A rank payload ready to PUT: its metadata and its exact bytes. */
export interface EncodedRank {
  readonly meta: RankMetadata;
  readonly payload: Uint8Array;
}

/**
 * `meta` encoded, or raw payload bytes (e.g. written by a Python engine) decoded to validate them and to
 * learn the headers; the bytes are then sent unchanged.
 *
 * @throws TC_ERR_MALFORMED for a payload or metadata that breaks the schema
 */
export function encodedRank(source: RankMetadata | Uint8Array, maxBytes?: number): EncodedRank {
  if (source instanceof Uint8Array) return { meta: decodeRankMetadata(source, maxBytes), payload: source };
  return { meta: source, payload: encodeRankMetadata(source) };
}

/** PUTs one rank. */
export async function putRank(http: HandshakeHttp, rank: EncodedRank, timeoutMs: number): Promise<PublishAnswer> {
  const { meta, payload } = rank;
  const res = await http.send('PUT', rankPath(meta.engineId, meta.tpRank, meta.dpRank), {
    deadline: { timeoutMs },
    headers: { 'content-type': MSGPACK_TYPE, [COMPAT_HASH_HEADER]: meta.compatibilityHash, [INCARNATION_HEADER]: meta.incarnation },
    body: payload,
  });
  return (await res.body.json()) as PublishAnswer;
}

/** Options of {@link HandshakePublisher}. */
export interface PublisherOptions {
  /** How often to renew (default: a third of the TTL the first publish reveals, at least 100 ms). */
  readonly renewEveryMs?: number;
  /** Where keep-alive failures are logged (they never stop the publisher; the next round tries again). */
  readonly log?: Logger;
}

/** What a publisher did so far. */
export interface PublisherStats {
  readonly publishes: number;
  readonly renewals: number;
  /** Publishes after the first: the listener had lost the rank. */
  readonly republishes: number;
  readonly errors: number;
  /** The renewal period in use (ms). */
  readonly renewEveryMs: number;
}

/**
 * Keeps one rank published until stop(). Created by `handshakes(...).publisher(meta)`, which resolves
 * once the first publish succeeded.
 */
export class HandshakePublisher {
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> = Promise.resolve();
  private stopped = false;
  private counts = { publishes: 0, renewals: 0, republishes: 0, errors: 0 };
  private renewEveryMs = 0;

  /** @internal use `HandshakeClient.publisher()` */
  constructor(
    private readonly http: HandshakeHttp,
    private readonly rank: EncodedRank,
    private readonly timeoutMs: number,
    private readonly options: PublisherOptions,
  ) {}

  /** The rank this publisher keeps alive. */
  get meta(): RankMetadata {
    return this.rank.meta;
  }

  /** @internal publishes once and starts the renewals. */
  async start(): Promise<PublishAnswer> {
    const answer = await putRank(this.http, this.rank, this.timeoutMs);
    this.counts.publishes++;
    // The TTL as the listener states it: expiresAtMs is on the store's clock, which may be minutes off ours
    // (a guess from it renewed too seldom, and the rank expired between renewals). An older listener
    // states none: guess from the clocks then.
    const ttlMs = typeof answer.ttlMs === 'number' && answer.ttlMs > 0 ? answer.ttlMs : answer.expiresAtMs - Date.now();
    const every = this.options.renewEveryMs ?? (ttlMs > 0 ? Math.max(100, Math.floor(ttlMs / 3)) : 20_000);
    this.renewEveryMs = every;
    this.timer = setInterval(() => {
      // One round at a time: a slow listener does not pile up renewals.
      this.round = this.round.then(() => this.tick());
    }, every);
    this.timer.unref();
    return answer;
  }

  /** Counters so far. */
  stats(): PublisherStats {
    return { ...this.counts, renewEveryMs: this.renewEveryMs };
  }

  /**
   * Stops renewing; with `remove`, also deletes the engine's ranks of this incarnation from the listener
   * (every rank of it, not only this one).
   */
  async stop(options: { remove?: boolean } = {}): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.round;
    if (options.remove === true) {
      await this.http.send('DELETE', enginePath(this.rank.meta.engineId), {
        deadline: { timeoutMs: this.timeoutMs },
        headers: { [INCARNATION_HEADER]: this.rank.meta.incarnation },
      });
    }
  }

  /** True when the listener's summary of the engine lists this rank of this incarnation. */
  private async listed(): Promise<boolean> {
    const { engineId, incarnation, tpRank, dpRank } = this.rank.meta;
    try {
      const summary = await this.http.json<EngineSummary>('GET', enginePath(engineId), { timeoutMs: this.timeoutMs });
      return summary.incarnation === incarnation && summary.ranks.some((r) => r.tpRank === tpRank && r.dpRank === dpRank);
    } catch (error) {
      if (isTensorcastError(error, 'TC_ERR_NOT_FOUND')) return false;
      throw error;
    }
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    const { engineId, incarnation } = this.rank.meta;
    try {
      let lost = false;
      try {
        const renewed = await this.http.json<RenewAnswer>(
          'POST',
          renewPath(engineId),
          { timeoutMs: this.timeoutMs },
          {
            incarnation,
          },
        );
        this.counts.renewals++;
        lost = renewed.renewed === 0;
      } catch (error) {
        if (!isTensorcastError(error) || (error.code !== 'TC_ERR_NOT_FOUND' && error.code !== 'TC_ERR_EXPIRED')) throw error;
        lost = true;
      }
      // Renewal covers every rank of the incarnation, so it succeeds while this rank alone is gone (a memory
      // listener restarted and another rank's publisher was first to publish again): look for it.
      if (!lost) lost = !(await this.listed());
      if (lost && !this.stopped) {
        await putRank(this.http, this.rank, this.timeoutMs);
        this.counts.publishes++;
        this.counts.republishes++;
      }
    } catch (error) {
      this.counts.errors++;
      this.options.log?.warn({ engineId, error: (error as Error).message }, 'handshake keep-alive failed; trying again next round');
    }
  }
}

/** @throws TC_ERR_INVALID_ARGUMENT unless `ms` is a positive finite number */
export function positiveMs(name: string, ms: number): number {
  if (!(ms > 0) || !Number.isFinite(ms)) throw tcError('TC_ERR_INVALID_ARGUMENT', `${name} must be a positive number of ms, not ${ms}`);
  return ms;
}
