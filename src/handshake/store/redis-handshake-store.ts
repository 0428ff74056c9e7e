// The Redis handshake store, on node-redis: published ranks under `<prefix>handshake:` of a catalog URL, every
// publish, renew and remove one Lua script (redis-handshake-scripts.ts) timed by the server's clock, so any
// number of listeners share the state and a restarted listener loses nothing. Payloads travel as Buffers.

import { RESP_TYPES } from 'redis';
import { tcError } from '../../core/errors.js';
import { DEFAULT_CALL_TIMEOUT_MS } from '../../catalog/catalog-options.js';
import { closeRedisConnection, openRedisConnection, redisCall, type RedisConnectionClient } from '../../catalog/redis/redis-connection.js';
import { parseRedisCatalogUrl, type RedisCatalogUrl } from '../../catalog/redis/redis-url.js';
import type { EngineSummary } from '../../protocol/http/handshake.js';
import {
  DEFAULT_EXPIRED_GRACE_MS,
  type EngineHead,
  type HandshakeStore,
  type PublishLimits,
  type PublishRecord,
  type PublishResult,
  type RankLookup,
} from './handshake-store.js';
import { HANDSHAKE_SCRIPTS } from './redis-handshake-scripts.js';
import type { OpenHandshakeStoreOptions } from './open-handshake-store.js';
import { checkPublishLimits, checkRecordRanks, engineTooLarge, incompatiblePublish, rankKey } from './store-rules.js';
import { summarizeRows, type RankRow } from './rank-rows.js';

type StoreClient = RedisConnectionClient<typeof HANDSHAKE_SCRIPTS>;
const bufferClient = (client: StoreClient, timeoutMs: number) =>
  client.withCommandOptions({ typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer }, timeout: timeoutMs });
type BufferClient = ReturnType<typeof bufferClient>;

const text = (v: unknown): string => (typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString('utf8') : String(v));
const list = (reply: unknown): unknown[] => (Array.isArray(reply) ? (reply as unknown[]) : []);

/** Key names under the catalog prefix. */
class HandshakeKeys {
  readonly engines: string;
  readonly ranksPrefix: string;
  readonly rankPrefix: string;
  constructor(prefix: string) {
    this.engines = `${prefix}handshake:engines`;
    this.ranksPrefix = `${prefix}handshake:ranks:`;
    this.rankPrefix = `${prefix}handshake:rank:`;
  }
  ranks(engineId: string): string {
    return this.ranksPrefix + engineId;
  }
  /** The prefix of an engine's rank keys (a member `tp/dp` completes it). */
  rankKeyPrefix(engineId: string): string {
    return `${this.rankPrefix}${engineId}:`;
  }
  rank(engineId: string, tpRank: number, dpRank: number): string {
    return this.rankKeyPrefix(engineId) + rankKey(tpRank, dpRank);
  }
}

/** Reads rows of 7 (member, incarnation, hash, tpSize, bytes, publishedAt, expiresAt) from `flat` at `at`. */
function readRows(flat: readonly unknown[], at: number, count: number): RankRow[] {
  const rows: RankRow[] = [];
  for (let i = 0; i < count; i++) {
    const o = at + i * 7;
    const [tp, dp] = text(flat[o]).split('/');
    rows.push({
      tpRank: Number(tp),
      dpRank: Number(dp),
      incarnation: text(flat[o + 1]),
      compatibilityHash: text(flat[o + 2]),
      tpSize: Number(text(flat[o + 3])),
      bytes: Number(text(flat[o + 4])),
      publishedAtMs: Number(text(flat[o + 5])),
      expiresAtMs: Number(text(flat[o + 6])),
    });
  }
  return rows;
}

/**
 * Published ranks in Redis (standalone server, the catalog URL's database and prefix).
 *
 * @example const store = await RedisHandshakeStore.open('redis://10.0.0.5:6379/0?prefix=prod:tc:');
 */
export class RedisHandshakeStore implements HandshakeStore {
  readonly kind = 'redis';
  #closed = false;
  readonly #bytes: BufferClient;
  readonly #callTimeoutMs: number;

  private constructor(
    private readonly client: StoreClient,
    private readonly url: RedisCatalogUrl,
    private readonly k: HandshakeKeys,
    private readonly graceMs: number,
    callTimeoutMs: number,
  ) {
    this.#bytes = bufferClient(client, callTimeoutMs);
    this.#callTimeoutMs = callTimeoutMs;
  }

  /**
   * Connects to the server of `url`. The first connection must succeed within the call timeout; later, a
   * lost connection is re-established in the background (calls meanwhile fail fast with TC_ERR_BACKEND).
   *
   * @throws TC_ERR_CONFIG for a bad URL; TC_ERR_BACKEND when the server cannot be reached.
   */
  static async open(url: string, options: OpenHandshakeStoreOptions = {}): Promise<RedisHandshakeStore> {
    const parsed = parseRedisCatalogUrl(url);
    const callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    const client = await openRedisConnection({
      url: parsed,
      callTimeoutMs,
      scripts: HANDSHAKE_SCRIPTS,
      names: { field: 'catalog', what: 'handshake store', log: () => options.log },
    });
    return new RedisHandshakeStore(
      client,
      parsed,
      new HandshakeKeys(parsed.prefix),
      options.expiredGraceMs ?? DEFAULT_EXPIRED_GRACE_MS,
      callTimeoutMs,
    );
  }

  async head(engineId: string): Promise<EngineHead | undefined> {
    const summary = await this.engine(engineId);
    return summary === undefined ? undefined : { incarnation: summary.incarnation, compatibilityHash: summary.compatibilityHash };
  }

  async publish(record: PublishRecord, limits: PublishLimits): Promise<PublishResult> {
    checkPublishLimits(limits);
    checkRecordRanks(record);
    const k = this.k;
    const reply = list(
      await this.#call('publish', (c) =>
        c.publishRank(
          k.engines,
          k.ranks(record.engineId),
          k.rank(record.engineId, record.tpRank, record.dpRank),
          record.engineId,
          k.rankKeyPrefix(record.engineId),
          rankKey(record.tpRank, record.dpRank),
          record.incarnation,
          record.compatibilityHash,
          String(record.tpSize),
          Buffer.from(record.payload.buffer, record.payload.byteOffset, record.payload.byteLength),
          String(limits.ttlMs),
          String(this.graceMs),
          String(limits.maxEngineBytes),
        ),
      ),
    );
    const outcome = text(reply[0]);
    if (outcome === 'incompatible') throw incompatiblePublish(record, text(reply[1]));
    if (outcome === 'too_large') throw engineTooLarge(record, Number(reply[1]), limits.maxEngineBytes);
    const replaced = text(reply[2]);
    return { expiresAtMs: Number(reply[1]), replacedIncarnation: replaced === '' ? null : replaced };
  }

  async rank(engineId: string, tpRank: number, dpRank: number): Promise<RankLookup> {
    const reply = list(await this.#call('rank', (c) => c.getRank(this.k.rank(engineId, tpRank, dpRank), String(this.graceMs))));
    const state = text(reply[0]);
    if (state === 'expired') return { state: 'expired', incarnation: text(reply[1]), expiredAtMs: Number(text(reply[2])) };
    if (state !== 'live') return { state: 'missing' };
    const payload = reply[6];
    return {
      state: 'live',
      rank: {
        incarnation: text(reply[1]),
        compatibilityHash: text(reply[2]),
        tpSize: Number(text(reply[3])),
        payload: Buffer.isBuffer(payload) ? payload : Buffer.alloc(0),
        publishedAtMs: Number(text(reply[4])),
        expiresAtMs: Number(text(reply[5])),
      },
    };
  }

  async renew(engineId: string, incarnation: string, ttlMs: number): Promise<{ renewed: number; expiresAtMs: number }> {
    checkPublishLimits({ ttlMs, maxEngineBytes: 0 });
    const reply = list(
      await this.#call('renew', (c) =>
        c.renewRanks(this.k.ranks(engineId), this.k.rankKeyPrefix(engineId), incarnation, String(ttlMs), String(this.graceMs)),
      ),
    );
    const renewed = Number(reply[0]);
    return { renewed, expiresAtMs: renewed === 0 ? 0 : Number(reply[1]) };
  }

  async remove(engineId: string, incarnation?: string): Promise<number> {
    const k = this.k;
    return Number(
      await this.#call('remove', (c) =>
        c.removeRanks(k.engines, k.ranks(engineId), engineId, k.rankKeyPrefix(engineId), incarnation ?? '', String(this.graceMs)),
      ),
    );
  }

  async engine(engineId: string): Promise<EngineSummary | undefined> {
    const flat = list(await this.#call('engine', (c) => c.engineRanks(this.k.ranks(engineId), this.k.rankKeyPrefix(engineId))));
    const now = Number(flat[0]);
    return summarizeRows(engineId, readRows(flat, 1, (flat.length - 1) / 7), now);
  }

  async engines(): Promise<EngineSummary[]> {
    const flat = list(await this.#call('engines', (c) => c.allEngineRanks(this.k.engines, this.k.ranksPrefix, this.k.rankPrefix)));
    const now = Number(flat[0]);
    const out: EngineSummary[] = [];
    let at = 1;
    while (at < flat.length) {
      const engineId = text(flat[at]);
      const count = Number(flat[at + 1]);
      const summary = summarizeRows(engineId, readRows(flat, at + 2, count), now);
      if (summary !== undefined) out.push(summary);
      at += 2 + count * 7;
    }
    return out;
  }

  async sweep(): Promise<void> {
    await this.#call('sweep', (c) => c.sweepEngines(this.k.engines, this.k.ranksPrefix, this.k.rankPrefix, String(this.graceMs)));
  }

  /** Closes the connection; calls in flight finish first when the server answers within the call timeout. */
  async close(): Promise<void> {
    this.#closed = true;
    await closeRedisConnection(this.client, this.#callTimeoutMs);
  }

  /** Runs one call on the Buffer-typed client (bounded by the call timeout); failures become TC_ERR_BACKEND. */
  async #call<T>(op: string, fn: (client: BufferClient) => Promise<T>): Promise<T> {
    if (this.#closed) throw tcError('TC_ERR_SHUTTING_DOWN', 'the handshake store is closed');
    return redisCall(`handshake ${op}`, this.url, this.#callTimeoutMs, () => fn(this.#bytes));
  }
}
