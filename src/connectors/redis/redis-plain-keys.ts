// Plain Redis keys under a connector URL's prefix, outside the connector's chunk + manifest format: one
// value per key (SET), as other programs' layouts need them (SGLang's RedisConnector reads `GET key`). A
// batch stages every value under a temporary key (expiring unless committed), then commits them all in one
// MULTI/EXEC (RENAME over the final names, PERSIST, UNLINK of the keys the new set replaces), so a reader
// sees the old set of keys or the new one, never a mix or a half-written value.

import { randomBytes } from 'node:crypto';
import { tcError } from '../../core/errors.js';
import { compareUtf8 } from '../../core/strings.js';
import { DEFAULT_CONNECTOR_CALL_TIMEOUT_MS, positiveOption, type ConnectorOptions } from '../connector-options.js';
import { retryPolicy, withRetries, type RetryScope } from '../connector-retry.js';
import { makeClient } from './redis-connector.js';
import { parseRedisConnectorUrl, type RedisConnectorUrl } from './redis-connector-url.js';
import { redisClassifier } from './redis-errors.js';
import { escapeGlob } from './redis-layout.js';

/** Redis' default largest value (proto-max-bulk-len), assumed when the server does not say. */
const DEFAULT_MAX_VALUE_BYTES = 512 * 1024 * 1024;
/** Staged values of a batch that is never committed (a crashed writer) expire after this. */
const STAGED_TTL_MS = 24 * 3600 * 1000;
/** Keys per UNLINK of a discard. */
const UNLINK_BATCH = 1000;

type Client = ReturnType<typeof makeClient>;

/**
 * The keys under a Redis URL's prefix, read and written as plain values.
 *
 * @example
 * const space = await RedisPlainKeys.open('redis://10.0.0.5:6379/llama-3-8b');
 * const batch = space.batch();
 * await batch.set('llama-3-8b/files/config.json', '{...}');
 * await batch.commit(await space.keys('llama-3-8b/files/'));
 */
export class RedisPlainKeys {
  readonly displayUrl: string;
  /** The URL's path without its leading and trailing '/': the model name, for SGLang. */
  readonly prefix: string;
  readonly scope: RetryScope;
  private closed = false;
  private valueLimit = DEFAULT_MAX_VALUE_BYTES;

  private constructor(
    readonly client: Client,
    url: RedisConnectorUrl,
    options: ConnectorOptions,
  ) {
    this.displayUrl = url.redacted;
    this.prefix = url.prefix;
    this.scope = {
      where: url.redacted,
      policy: retryPolicy(options.retry),
      classify: redisClassifier(url.redacted, url.secrets, () => this.closed),
      log: options.log,
    };
  }

  /**
   * Connects to the server of `url` (`redis://` or `rediss://`, as for the connector) and reads the largest
   * value it accepts (`proto-max-bulk-len`; 512 MB when CONFIG is not allowed).
   *
   * @throws TC_ERR_INVALID_ARGUMENT for a bad URL; TC_ERR_AUTH for refused credentials; TC_ERR_BACKEND
   *   (retryable) when the server cannot be reached.
   */
  static async open(url: string, options: ConnectorOptions = {}): Promise<RedisPlainKeys> {
    const parsed = parseRedisConnectorUrl(url);
    const callTimeoutMs = positiveOption('callTimeoutMs', options.callTimeoutMs, DEFAULT_CONNECTOR_CALL_TIMEOUT_MS);
    let opened = false;
    const reconnect = (retries: number): number | false => (opened ? Math.min(100 * 2 ** Math.min(retries, 10), 2000) : false);
    const client = makeClient(parsed, Math.min(callTimeoutMs, 10_000), reconnect);
    client.on('error', () => undefined); // failures surface through the commands, classified
    const space = new RedisPlainKeys(client, parsed, options);
    try {
      await withRetries(space.scope, 'connect', async () => {
        if (!client.isOpen) await client.connect();
        await client.ping();
      });
      opened = true;
      const limit = await client.configGet('proto-max-bulk-len').then(
        (r) => Number(r['proto-max-bulk-len']),
        () => DEFAULT_MAX_VALUE_BYTES,
      );
      if (Number.isSafeInteger(limit) && limit > 0) space.valueLimit = limit;
      return space;
    } catch (error) {
      space.closed = true;
      if (client.isOpen) client.destroy();
      throw error;
    }
  }

  /** The largest value the server accepts, in bytes. */
  get maxValueBytes(): number {
    return this.valueLimit;
  }

  /** Every key that starts with `startsWith` (SCAN, all pages), sorted. */
  keys(startsWith: string): Promise<string[]> {
    return this.call(`list ${startsWith}`, async () => {
      const found = new Set<string>();
      for await (const batch of this.client.scanIterator({ MATCH: `${escapeGlob(startsWith)}*`, COUNT: 1000 })) {
        for (const k of batch) found.add(k);
      }
      return [...found].sort(compareUtf8);
    });
  }

  /** A new batch of writes, invisible until {@link RedisKeyBatch.commit}. */
  batch(): RedisKeyBatch {
    return new RedisKeyBatch(this);
  }

  /** Runs a Redis call with the connector's retries and error translation. */
  call<T>(op: string, fn: () => Promise<T>, attempts?: number): Promise<T> {
    if (this.closed) return Promise.reject(tcError('TC_ERR_ABORTED', `${this.displayUrl}: closed`));
    const scope = attempts === undefined ? this.scope : { ...this.scope, policy: { ...this.scope.policy, attempts } };
    return withRetries(scope, op, fn);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.client.isOpen) await this.client.close().catch(() => this.client.destroy());
  }
}

/** Writes staged under temporary keys, made visible together by {@link commit}. */
export class RedisKeyBatch {
  private readonly staging: string;
  /** Final key -> staged key. */
  private readonly staged = new Map<string, string>();
  private done = false;

  constructor(private readonly space: RedisPlainKeys) {
    const base = space.prefix === '' ? '' : `${space.prefix}/`;
    this.staging = `${base}.tc/s/${randomBytes(16).toString('hex')}/`;
  }

  /** The final keys written so far. */
  get keys(): readonly string[] {
    return [...this.staged.keys()];
  }

  /**
   * Stages `value` for `key` (a string is stored as its UTF-8 bytes). Setting a key twice keeps the last.
   *
   * @throws TC_ERR_INVALID_ARGUMENT for a value larger than the server accepts; TC_ERR_BACKEND, TC_ERR_AUTH
   */
  async set(key: string, value: Uint8Array | string): Promise<void> {
    if (this.done) throw tcError('TC_ERR_INTERNAL', `${this.space.displayUrl}: set after the batch ended`);
    const bytes = typeof value === 'string' ? Buffer.byteLength(value, 'utf8') : value.length;
    if (bytes > this.space.maxValueBytes) {
      throw tcError(
        'TC_ERR_INVALID_ARGUMENT',
        `${this.space.displayUrl}: the value of '${key}' is ${bytes} bytes, more than the server accepts (proto-max-bulk-len ${this.space.maxValueBytes})`,
        { details: { key, bytes, limit: this.space.maxValueBytes } },
      );
    }
    const temp = this.staged.get(key) ?? `${this.staging}${this.staged.size}`;
    this.staged.set(key, temp);
    const data = typeof value === 'string' ? value : Buffer.from(value.buffer, value.byteOffset, value.length);
    // SET with an expiry is idempotent: safe to retry after a lost reply.
    await this.space.call(`set ${key}`, () => this.space.client.set(temp, data, { PX: STAGED_TTL_MS }));
  }

  /**
   * Makes every staged value visible under its key and removes `obsolete` keys (those of them written by this
   * batch are kept), in one MULTI/EXEC. Tried once: a lost reply is not retried blindly.
   *
   * @throws TC_ERR_BACKEND when the server fails the transaction (a staged value expired or was evicted)
   */
  async commit(obsolete: readonly string[] = []): Promise<void> {
    if (this.done) throw tcError('TC_ERR_INTERNAL', `${this.space.displayUrl}: commit after the batch ended`);
    this.done = true;
    const remove = obsolete.filter((k) => !this.staged.has(k));
    const multi = this.space.client.multi();
    for (const [key, temp] of this.staged) multi.rename(temp, key).persist(key);
    if (remove.length > 0) multi.unlink(remove);
    try {
      await this.space.call('commit', () => multi.exec(), 1);
    } catch (error) {
      await this.dropStaged();
      throw error;
    }
  }

  /** Removes the staged values (nothing of the batch becomes visible). Safe to call more than once. */
  async discard(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.dropStaged();
  }

  private async dropStaged(): Promise<void> {
    const temps = [...this.staged.values()];
    for (let i = 0; i < temps.length; i += UNLINK_BATCH) {
      const part = temps.slice(i, i + UNLINK_BATCH);
      await this.space.call('discard', () => this.space.client.unlink(part)).catch(() => undefined);
    }
  }
}
