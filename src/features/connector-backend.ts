// The feature store on a connector (file://, redis://, s3://): objects are connector objects under the
// connector URL's prefix, versions are etags. No transactions, leases, TTL or namespace limits: the store
// writes tensors first and the manifest last, and checks limits and ages itself (best effort, per process).

import { mapLimit } from '../core/async.js';
import { isTensorcastError, tcError, type TensorcastError } from '../core/errors.js';
import type { Connector, WriteData } from '../connectors/connector.js';
import type {
  BackendDeleteResult,
  BackendObject,
  BackendPutItem,
  BackendPutOptions,
  BackendReadOptions,
  BackendUsage,
  BackendVersion,
  FeatureBackend,
  FeatureBackendCapabilities,
} from './feature-backend.js';

/** Writes (and deletes) kept in flight at once. */
const CONCURRENCY = 8;
/** Times a manifest read is tried again when the manifest is rewritten under it. */
const READ_ATTEMPTS = 3;

const CAPABILITIES: FeatureBackendCapabilities = {
  atomicCommit: false,
  leases: false,
  residentLimit: false,
  ttl: false,
  rangedReads: true,
  storeTokens: false,
};

/**
 * A {@link FeatureBackend} over a {@link Connector}. Closing it closes the connector.
 *
 * @example
 * const backend = new ConnectorFeatureBackend(await createConnector('redis://127.0.0.1:6379/features'));
 * const store = new FeatureStore('train', backend);
 */
export class ConnectorFeatureBackend implements FeatureBackend {
  readonly capabilities = CAPABILITIES;

  constructor(private readonly connector: Connector) {}

  get name(): string {
    return this.connector.displayUrl;
  }

  prepare(storeId: string, settings: { readonly token?: string; readonly maxBytes?: number }): Promise<void> {
    if (settings.token !== undefined)
      return Promise.reject(
        tcError(
          'TC_ERR_INVALID_ARGUMENT',
          `store '${storeId}' on ${this.name}: a connector has no store tokens (its own credentials guard it); drop the token option`,
        ),
      );
    return Promise.resolve();
  }

  async put(items: readonly BackendPutItem[], options: BackendPutOptions = {}): Promise<BackendVersion[]> {
    if (options.txn !== undefined) throw tcError('TC_ERR_INVALID_ARGUMENT', `${this.name}: connectors have no transactions`);
    const settled = await mapLimit(items, CONCURRENCY, async (item) => {
      try {
        const parts: readonly Uint8Array[] = item.data instanceof Uint8Array ? [item.data] : item.data;
        const size = parts.reduce((n, p) => n + p.length, 0);
        const data: WriteData = item.data instanceof Uint8Array ? item.data : pieces(parts);
        const info = await this.connector.write(item.key, data, { size });
        return { ok: true as const, version: info.etag };
      } catch (error) {
        return { ok: false as const, error };
      }
    });
    const failed = settled.find((s) => !s.ok);
    if (failed !== undefined && !failed.ok) throw failed.error;
    return settled.map((s) => (s.ok ? s.version : ''));
  }

  newTxn(): string {
    throw tcError('TC_ERR_INVALID_ARGUMENT', `${this.name}: connectors have no transactions`);
  }

  commit(): Promise<void> {
    return Promise.reject(tcError('TC_ERR_INVALID_ARGUMENT', `${this.name}: connectors have no transactions`));
  }

  abort(): Promise<void> {
    return Promise.resolve();
  }

  async read(key: string, maxBytes: number): Promise<{ data: Uint8Array; version: BackendVersion } | undefined> {
    for (let attempt = 1; ; attempt++) {
      const info = await this.stat(key);
      if (info === undefined) return undefined;
      if (info.size > maxBytes) throw tcError('TC_ERR_BACKEND', `${this.name}: ${key} has ${info.size} bytes, more than ${maxBytes}`);
      const data = Buffer.allocUnsafe(info.size);
      try {
        await this.connector.readInto(key, 0, data, { etag: String(info.version) });
        return { data, version: info.version };
      } catch (error) {
        // Rewritten or deleted between stat and read: look again.
        if (attempt < READ_ATTEMPTS && (isTensorcastError(error, 'TC_ERR_SOURCE_CHANGED') || isTensorcastError(error, 'TC_ERR_NOT_FOUND')))
          continue;
        throw error;
      }
    }
  }

  async readInto(key: string, offset: number, dest: Uint8Array, options: BackendReadOptions = {}): Promise<void> {
    try {
      await this.connector.readInto(key, offset, dest, options.version === undefined ? {} : { etag: String(options.version) });
    } catch (error) {
      throw await this.explainReadError(key, offset + dest.length, error);
    }
  }

  /**
   * A read failed: a deleted object (a retire or release racing the read) is TC_ERR_NOT_FOUND; one shorter
   * than the range is TC_ERR_SHORT_READ (truncated); one rewritten with other bytes TC_ERR_NOT_FOUND (stale).
   */
  private async explainReadError(key: string, end: number, error: unknown): Promise<unknown> {
    if (!isTensorcastError(error) || !['TC_ERR_SOURCE_CHANGED', 'TC_ERR_SHORT_READ', 'TC_ERR_NOT_FOUND'].includes(error.code)) return error;
    const now = await this.stat(key).catch(() => undefined);
    if (now === undefined) return stale(key, error);
    if (now.size < end)
      return error.code === 'TC_ERR_SHORT_READ'
        ? error
        : tcError('TC_ERR_SHORT_READ', `${this.name}: ${key} holds ${now.size} bytes, fewer than the ${end} the sample needs`, {
            cause: error,
            details: { key, size: now.size, expected: end },
          });
    return error.code === 'TC_ERR_SHORT_READ' ? error : stale(key, error);
  }

  async stat(key: string): Promise<BackendObject | undefined> {
    try {
      const info = await this.connector.stat(key);
      return { key, size: info.size, version: info.etag };
    } catch (error) {
      if (isTensorcastError(error, 'TC_ERR_NOT_FOUND')) return undefined;
      throw error;
    }
  }

  async delete(keys: readonly string[]): Promise<BackendDeleteResult[]> {
    return mapLimit(keys, CONCURRENCY, async (key) => {
      try {
        await this.connector.delete(key);
        return { key };
      } catch (error) {
        return { key, error: asTcError(error, key) };
      }
    });
  }

  async list(prefix: string): Promise<BackendObject[]> {
    return (await this.connector.list(prefix)).map((o) => ({ key: o.key, size: o.size, version: o.etag }));
  }

  usage(): Promise<BackendUsage | undefined> {
    return Promise.resolve(undefined);
  }

  close(): Promise<void> {
    return this.connector.close();
  }
}

/** `parts` as the stream a connector write takes. */
async function* pieces(parts: readonly Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) {
    await Promise.resolve();
    yield p;
  }
}

function stale(key: string, cause: unknown): TensorcastError {
  return tcError('TC_ERR_NOT_FOUND', `${key}: stale or released sample (the object was deleted or replaced)`, {
    cause,
    details: { key, reason: 'stale' },
  });
}

function asTcError(error: unknown, key: string): TensorcastError {
  return isTensorcastError(error) ? error : tcError('TC_ERR_BACKEND', `cannot delete ${key}: ${String(error)}`, { cause: error });
}
