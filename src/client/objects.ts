// The SDK's object store client (docs/api.md, "Objects"): byte objects under `<namespace>/<name>` keys on
// one daemon. A put is one PUT request on one pooled data-plane connection (or, on the daemon's host, one
// copy into a tmpfs file the daemon hands out); a get lands the bytes straight into the caller's buffer.
// Batch calls pipeline their items over the pool and report one status per item. Metadata, deletes,
// transactions and namespaces go through the control API, with the store token as a header.

import { randomUUID } from 'node:crypto';
import { errorFromWire, isTensorcastError, tcError, TensorcastError } from '../core/errors.js';
import { checkNamespace, parseObjectKey } from '../core/object-keys.js';
import {
  MAX_DELETE_KEYS,
  namespacePath,
  objectStatPath,
  STORE_TOKEN_HEADER,
  type CommitResponse,
  type DeleteObjectsResponse,
  type NamespaceList,
  type ObjectList,
} from '../protocol/http/objects.js';
import type { ConnectionPool } from '../transport/connection-pool.js';
import type { ControlClient } from '../transport/control-client.js';
import type { ObjectPutRequest } from '../transport/data-connection.js';
import { shmGet, shmPut, SHM_UNREACHABLE, type ShmContext } from './object-shm.js';
import type {
  BatchOptions,
  CommitCondition,
  GetOptions,
  GetResult,
  ItemResult,
  ListOptions,
  NamespaceInfo,
  NamespaceSettings,
  ObjectMeta,
  ObjectsOptions,
  ObjectTransport,
  PutOptions,
  PutResult,
} from './object-types.js';

/** Objects at least this large travel through shared memory under transport 'auto' (same host). */
export const SHM_MIN_BYTES = 1 << 20;
/** Page size of list(). */
const LIST_PAGE = 1000;
const TRANSPORTS: readonly ObjectTransport[] = ['auto', 'tcp', 'shm'];

/** What an ObjectsClient uses of its TensorcastClient. */
export interface ObjectsContext {
  readonly pool: ConnectionPool;
  readonly control: ControlClient;
  /** Default concurrency of batch calls (the client's `connections`). */
  readonly connections: number;
  /** Default deadline of a put or get, in ms. */
  readonly timeoutMs: number;
  /** True when the daemon runs on this host and its shm dir is visible here (transport 'auto' may use shm). */
  readonly sameHost: boolean;
}

/** One item of {@link ObjectsClient.putMany}. */
export interface PutItem extends Omit<PutOptions, 'signal'> {
  readonly key: string;
  readonly data: Uint8Array;
}

/** One item of {@link ObjectsClient.getMany}. */
export interface GetItem {
  readonly key: string;
  readonly into?: Uint8Array;
}

/**
 * Objects on the daemon. Create with {@link TensorcastClient.objects}.
 *
 * @example
 * const objects = client.objects({ storeToken: process.env.STORE_TOKEN });
 * const { version } = await objects.put('features/sample-1', bytes);
 * const { data } = await objects.get('features/sample-1', { into: new Uint8Array(bytes.length) });
 */
export class ObjectsClient {
  private readonly headers: Readonly<Record<string, string>>;
  private readonly storeToken: string | undefined;

  constructor(
    private readonly ctx: ObjectsContext,
    options: ObjectsOptions = {},
  ) {
    this.storeToken = options.storeToken;
    this.headers = options.storeToken === undefined ? {} : { [STORE_TOKEN_HEADER]: options.storeToken };
  }

  /**
   * Stores `data` under `key` (one request; `data` must not change until the promise settles). Without
   * `txn` the object is visible once this resolves; with `txn`, once {@link commit} succeeds.
   *
   * @throws TC_ERR_INVALID_ARGUMENT, TC_ERR_AUTH, TC_ERR_CONFLICT (ifVersion), TC_ERR_BACKPRESSURE (namespace
   *   full; retryable), TC_ERR_BUDGET (daemon memory; retryable), TC_ERR_TIMEOUT, TC_ERR_UNAVAILABLE, TC_ERR_CHECKSUM
   * @example await objects.put('ns/a', bytes, { ifVersion: null }); // only if absent
   */
  async put(key: string, data: Uint8Array, options: PutOptions = {}): Promise<PutResult> {
    parseObjectKey(key);
    if (!(data instanceof Uint8Array)) throw tcError('TC_ERR_INVALID_ARGUMENT', `put of '${key}': data must be a Uint8Array`);
    checkPutOptions(options);
    const timeoutMs = options.timeoutMs ?? this.ctx.timeoutMs;
    const fields = {
      ...(options.txn === undefined ? {} : { txn: options.txn }),
      ...(options.ifVersion === undefined ? {} : { ifVersion: options.ifVersion }),
      ...(options.ttlMs === undefined ? {} : { ttlMs: options.ttlMs }),
      ...(options.waitForRoom === undefined ? {} : { waitForRoom: options.waitForRoom }),
    };
    const transport = options.transport ?? 'auto';
    if (this.viaShm(transport, data.length)) {
      try {
        return await shmPut(this.shm(), key, data, fields, timeoutMs, transport === 'auto', options.signal);
      } catch (error) {
        if (isTensorcastError(error, 'TC_ERR_FORBIDDEN') && error.details['reason'] === SHM_UNREACHABLE) {
          // The daemon's shm dir is not writable from here: TCP.
        } else if (transport === 'auto' && isTensorcastError(error, 'TC_ERR_BUDGET') && options.waitForRoom !== true) {
          // No shared memory left for it: over TCP the daemon may still take it (it spills to disk with
          // --object-spill), or refuses with the same code.
        } else throw error;
      }
    }
    const req: ObjectPutRequest = {
      key,
      timeoutMs,
      ...fields,
      ...(this.storeToken === undefined ? {} : { storeToken: this.storeToken }),
    };
    const conn = await this.ctx.pool.acquire(timeoutMs);
    try {
      const r = await conn.put(req, data, options.signal);
      return { key, bytes: r.bytes, version: r.version };
    } finally {
      this.ctx.pool.release(conn);
    }
  }

  /**
   * Reads `key`: into `options.into` (exactly the object's size) or a new buffer. Never resolves with a
   * partly filled buffer. Under 'auto', same-host reads try shared memory first when `into` is absent or at
   * least 1 MiB (an object not in shm is then read over TCP).
   *
   * @throws TC_ERR_NOT_FOUND, TC_ERR_OBJECT_LOST, TC_ERR_AUTH, TC_ERR_SHORT_READ (`into` larger than the
   *   object), TC_ERR_DESTINATION_SIZE (smaller), TC_ERR_CHECKSUM, TC_ERR_TIMEOUT, TC_ERR_UNAVAILABLE
   * @example const { data, version } = await objects.get('ns/a');
   */
  async get(key: string, options: GetOptions = {}): Promise<GetResult> {
    parseObjectKey(key);
    const { into } = options;
    if (into !== undefined && !(into instanceof Uint8Array))
      throw tcError('TC_ERR_INVALID_ARGUMENT', `get of '${key}': into must be a Uint8Array`);
    checkTimeout(options.timeoutMs);
    checkTransport(options.transport);
    const timeoutMs = options.timeoutMs ?? this.ctx.timeoutMs;
    const transport = options.transport ?? 'auto';
    if (this.viaShm(transport, into?.length ?? SHM_MIN_BYTES)) {
      options.signal?.throwIfAborted();
      try {
        return await shmGet(this.shm(), key, into, timeoutMs, transport === 'auto');
      } catch (error) {
        const reason = isTensorcastError(error) ? error.details['reason'] : undefined;
        const elsewhere = isTensorcastError(error, 'TC_ERR_NOT_FOUND') && reason === 'not_in_shm';
        if (!elsewhere && !(isTensorcastError(error, 'TC_ERR_FORBIDDEN') && reason === SHM_UNREACHABLE)) throw error;
      }
    }
    const conn = await this.ctx.pool.acquire(timeoutMs);
    try {
      const r = await conn.get(
        { key, timeoutMs, ...(this.storeToken === undefined ? {} : { storeToken: this.storeToken }) },
        into,
        options.signal,
      );
      return { key, bytes: r.bytes, version: r.version, data: r.data };
    } finally {
      this.ctx.pool.release(conn);
    }
  }

  /**
   * Puts every item, `concurrency` at a time over the connection pool; one status per item, in order (a
   * failed item never fails the batch). `options` are defaults each item may override.
   *
   * @example const r = await objects.putMany(samples.map((s) => ({ key: `ns/${s.id}`, data: s.bytes })));
   */
  putMany(items: readonly PutItem[], options: BatchOptions & Omit<PutOptions, 'signal'> = {}): Promise<ItemResult<PutResult>[]> {
    const { concurrency, signal, ...defaults } = options;
    return this.batch(items, concurrency, ({ key, data, ...own }) =>
      this.put(key, data, { ...defaults, ...own, ...(signal === undefined ? {} : { signal }) }),
    );
  }

  /**
   * Gets every item (into its `into` when given), `concurrency` at a time; one status per item, in order.
   *
   * @example const r = await objects.getMany(keys.map((key) => ({ key })));
   */
  getMany(
    items: readonly GetItem[],
    options: BatchOptions & Pick<GetOptions, 'timeoutMs' | 'transport'> = {},
  ): Promise<ItemResult<GetResult>[]> {
    const { concurrency, signal, ...defaults } = options;
    return this.batch(items, concurrency, ({ key, into }) =>
      this.get(key, { ...defaults, ...(into === undefined ? {} : { into }), ...(signal === undefined ? {} : { signal }) }),
    );
  }

  /**
   * What the daemon knows of `key` (no read lease), or undefined when it does not exist.
   *
   * @throws TC_ERR_OBJECT_LOST, TC_ERR_AUTH
   */
  async stat(key: string): Promise<ObjectMeta | undefined> {
    parseObjectKey(key);
    try {
      return await this.ctx.control.json<ObjectMeta>('GET', objectStatPath(key), undefined, undefined, this.headers);
    } catch (error) {
      if (isTensorcastError(error, 'TC_ERR_NOT_FOUND')) return undefined;
      throw error;
    }
  }

  /**
   * Objects whose key starts with `prefix`, ordered by key (every page fetched, up to `limit`). Objects of
   * namespaces with a token are listed only with that token.
   *
   * @example const metas = await objects.list('features/');
   */
  async list(prefix = '', options: ListOptions = {}): Promise<ObjectMeta[]> {
    if (options.limit !== undefined && !(Number.isSafeInteger(options.limit) && options.limit >= 0))
      throw tcError('TC_ERR_INVALID_ARGUMENT', `list: limit must be a non-negative integer, got ${String(options.limit)}`);
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    const out: ObjectMeta[] = [];
    let after = options.after;
    while (out.length < limit) {
      const q = new URLSearchParams({ prefix, limit: String(Math.min(LIST_PAGE, limit - out.length)) });
      if (after !== undefined) q.set('after', after);
      const page = await this.ctx.control.json<ObjectList>('GET', `/v1/objects?${q.toString()}`, undefined, undefined, this.headers);
      out.push(...page.objects.slice(0, limit - out.length));
      if (page.next === null || page.objects.length === 0) break;
      after = page.next;
    }
    return out;
  }

  /**
   * Deletes keys: logical at once (new reads fail with TC_ERR_NOT_FOUND); the bytes are freed once no read
   * is copying them. One status per key; a missing key is ok with `existed: false`.
   *
   * @example const [r] = await objects.delete(['ns/a']); if (!r.ok) console.error(r.error.code);
   */
  async delete(keys: readonly string[]): Promise<ItemResult<{ existed: boolean }>[]> {
    for (const key of keys) parseObjectKey(key);
    const out: ItemResult<{ existed: boolean }>[] = [];
    for (let at = 0; at < keys.length; at += MAX_DELETE_KEYS) {
      const r = await this.ctx.control.json<DeleteObjectsResponse>(
        'POST',
        '/v1/objects/delete',
        { keys: keys.slice(at, at + MAX_DELETE_KEYS) },
        undefined,
        this.headers,
      );
      for (const x of r.results)
        out.push(
          x.ok
            ? { key: x.key, ok: true, value: { existed: x.existed } }
            : { key: x.key, ok: false, error: errorFromWire(x.code, x.message, `delete of '${x.key}' failed`) },
        );
    }
    return out;
  }

  /**
   * Makes every put of `txn` visible at once, after checking `conditions` (and each put's own ifVersion).
   * Resolves with each key's new version.
   *
   * @throws TC_ERR_CONFLICT (a condition failed: nothing became visible, the txn's puts are aborted),
   *   TC_ERR_NOT_FOUND (unknown or expired txn), TC_ERR_AUTH
   * @example const txn = objects.newTxn(); await objects.put('ns/a', a, { txn }); await objects.commit(txn, [{ key: 'ns/m', ifVersion: 3 }]);
   */
  async commit(txn: string, conditions: readonly CommitCondition[] = []): Promise<Record<string, number>> {
    checkTxn(txn);
    for (const c of conditions) {
      parseObjectKey(c.key);
      checkIfVersion(c.ifVersion);
    }
    const r = await this.ctx.control.json<CommitResponse>('POST', '/v1/objects/commit', { txn, conditions }, undefined, this.headers);
    return { ...r.versions };
  }

  /** Drops every put of `txn` (unknown txns are fine). */
  async abort(txn: string): Promise<void> {
    checkTxn(txn);
    await this.ctx.control.json('POST', '/v1/objects/abort', { txn }, undefined, this.headers);
  }

  /** A new transaction id (a transaction exists once a put names it; unused for 60 s it is aborted). */
  newTxn(): string {
    return `txn-${randomUUID()}`;
  }

  /**
   * Creates `namespace`, or changes its settings. Changing the token of a namespace that has one needs the
   * old one (this client's storeToken; when the client has none, `settings.token` is sent as the credential).
   *
   * @throws TC_ERR_AUTH, TC_ERR_INVALID_ARGUMENT
   * @example await objects.ensureNamespace('features', { token: 's3cret', maxBytes: 8 << 30 });
   */
  async ensureNamespace(namespace: string, settings: NamespaceSettings = {}): Promise<NamespaceInfo> {
    checkNamespace(namespace);
    if (settings.maxBytes != null && !(Number.isSafeInteger(settings.maxBytes) && settings.maxBytes >= 0))
      throw tcError('TC_ERR_INVALID_ARGUMENT', `namespace ${namespace}: maxBytes must be a non-negative integer or null`);
    if (settings.token != null && (typeof settings.token !== 'string' || settings.token === ''))
      throw tcError('TC_ERR_INVALID_ARGUMENT', `namespace ${namespace}: token must be a non-empty string or null`);
    const credential = this.storeToken ?? (typeof settings.token === 'string' ? settings.token : undefined);
    const headers = credential === undefined ? {} : { [STORE_TOKEN_HEADER]: credential };
    return this.ctx.control.json<NamespaceInfo>('PUT', namespacePath(namespace), settings, undefined, headers);
  }

  /** A namespace's settings and counters. @throws TC_ERR_NOT_FOUND, TC_ERR_AUTH */
  namespaceInfo(namespace: string): Promise<NamespaceInfo> {
    checkNamespace(namespace);
    return this.ctx.control.json<NamespaceInfo>('GET', namespacePath(namespace), undefined, undefined, this.headers);
  }

  /** Every namespace the daemon has. */
  async namespaces(): Promise<NamespaceInfo[]> {
    const r = await this.ctx.control.json<NamespaceList>('GET', '/v1/namespaces', undefined, undefined, this.headers);
    return [...r.namespaces];
  }

  private shm(): ShmContext {
    return { control: this.ctx.control, headers: this.headers };
  }

  private viaShm(transport: ObjectTransport, size: number): boolean {
    if (transport === 'shm') return true;
    return transport === 'auto' && this.ctx.sameHost && size >= SHM_MIN_BYTES;
  }

  private async batch<I extends { readonly key: string }, T>(
    items: readonly I[],
    wanted: number | undefined,
    run: (item: I) => Promise<T>,
  ): Promise<ItemResult<T>[]> {
    const concurrency = wanted ?? this.ctx.connections;
    if (!(Number.isSafeInteger(concurrency) && concurrency >= 1))
      throw tcError('TC_ERR_INVALID_ARGUMENT', `concurrency must be a positive integer, got ${String(concurrency)}`);
    const results = new Array<ItemResult<T>>(items.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let i = next++; i < items.length; i = next++) {
        const item = items[i]!;
        try {
          results[i] = { key: item.key, ok: true, value: await run(item) };
        } catch (error) {
          results[i] = { key: item.key, ok: false, error: asTensorcastError(error) };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
    return results;
  }
}

function checkPutOptions(o: PutOptions): void {
  if (o.txn !== undefined) checkTxn(o.txn);
  if (o.ifVersion !== undefined) checkIfVersion(o.ifVersion);
  if (o.ttlMs !== undefined && !(Number.isSafeInteger(o.ttlMs) && o.ttlMs > 0))
    throw tcError('TC_ERR_INVALID_ARGUMENT', `ttlMs must be a positive integer, got ${String(o.ttlMs)}`);
  if (o.waitForRoom !== undefined && typeof o.waitForRoom !== 'boolean')
    throw tcError('TC_ERR_INVALID_ARGUMENT', 'waitForRoom must be a boolean');
  checkTimeout(o.timeoutMs);
  checkTransport(o.transport);
}

function checkTimeout(timeoutMs: number | undefined): void {
  if (timeoutMs !== undefined && !(Number.isSafeInteger(timeoutMs) && timeoutMs > 0 && timeoutMs < 2 ** 31))
    throw tcError('TC_ERR_INVALID_ARGUMENT', `timeoutMs must be a positive integer below 2^31, got ${String(timeoutMs)}`);
}

function checkTransport(transport: ObjectTransport | undefined): void {
  if (transport !== undefined && !TRANSPORTS.includes(transport))
    throw tcError('TC_ERR_INVALID_ARGUMENT', `transport must be one of ${TRANSPORTS.join(', ')}, got '${String(transport)}'`);
}

function checkTxn(txn: string): void {
  if (typeof txn !== 'string' || txn.length === 0 || txn.length > 128)
    throw tcError('TC_ERR_INVALID_ARGUMENT', 'a transaction id must be a string of 1 to 128 characters');
}

function checkIfVersion(v: number | null): void {
  if (v !== null && !(Number.isSafeInteger(v) && v >= 0))
    throw tcError('TC_ERR_INVALID_ARGUMENT', `ifVersion must be a non-negative integer or null, got ${String(v)}`);
}

/** A failure of one batch item as a TensorcastError (an abort is TC_ERR_ABORTED). */
function asTensorcastError(error: unknown): TensorcastError {
  if (error instanceof TensorcastError) return error;
  if ((error as Error | undefined)?.name === 'AbortError') return tcError('TC_ERR_ABORTED', (error as Error).message, { cause: error });
  return tcError('TC_ERR_INTERNAL', error instanceof Error ? error.message : String(error), { cause: error });
}
