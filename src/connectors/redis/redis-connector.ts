// The redis:// connector on node-redis (the official `redis` package): objects as chunk keys plus a
// manifest written last (redis-layout.ts). Reads are pipelined GETRANGEs over the chunks a range touches,
// copied from Buffer replies into the destination; writes are idempotent SETRANGEs (safe to retry) into
// chunks of a fresh version that expire unless the write completes. The client never queues commands
// while disconnected and reconnects with capped backoff; each command is retried by connector-retry.ts.

import { createClient, RESP_TYPES } from 'redis';
import { mapLimit } from '../../core/async.js';
import { tcError } from '../../core/errors.js';
import { compareUtf8 } from '../../core/strings.js';
import type { Connector, ObjectInfo, ReadOptions, WriteData, WriteOptions } from '../connector.js';
import { connectorError } from '../connector-errors.js';
import { checkListPrefix, checkObjectKey, checkReadRange, objectNotFound, shortRead, sourceChanged } from '../connector-keys.js';
import { forEachBounded, splitRange } from '../connector-parts.js';
import {
  DEFAULT_CONCURRENCY,
  DEFAULT_CONNECTOR_CALL_TIMEOUT_MS,
  DEFAULT_REDIS_CHUNK_BYTES,
  positiveOption,
  type ConnectorLog,
  type ConnectorOptions,
} from '../connector-options.js';
import { retryPolicy, withRetries, type RetryScope } from '../connector-retry.js';
import { redisClassifier } from './redis-errors.js';
import { decodeManifest, encodeManifest, makeManifest, newVersion, RedisLayout, type Manifest } from './redis-layout.js';
import { parseRedisConnectorUrl, type RedisConnectorUrl } from './redis-connector-url.js';

/** Redis' largest value (proto-max-bulk-len default, 512 MB); a chunk stays below it. */
const MAX_CHUNK_BYTES = 512 * 1000 * 1000 - 1;
/** The largest single GETRANGE or SETRANGE: big enough to stream, small enough to keep replies bounded. */
const PIECE_BYTES = 4 * 1024 * 1024;
/** Chunks of a write in progress expire after this unless the write completes (orphans of a crashed writer). */
const PENDING_CHUNK_TTL_MS = 24 * 3600 * 1000;
/** Manifests fetched per MGET while listing. */
const LIST_BATCH = 512;
/** Reconnection backoff: 100 ms doubling to at most this, with jitter. */
const MAX_RECONNECT_DELAY_MS = 2000;

/** A node-redis client for a parsed connector URL: TLS, credentials and database as the URL says; no offline queue. */
export const makeClient = (url: RedisConnectorUrl, connectTimeoutMs: number, reconnect: (retries: number) => number | false) =>
  createClient({
    socket: {
      host: url.host,
      port: url.port,
      ...(url.tls ? { tls: true as const } : {}),
      connectTimeout: connectTimeoutMs,
      reconnectStrategy: reconnect,
    },
    ...(url.username === undefined ? {} : { username: url.username }),
    ...(url.password === undefined ? {} : { password: url.password }),
    database: url.database,
    // A command while the connection is down fails at once (and is retried) instead of waiting in a queue.
    disableOfflineQueue: true,
  });
type Client = ReturnType<typeof makeClient>;
const bufferClient = (client: Client, timeoutMs: number) =>
  client.withCommandOptions({ typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer }, timeout: timeoutMs });
type BufferClient = ReturnType<typeof bufferClient>;

/** The bytes of a BLOB_STRING reply read through the Buffer-typed client. */
const asBuffer = (reply: unknown): Buffer =>
  Buffer.isBuffer(reply) ? reply : typeof reply === 'string' ? Buffer.from(reply, 'utf8') : Buffer.alloc(0);

/**
 * A key prefix of a Redis server (standalone) seen as a connector.
 *
 * @example const c = await RedisConnector.open('redis://:secret@10.0.0.5:6379/llama-3-8b?db=1');
 */
export class RedisConnector implements Connector {
  readonly displayUrl: string;
  private readonly scope: RetryScope;
  private readonly bytes: BufferClient;
  private readonly text: Client;
  private closed = false;
  private connected = true;

  private constructor(
    private readonly client: Client,
    private readonly url: RedisConnectorUrl,
    private readonly layout: RedisLayout,
    private readonly chunkBytes: number,
    private readonly concurrency: number,
    options: ConnectorOptions,
    callTimeoutMs: number,
  ) {
    this.displayUrl = url.redacted;
    this.scope = {
      where: url.redacted,
      policy: retryPolicy(options.retry),
      classify: redisClassifier(url.redacted, url.secrets, () => this.closed),
      log: options.log,
    };
    this.bytes = bufferClient(client, callTimeoutMs);
    this.text = client.withCommandOptions({ timeout: callTimeoutMs });
    this.watch(options.log);
  }

  /**
   * Connects to the server of `url`. The first connection must succeed (after the retry policy's tries);
   * later, a lost connection is re-established in the background.
   *
   * @throws TC_ERR_INVALID_ARGUMENT for a bad URL or option; TC_ERR_AUTH for refused credentials;
   *   TC_ERR_BACKEND (retryable) when the server cannot be reached.
   */
  static async open(url: string, options: ConnectorOptions = {}): Promise<RedisConnector> {
    const parsed = parseRedisConnectorUrl(url);
    const chunkBytes = positiveOption('chunkBytes', options.chunkBytes, DEFAULT_REDIS_CHUNK_BYTES, MAX_CHUNK_BYTES);
    const concurrency = positiveOption('concurrency', options.concurrency, DEFAULT_CONCURRENCY, 1024);
    const callTimeoutMs = positiveOption('callTimeoutMs', options.callTimeoutMs, DEFAULT_CONNECTOR_CALL_TIMEOUT_MS);
    let opened = false;
    // Until open succeeds a failed connection attempt ends it (false); afterwards the client retries forever.
    const reconnect = (retries: number): number | false =>
      opened ? Math.round(Math.min(100 * 2 ** Math.min(retries, 10), MAX_RECONNECT_DELAY_MS) * (0.5 + Math.random() / 2)) : false;
    const client = makeClient(parsed, Math.min(callTimeoutMs, 10_000), reconnect);
    const connector = new RedisConnector(client, parsed, new RedisLayout(parsed.prefix), chunkBytes, concurrency, options, callTimeoutMs);
    try {
      await withRetries(connector.scope, 'connect', async () => {
        if (!client.isOpen) await client.connect();
        await client.ping();
      });
      opened = true;
      return connector;
    } catch (error) {
      connector.closed = true;
      if (client.isOpen) client.destroy();
      throw error;
    }
  }

  /** Handles the client's events: an 'error' never reaches the process; a lost connection is logged once. */
  private watch(log: ConnectorLog | undefined): void {
    const where = { connector: this.displayUrl };
    this.client.on('error', (error: unknown) => {
      if (!this.connected || this.closed) return;
      this.connected = false;
      log?.warn(
        { ...where, err: connectorError('TC_ERR_BACKEND', this.displayUrl, 'connection', error, this.url.secrets).message },
        'connector connection lost',
      );
    });
    this.client.on('ready', () => {
      if (this.connected) return;
      this.connected = true;
      log?.info(where, 'connector connection restored');
    });
  }

  private call<T>(op: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.closed) return Promise.reject(tcError('TC_ERR_ABORTED', `${this.displayUrl}: the connector is closed`));
    return withRetries(this.scope, op, fn, signal);
  }

  /** The manifest of `key`, or undefined when there is none. */
  private async manifest(key: string, op: string, signal?: AbortSignal): Promise<Manifest | undefined> {
    const text = await this.call(op, () => this.text.get(this.layout.manifest(key)), signal);
    return text === null ? undefined : decodeManifest(text, this.displayUrl, key);
  }

  async list(prefix = ''): Promise<ObjectInfo[]> {
    checkListPrefix(prefix);
    const keys = await this.call(`list ${prefix}`, async () => {
      const found = new Set<string>();
      for await (const batch of this.text.scanIterator({ MATCH: this.layout.manifestPattern(prefix), COUNT: 1000 })) {
        for (const k of batch) found.add(k);
      }
      return [...found];
    });
    const batches: string[][] = [];
    for (let i = 0; i < keys.length; i += LIST_BATCH) batches.push(keys.slice(i, i + LIST_BATCH));
    const infos = await mapLimit(batches, 4, async (batch) => {
      const values = await this.call(`list ${prefix}`, () => this.text.mGet(batch));
      const out: ObjectInfo[] = [];
      batch.forEach((manifestKey, i) => {
        const key = this.layout.objectKey(manifestKey);
        const value = values[i];
        if (key === undefined || value === null || value === undefined) return; // deleted while listing
        const m = decodeManifest(value, this.displayUrl, key);
        out.push({ key, size: m.size, etag: m.version });
      });
      return out;
    });
    return infos.flat().sort((a, b) => compareUtf8(a.key, b.key));
  }

  async stat(key: string): Promise<ObjectInfo> {
    checkObjectKey(key);
    const m = await this.manifest(key, `stat ${key}`);
    if (m === undefined) throw objectNotFound(this.displayUrl, key);
    return { key, size: m.size, etag: m.version };
  }

  /**
   * Reads the manifest, then GETRANGEs (at most 4 MiB each, `concurrency` in the pipeline) over the chunks
   * the range touches. A chunk reply shorter than asked means the chunk is gone: when the manifest moved
   * on, TC_ERR_SOURCE_CHANGED; otherwise the chunk was lost (evicted?), TC_ERR_SHORT_READ.
   */
  async readInto(key: string, offset: number, dest: Uint8Array, options: ReadOptions = {}): Promise<void> {
    checkObjectKey(key);
    checkReadRange(offset, dest);
    const op = `read ${key}`;
    const m = await this.manifest(key, op, options.signal);
    if (m === undefined) throw objectNotFound(this.displayUrl, key);
    if (options.etag !== undefined && options.etag !== m.version) throw sourceChanged(this.displayUrl, key, options.etag, m.version);
    if (offset + dest.length > m.size) throw shortRead(this.displayUrl, key, offset, dest.length, m.size);
    const pieces = splitRange(offset, dest.length, m.chunkBytes).flatMap((p) =>
      splitRange(p.offset, p.length, PIECE_BYTES).map((q) => ({ ...q, at: p.at + q.at })),
    );
    await forEachBounded(
      pieces,
      this.concurrency,
      async (piece, signal) => {
        const index = Math.floor(piece.offset / m.chunkBytes);
        const start = piece.offset - index * m.chunkBytes;
        const reply = await this.call(
          op,
          () => this.bytes.getRange(this.layout.chunk(m.version, index), start, start + piece.length - 1),
          signal,
        );
        const got = asBuffer(reply);
        if (got.length < piece.length) await this.explainMissingChunk(key, m, index);
        dest.set(got.subarray(0, piece.length), piece.at);
      },
      options.signal,
    );
  }

  /** Throws the right error for a chunk of `m` that came back short. */
  private async explainMissingChunk(key: string, m: Manifest, index: number): Promise<never> {
    const now = await this.manifest(key, `read ${key}`);
    if (now?.version !== m.version) throw sourceChanged(this.displayUrl, key, m.version, now?.version);
    throw tcError(
      'TC_ERR_SHORT_READ',
      `${this.displayUrl}: chunk ${index} of object '${key}' is missing or short (evicted? run Redis with maxmemory-policy noeviction)`,
      { details: { key, chunk: index, connector: this.displayUrl } },
    );
  }

  /**
   * Writes the chunks of a new version (SETRANGE pieces, each chunk expiring until the write completes),
   * makes them permanent, swaps the manifest (SET ... GET), then deletes the previous version's chunks.
   */
  async write(key: string, data: WriteData, options: WriteOptions = {}): Promise<ObjectInfo> {
    checkObjectKey(key);
    const op = `write ${key}`;
    const version = newVersion();
    const chunkBytes = this.chunkBytes;
    const inFlight = new Set<Promise<void>>();
    let failure: Error | undefined;
    let size = 0;
    let chunksTouched = 0;
    const send = async (fn: () => Promise<unknown>): Promise<void> => {
      const p = this.call(op, fn, options.signal).then(
        () => undefined,
        (error: unknown) => void (failure ??= error instanceof Error ? error : new Error(String(error))),
      );
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
      if (inFlight.size >= this.concurrency) await Promise.race(inFlight);
      if (failure !== undefined) throw failure;
    };
    try {
      const input: AsyncIterable<Uint8Array> | Iterable<Uint8Array> = data instanceof Uint8Array ? [data] : data;
      for await (const chunk of input) {
        for (const part of splitRange(size, chunk.length, chunkBytes)) {
          for (const piece of splitRange(part.offset, part.length, PIECE_BYTES)) {
            const index = Math.floor(piece.offset / chunkBytes);
            const start = piece.offset - index * chunkBytes;
            const at = part.at + (piece.offset - part.offset);
            const bytes = Buffer.from(chunk.buffer, chunk.byteOffset + at, piece.length);
            const chunkKey = this.layout.chunk(version, index);
            chunksTouched = Math.max(chunksTouched, index + 1);
            await send(async () => {
              await this.bytes.setRange(chunkKey, start, bytes);
              if (start === 0) await this.text.pExpire(chunkKey, PENDING_CHUNK_TTL_MS);
            });
          }
        }
        size += chunk.length;
        options.onBytes?.(chunk.length);
      }
      await Promise.all(inFlight);
      if (failure !== undefined) throw failure;
      if (options.size !== undefined && options.size !== size) {
        throw tcError('TC_ERR_INVALID_ARGUMENT', `${this.displayUrl}: write '${key}': expected ${options.size} bytes, got ${size}`, {
          details: { key, expected: options.size, actual: size },
        });
      }
      const m = makeManifest(size, chunkBytes, version);
      const chunkKeys = this.layout.chunkKeys(m);
      await mapLimit(chunkKeys, this.concurrency, (k) => this.call(op, () => this.text.persist(k), options.signal));
      const previous = await this.call(op, () => this.text.set(this.layout.manifest(key), encodeManifest(m), { GET: true }));
      await this.dropPrevious(key, previous, version);
      return { key, size, etag: version };
    } catch (error) {
      await Promise.allSettled(inFlight);
      const orphans = Array.from({ length: chunksTouched }, (_, i) => this.layout.chunk(version, i));
      if (orphans.length > 0) await this.text.unlink(orphans).catch(() => undefined);
      throw error;
    }
  }

  /** Deletes the chunks of a replaced manifest (not ours: a retried SET may return our own). */
  private async dropPrevious(key: string, previous: string | null, ours: string): Promise<void> {
    if (previous === null) return;
    let old: Manifest;
    try {
      old = decodeManifest(previous, this.displayUrl, key);
    } catch {
      return; // not ours to interpret; it is gone now
    }
    if (old.version === ours || old.chunks === 0) return;
    const keys = this.layout.chunkKeys(old);
    await this.call(`write ${key}`, () => this.text.unlink(keys)).catch((error: unknown) => {
      this.scope.log?.warn(
        { connector: this.displayUrl, key, err: String(error) },
        'connector could not delete the chunks of a replaced object',
      );
    });
  }

  async delete(key: string): Promise<void> {
    checkObjectKey(key);
    const previous = await this.call(`delete ${key}`, () => this.text.getDel(this.layout.manifest(key)));
    await this.dropPrevious(key, previous, '');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.client.isOpen) await this.client.close().catch(() => this.client.destroy());
  }
}
