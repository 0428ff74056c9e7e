// The Redis session metadata store, on node-redis: sessions under `<prefix>sessions:` of a redis:// URL, every
// change one Lua script (redis-session-meta-scripts.ts) timed by the server's clock, so any number of servers
// share the sessions and continue each other's. Records are hashes whose fields are the SQL stores' columns.

import { tcError } from '../../core/errors.js';
import { DEFAULT_CALL_TIMEOUT_MS, type CatalogLog } from '../../catalog/catalog-options.js';
import { closeRedisConnection, openRedisConnection, redisCall, type RedisConnectionClient } from '../../catalog/redis/redis-connection.js';
import { parseRedisCatalogUrl, type RedisCatalogUrl } from '../../catalog/redis/redis-url.js';
import type { SessionGeometry } from '../geometry.js';
import type { SessionLease, SessionRecord } from '../session-types.js';
import {
  checkChange,
  checkCreate,
  checkLease,
  checkOwner,
  checkSessionId,
  checkTtl,
  leaseHeld,
  listLimit,
  sessionExists,
  sessionNotFound,
  staleLease,
  staleVersion,
} from './session-meta-rules.js';
import { rowToRecord, type SessionRow } from './session-meta-rows.js';
import { SESSION_SCRIPTS } from './redis-session-meta-scripts.js';
import type { SessionChange, SessionListOptions, SessionMetaStore } from './session-meta-store.js';

type StoreClient = RedisConnectionClient<typeof SESSION_SCRIPTS>;
const timedClient = (client: StoreClient, timeoutMs: number) => client.withCommandOptions({ timeout: timeoutMs });
type TimedClient = ReturnType<typeof timedClient>;

const text = (v: unknown): string => (typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString('utf8') : String(v));
const list = (reply: unknown): unknown[] => (Array.isArray(reply) ? (reply as unknown[]) : []);

/** The record of a flat HGETALL reply (field, value, ...), or of its object form. */
function hashToRecord(reply: unknown): SessionRecord {
  const fields = new Map<string, string>();
  if (Array.isArray(reply)) {
    const flat = reply as unknown[];
    for (let i = 0; i + 1 < flat.length; i += 2) fields.set(text(flat[i]), text(flat[i + 1]));
  } else if (typeof reply === 'object' && reply !== null) {
    for (const [k, v] of Object.entries(reply)) fields.set(k, text(v));
  }
  const get = (name: string): string => fields.get(name) ?? '';
  const opt = (name: string): string | null => fields.get(name) ?? null;
  const row: SessionRow = {
    session_id: get('session_id'),
    geometry_json: get('geometry_json'),
    geometry_hash: get('geometry_hash'),
    tokens: get('tokens'),
    entries_json: get('entries_json'),
    version: get('version'),
    fence: get('fence'),
    lease_owner: opt('lease_owner'),
    lease_fence: opt('lease_fence'),
    lease_expires_at: opt('lease_expires_at'),
    created_at: get('created_at'),
    updated_at: get('updated_at'),
  };
  return rowToRecord(row);
}

/** Key names under the URL's prefix. */
class SessionKeys {
  readonly ids: string;
  readonly sessionPrefix: string;
  constructor(prefix: string) {
    this.ids = `${prefix}sessions:ids`;
    this.sessionPrefix = `${prefix}sessions:s:`;
  }
  session(sessionId: string): string {
    return this.sessionPrefix + sessionId;
  }
}

/** Options of the Redis store. */
export interface RedisSessionMetaStoreOptions {
  readonly log?: CatalogLog;
  readonly callTimeoutMs?: number;
}

/**
 * Session metadata in Redis (standalone server, the URL's database and prefix).
 *
 * @example const meta = await RedisSessionMetaStore.open('redis://10.0.0.5:6379/0?prefix=prod:tc:');
 */
export class RedisSessionMetaStore implements SessionMetaStore {
  readonly kind = 'redis';
  readonly shared = true;
  #closed = false;
  readonly #timed: TimedClient;
  readonly #callTimeoutMs: number;

  private constructor(
    private readonly client: StoreClient,
    private readonly url: RedisCatalogUrl,
    private readonly k: SessionKeys,
    callTimeoutMs: number,
  ) {
    this.#timed = timedClient(client, callTimeoutMs);
    this.#callTimeoutMs = callTimeoutMs;
  }

  /**
   * Connects to the server of `url`. The first connection must succeed within the call timeout; later, a lost
   * connection is re-established in the background (calls meanwhile fail fast with TC_ERR_BACKEND).
   *
   * @throws TC_ERR_CONFIG for a bad URL; TC_ERR_BACKEND when the server cannot be reached.
   */
  static async open(url: string, options: RedisSessionMetaStoreOptions = {}): Promise<RedisSessionMetaStore> {
    const parsed = parseRedisCatalogUrl(url);
    const callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    const client = await openRedisConnection({
      url: parsed,
      callTimeoutMs,
      scripts: SESSION_SCRIPTS,
      names: { field: 'sessions', what: 'session metadata store', log: () => options.log },
    });
    return new RedisSessionMetaStore(client, parsed, new SessionKeys(parsed.prefix), callTimeoutMs);
  }

  async create(sessionId: string, geometry: SessionGeometry, geometryHash: string): Promise<SessionRecord> {
    const checked = checkCreate(sessionId, geometry, geometryHash);
    const geometryJson = JSON.stringify(checked);
    const reply = list(
      await this.#call('create', (c) => c.createSession(this.k.ids, this.k.session(sessionId), sessionId, geometryJson, geometryHash)),
    );
    if (text(reply[0]) === 'exists') throw sessionExists(sessionId);
    const now = Number(text(reply[1]));
    return {
      sessionId,
      geometry: checked,
      geometryHash,
      tokens: 0,
      entries: [],
      version: 0,
      fence: 0,
      lease: null,
      createdAtMs: now,
      updatedAtMs: now,
    };
  }

  async get(sessionId: string): Promise<SessionRecord | undefined> {
    checkSessionId(sessionId);
    const reply = await this.#call('get', (c) => c.hGetAll(this.k.session(sessionId)));
    return Object.keys(reply).length === 0 ? undefined : hashToRecord(reply);
  }

  async list(options: SessionListOptions = {}): Promise<SessionRecord[]> {
    const limit = listLimit(options);
    const min = options.after === undefined ? '-' : `(${options.after}`;
    const reply = list(await this.#call('list', (c) => c.listSessions(this.k.ids, min, String(limit), this.k.sessionPrefix)));
    return reply.map(hashToRecord);
  }

  async acquire(sessionId: string, owner: string, ttlMs: number): Promise<SessionLease> {
    checkSessionId(sessionId);
    checkOwner(owner);
    checkTtl(ttlMs);
    const reply = list(await this.#call('acquire', (c) => c.acquireLease(this.k.session(sessionId), owner, String(ttlMs))));
    switch (text(reply[0])) {
      case 'missing':
        throw sessionNotFound(sessionId);
      case 'held':
        throw leaseHeld(sessionId, text(reply[1]), Number(text(reply[2])));
      default:
        return { sessionId, owner, fence: Number(text(reply[1])), expiresAtMs: Number(text(reply[2])) };
    }
  }

  async renew(lease: SessionLease, ttlMs: number): Promise<SessionLease> {
    checkLease(lease);
    checkTtl(ttlMs);
    const reply = list(
      await this.#call('renew', (c) => c.renewLease(this.k.session(lease.sessionId), lease.owner, String(lease.fence), String(ttlMs))),
    );
    switch (text(reply[0])) {
      case 'missing':
        throw sessionNotFound(lease.sessionId);
      case 'stale':
        throw staleLease(lease, Number(text(reply[1])));
      default:
        return { ...lease, expiresAtMs: Number(text(reply[1])) };
    }
  }

  async release(lease: SessionLease): Promise<void> {
    checkLease(lease);
    await this.#call('release', (c) => c.releaseLease(this.k.session(lease.sessionId), lease.owner, String(lease.fence)));
  }

  async update(lease: SessionLease, expectedVersion: number, change: SessionChange): Promise<SessionRecord> {
    checkLease(lease);
    const entries = checkChange(change);
    if (!Number.isSafeInteger(expectedVersion)) throw staleVersion(lease.sessionId, expectedVersion, -1);
    const reply = list(
      await this.#call('update', (c) =>
        c.updateSession(
          this.k.session(lease.sessionId),
          lease.owner,
          String(lease.fence),
          String(expectedVersion),
          JSON.stringify(entries),
          String(change.tokens),
        ),
      ),
    );
    switch (text(reply[0])) {
      case 'missing':
        throw sessionNotFound(lease.sessionId);
      case 'stale':
        throw staleLease(lease, Number(text(reply[1])));
      case 'version':
        throw staleVersion(lease.sessionId, expectedVersion, Number(text(reply[1])));
      default:
        return hashToRecord(reply[1]);
    }
  }

  async remove(sessionId: string, lease?: SessionLease): Promise<SessionRecord | undefined> {
    checkSessionId(sessionId);
    if (lease !== undefined) {
      checkLease(lease);
      if (lease.sessionId !== sessionId)
        throw tcError('TC_ERR_INVALID_ARGUMENT', `the lease is for session '${lease.sessionId}', not '${sessionId}'`);
    }
    const reply = list(
      await this.#call('remove', (c) =>
        c.removeSession(
          this.k.ids,
          this.k.session(sessionId),
          sessionId,
          lease?.owner ?? '',
          lease === undefined ? '' : String(lease.fence),
        ),
      ),
    );
    switch (text(reply[0])) {
      case 'missing':
        return undefined;
      case 'stale':
        throw staleLease(lease as SessionLease, Number(text(reply[1])));
      case 'held':
        throw leaseHeld(sessionId, text(reply[1]), Number(text(reply[2])));
      default:
        return hashToRecord(reply[1]);
    }
  }

  /** Closes the connection; calls in flight finish first when the server answers within the call timeout. */
  async close(): Promise<void> {
    this.#closed = true;
    await closeRedisConnection(this.client, this.#callTimeoutMs);
  }

  /** Runs one call (bounded by the call timeout); failures become TC_ERR_BACKEND. */
  async #call<T>(op: string, fn: (client: TimedClient) => Promise<T>): Promise<T> {
    if (this.#closed) throw tcError('TC_ERR_SHUTTING_DOWN', 'the session metadata store is closed');
    return redisCall(`sessions ${op}`, this.url, this.#callTimeoutMs, () => fn(this.#timed));
  }
}
