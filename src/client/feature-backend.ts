// The feature store on the daemon: a FeatureBackend over the SDK's ObjectsClient. Transactions with a
// conditional commit (atomic samples), fenced reads, the namespace's maxBytes and token, TTL, all enforced
// by the daemon; a read is always the whole object (get-into), its version checked against the ref's fence.

import { randomUUID } from 'node:crypto';
import { isTensorcastError, tcError } from '../core/errors.js';
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
} from '../features/feature-backend.js';
import type { ObjectsClient } from './objects.js';

const CAPABILITIES: FeatureBackendCapabilities = {
  atomicCommit: true,
  leases: true,
  residentLimit: true,
  ttl: true,
  rangedReads: false,
  storeTokens: true,
};

/** Deadline of a put that may wait for room, past the wait itself, when no timeoutMs is given. */
const TRANSFER_MS = 60_000;

/** Where a daemon backend sits in its cluster: its daemon's id and how to reach the other daemons' objects. */
export interface DaemonPlace {
  /** The id of the daemon the objects client talks to. */
  readonly daemonId: string;
  /**
   * The objects client (same store token) of another daemon of the cluster.
   *
   * @throws TC_ERR_UNAVAILABLE (retryable)
   */
  peerObjects(daemonId: string): Promise<ObjectsClient>;
  /** Forgets a peer whose connection failed, so the next call finds it again (it may have moved). */
  forgetPeer(daemonId: string): void;
}

/**
 * A {@link FeatureBackend} on the daemon's objects. Made by {@link TensorcastClient.features}; closing it
 * leaves the client open.
 *
 * @example const store = new FeatureStore('train', new DaemonFeatureBackend(client.objects({ storeToken })));
 */
export class DaemonFeatureBackend implements FeatureBackend {
  readonly capabilities = CAPABILITIES;

  readonly name: string;
  readonly daemonId: string | undefined;

  /**
   * @param source the objects client, or (a peer daemon's backend) a function resolving it on every call
   * @param place where the daemon sits in its cluster (refs get its id; refs of other daemons are read there)
   */
  constructor(
    private readonly source: ObjectsClient | (() => Promise<ObjectsClient>),
    private readonly place?: DaemonPlace,
  ) {
    this.daemonId = place?.daemonId;
    this.name = typeof source === 'function' && place !== undefined ? `daemon ${place.daemonId}` : 'daemon';
  }

  /**
   * A backend on another daemon of the cluster: its objects client is found through this daemon's catalog
   * (resolved here once, so an unreachable daemon fails now) and found again after a connection failure (a
   * restarted daemon listens on new ports).
   *
   * @throws TC_ERR_UNAVAILABLE
   */
  async remote(daemonId: string): Promise<FeatureBackend> {
    const place = this.place;
    if (place === undefined) throw tcError('TC_ERR_UNAVAILABLE', `daemon '${daemonId}': this store knows no cluster`);
    await place.peerObjects(daemonId);
    return new DaemonFeatureBackend(() => place.peerObjects(daemonId), { ...place, daemonId });
  }

  /** The objects client; a peer's is forgotten when its connection fails. */
  private async with<T>(op: (objects: ObjectsClient) => Promise<T>): Promise<T> {
    const source = this.source;
    if (typeof source !== 'function') return op(source);
    try {
      return await op(await source());
    } catch (error) {
      if (isTensorcastError(error, 'TC_ERR_UNAVAILABLE') && this.place !== undefined) this.place.forgetPeer(this.place.daemonId);
      throw error;
    }
  }

  async prepare(storeId: string, settings: { readonly token?: string; readonly maxBytes?: number }): Promise<void> {
    if (settings.token === undefined && settings.maxBytes === undefined) return;
    await this.with((o) => o.ensureNamespace(storeId, settings));
  }

  async put(items: readonly BackendPutItem[], options: BackendPutOptions = {}): Promise<BackendVersion[]> {
    const wait = options.waitForRoomMs !== undefined && options.waitForRoomMs > 0;
    const timeoutMs = wait ? options.waitForRoomMs + (options.timeoutMs ?? TRANSFER_MS) : options.timeoutMs;
    const results = await this.with((o) =>
      o.putMany(
        items.map((i) => ({
          key: i.key,
          data: i.data instanceof Uint8Array ? i.data : Buffer.concat(i.data),
          ...(i.ifVersion === undefined ? {} : { ifVersion: daemonVersion(i.ifVersion) }),
        })),
        {
          ...(options.txn === undefined ? {} : { txn: options.txn }),
          ...(options.ttlMs === undefined ? {} : { ttlMs: options.ttlMs }),
          ...(wait ? { waitForRoom: true } : {}),
          ...(timeoutMs === undefined ? {} : { timeoutMs }),
        },
      ),
    );
    const failed = results.find((r) => !r.ok);
    if (failed !== undefined && !failed.ok) throw failed.error;
    return results.map((r) => (r.ok ? r.value.version : 0));
  }

  newTxn(): string {
    return `txn-${randomUUID()}`;
  }

  async commit(txn: string, conditions: readonly { readonly key: string; readonly ifVersion: BackendVersion | null }[]): Promise<void> {
    await this.with((o) =>
      o.commit(
        txn,
        conditions.map((c) => ({ key: c.key, ifVersion: daemonVersion(c.ifVersion) })),
      ),
    );
  }

  abort(txn: string): Promise<void> {
    return this.with((o) => o.abort(txn));
  }

  async read(key: string, maxBytes: number): Promise<{ data: Uint8Array; version: BackendVersion } | undefined> {
    let r;
    try {
      // Manifests are small: TCP (no shm round trip), one request.
      r = await this.with((o) => o.get(key, { transport: 'tcp' }));
    } catch (error) {
      if (isTensorcastError(error, 'TC_ERR_NOT_FOUND')) return undefined;
      throw error;
    }
    if (r.data.length > maxBytes) throw tcError('TC_ERR_BACKEND', `daemon: ${key} has ${r.data.length} bytes, more than ${maxBytes}`);
    return { data: r.data, version: r.version };
  }

  async readInto(key: string, offset: number, dest: Uint8Array, options: BackendReadOptions = {}): Promise<void> {
    if (offset !== 0) throw tcError('TC_ERR_INVALID_ARGUMENT', `daemon: objects are read whole (offset ${offset} of ${key})`);
    const r = await this.with((o) =>
      o.get(key, { into: dest, ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }) }),
    );
    if (options.version !== undefined && r.version !== options.version)
      throw tcError('TC_ERR_NOT_FOUND', `${key}: stale or released sample (version ${r.version}, the ref holds ${options.version})`, {
        details: { key, reason: 'stale' },
      });
  }

  async stat(key: string): Promise<BackendObject | undefined> {
    const m = await this.with((o) => o.stat(key));
    return m === undefined ? undefined : { key: m.key, size: m.size, version: m.version };
  }

  async delete(keys: readonly string[]): Promise<BackendDeleteResult[]> {
    if (keys.length === 0) return [];
    return (await this.with((o) => o.delete(keys))).map((r) => (r.ok ? { key: r.key } : { key: r.key, error: r.error }));
  }

  async list(prefix: string): Promise<BackendObject[]> {
    return (await this.with((o) => o.list(prefix))).map((m) => ({ key: m.key, size: m.size, version: m.version }));
  }

  async usage(storeId: string): Promise<BackendUsage | undefined> {
    try {
      const info = await this.with((o) => o.namespaceInfo(storeId));
      return { objects: info.objects, residentBytes: info.residentBytes, maxBytes: info.maxBytes, pendingFrees: info.pendingFrees };
    } catch (error) {
      if (isTensorcastError(error, 'TC_ERR_NOT_FOUND')) return undefined;
      throw error;
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A daemon version: a number (a connector's etag has no meaning here). */
function daemonVersion(v: BackendVersion | null): number | null {
  if (v === null || typeof v === 'number') return v;
  throw tcError('TC_ERR_INVALID_ARGUMENT', `daemon versions are numbers, got '${v}'`);
}
