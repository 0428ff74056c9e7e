// The FeatureBackend interface: the few object operations the feature store needs, so one FeatureStore runs
// on the daemon (the SDK's ObjectsClient, src/client/feature-backend.ts) and on any connector
// (ConnectorFeatureBackend). Capabilities say which guarantees a backend gives; the store adapts to them.

import type { TensorcastError } from '../core/errors.js';

/** A backend's version of an object: the daemon's fencing token (number) or a connector's etag (string). */
export type BackendVersion = number | string;

/** One object as stat/list see it. */
export interface BackendObject {
  readonly key: string;
  readonly size: number;
  readonly version: BackendVersion;
}

/**
 * What a backend guarantees.
 *
 * | capability       | daemon (ObjectsClient)                               | connectors (file/redis/s3)            |
 * | ---------------- | ---------------------------------------------------- | ------------------------------------- |
 * | atomicCommit     | yes: puts park in a txn, commit checks conditions    | no: objects visible as each is written |
 * | leases           | yes: reads are fenced, deletes never wait for them   | no: a delete may cut a read short     |
 * | residentLimit    | yes: the namespace's maxBytes, across processes      | no: the store checks from a listing   |
 * | ttl              | yes: ttlMs on a put, a sweep deletes expired objects | no: gc() deletes old samples          |
 * | rangedReads      | no: a read is the whole object                       | yes: readInto at any offset           |
 * | storeTokens      | yes: the namespace's token, checked on every call    | no: the connector's own credentials   |
 */
export interface FeatureBackendCapabilities {
  readonly atomicCommit: boolean;
  readonly leases: boolean;
  readonly residentLimit: boolean;
  readonly ttl: boolean;
  readonly rangedReads: boolean;
  readonly storeTokens: boolean;
}

/** One object to put. */
export interface BackendPutItem {
  readonly key: string;
  /** The bytes, or pieces written back to back (a packed sample: header then each tensor). */
  readonly data: Uint8Array | readonly Uint8Array[];
  /** atomicCommit only: a condition of the txn (current version must equal it; null: key must be absent). */
  readonly ifVersion?: BackendVersion | null;
}

/** Options of {@link FeatureBackend.put}. */
export interface BackendPutOptions {
  /** atomicCommit only: park the puts in this transaction. */
  readonly txn?: string;
  /** ttl only: the objects expire this long after the put. */
  readonly ttlMs?: number;
  /** residentLimit only: wait this long for room instead of failing with TC_ERR_BACKPRESSURE. */
  readonly waitForRoomMs?: number;
  readonly timeoutMs?: number;
}

/** Options of {@link FeatureBackend.readInto}. */
export interface BackendReadOptions {
  /** The version the caller expects: a different object at the key fails with TC_ERR_NOT_FOUND. */
  readonly version?: BackendVersion;
  readonly timeoutMs?: number;
}

/** What a namespace-aware backend reports of a store. */
export interface BackendUsage {
  readonly objects: number;
  readonly residentBytes: number;
  readonly maxBytes: number | null;
  /** Deleted objects whose bytes a read still holds. */
  readonly pendingFrees: number;
}

/** The outcome of deleting one key. */
export interface BackendDeleteResult {
  readonly key: string;
  /** Absent when the key is gone (or never existed). */
  readonly error?: TensorcastError;
}

/**
 * The object operations of the feature store.
 *
 * @example
 * const backend = new ConnectorFeatureBackend(await createConnector('file:///tmp/features'));
 * const store = new FeatureStore('train', backend, { layout: 'packed' });
 */
export interface FeatureBackend {
  /** For messages: 'daemon', or the connector's redacted URL. */
  readonly name: string;
  readonly capabilities: FeatureBackendCapabilities;
  /**
   * Daemon backends: the id of the daemon that holds the objects. The store stamps it on every ref it makes
   * (`SampleRef.daemonId`), so a store on another daemon of the cluster knows where to read.
   */
  readonly daemonId?: string | undefined;
  /**
   * Daemon backends in a cluster: a backend on the daemon `daemonId` of the same cluster (found through this
   * daemon's catalog, reached with the same cluster token), for refs put there. The caller keeps it.
   *
   * @throws TC_ERR_UNAVAILABLE (retryable: that daemon is not listed alive, or does not answer)
   */
  remote?(daemonId: string): Promise<FeatureBackend>;
  /**
   * Prepares the store's namespace before its first write: the daemon creates or updates it with the token
   * and maxBytes given (undefined fields stay as they are); connectors refuse a token (they have none).
   *
   * @throws TC_ERR_AUTH (daemon: the namespace has another token); TC_ERR_INVALID_ARGUMENT
   */
  prepare(storeId: string, settings: { readonly token?: string; readonly maxBytes?: number }): Promise<void>;
  /**
   * Puts objects (pipelined) and resolves with their versions in order, or rejects with the first failure
   * once every put settled. Without a txn, the ones that succeeded stay: the caller cleans them up.
   *
   * @throws TC_ERR_BACKPRESSURE, TC_ERR_BUDGET, TC_ERR_AUTH, TC_ERR_CONFLICT, TC_ERR_TIMEOUT, TC_ERR_BACKEND
   */
  put(items: readonly BackendPutItem[], options?: BackendPutOptions): Promise<BackendVersion[]>;
  /** A fresh transaction id. @throws TC_ERR_INVALID_ARGUMENT when not atomicCommit */
  newTxn(): string;
  /** Makes every put of `txn` visible at once if every condition holds. @throws TC_ERR_CONFLICT (nothing visible) */
  commit(txn: string, conditions: readonly { readonly key: string; readonly ifVersion: BackendVersion | null }[]): Promise<void>;
  /** Drops a transaction's puts (idempotent). */
  abort(txn: string): Promise<void>;
  /** A whole small object (manifests), or undefined when the key does not exist. */
  read(key: string, maxBytes: number): Promise<{ data: Uint8Array; version: BackendVersion } | undefined>;
  /**
   * Reads exactly `dest.length` bytes at `offset` into `dest`. Without rangedReads, `offset` is 0 and `dest`
   * is the whole object. On any error `dest` holds no valid bytes.
   *
   * @throws TC_ERR_NOT_FOUND (missing, or not `options.version` any more); TC_ERR_SHORT_READ (the object ends
   *   first); TC_ERR_DESTINATION_SIZE (the object is larger than `dest`, whole-object backends)
   */
  readInto(key: string, offset: number, dest: Uint8Array, options?: BackendReadOptions): Promise<void>;
  stat(key: string): Promise<BackendObject | undefined>;
  /** Deletes keys; one result per key, in order (a missing key is no error). */
  delete(keys: readonly string[]): Promise<BackendDeleteResult[]>;
  /** Every object whose key starts with `prefix`, ordered by key. */
  list(prefix: string): Promise<BackendObject[]>;
  /** The namespace's counters (daemon), or undefined when the backend has none (connectors). */
  usage(storeId: string): Promise<BackendUsage | undefined>;
  close(): Promise<void>;
}
