// What the SDK's ObjectsClient takes and returns (docs/api.md, "Objects"): the options of puts and gets, the
// per-item status of batch calls, and the daemon's object and namespace descriptions as the control API
// sends them.

import type { TensorcastError } from '../core/errors.js';
import type { NamespaceInfo, NamespaceSettings, ObjectMeta } from '../protocol/http/objects.js';

export type { NamespaceInfo, NamespaceSettings, ObjectMeta };

/** How an object's bytes travel: 'tcp' (the data plane), 'shm' (same host: a tmpfs file), 'auto' (shm when the daemon is on this host and the object is >= 1 MiB). */
export type ObjectTransport = 'auto' | 'tcp' | 'shm';

/** Options of {@link ObjectsClient.put}. */
export interface PutOptions {
  /** Park the put in this transaction (see {@link ObjectsClient.newTxn}): invisible until {@link ObjectsClient.commit}. */
  readonly txn?: string;
  /** A condition: the key's current version must be this; null: the key must not exist. Else TC_ERR_CONFLICT. */
  readonly ifVersion?: number | null;
  /** The object expires (is deleted) this long after it is committed. */
  readonly ttlMs?: number;
  /** Wait (up to the deadline) for room in the namespace / the daemon's object memory instead of failing. */
  readonly waitForRoom?: boolean;
  /** Deadline of the put, in ms (default: the client's timeoutMs). */
  readonly timeoutMs?: number;
  /** Default 'auto'. */
  readonly transport?: ObjectTransport;
  /** Cancels the put (it is then never reported done; one whose last byte was sent may still commit). */
  readonly signal?: AbortSignal;
}

/** Options of {@link ObjectsClient.get}. */
export interface GetOptions {
  /** A buffer exactly the object's size to read into (larger: TC_ERR_SHORT_READ; smaller: TC_ERR_DESTINATION_SIZE). */
  readonly into?: Uint8Array;
  /** Deadline of the get, in ms (default: the client's timeoutMs). */
  readonly timeoutMs?: number;
  /** Default 'auto'. */
  readonly transport?: ObjectTransport;
  readonly signal?: AbortSignal;
}

/** A stored object. */
export interface PutResult {
  readonly key: string;
  readonly bytes: number;
  /** The object's version (or the version it will have once its transaction commits): its fencing token. */
  readonly version: number;
}

/** A read object. */
export interface GetResult extends PutResult {
  /** The object's bytes: `into` when given, else a new buffer. */
  readonly data: Uint8Array;
}

/** One item's outcome in a batch call: never thrown, one per item, in the items' order. */
export type ItemResult<T> =
  | { readonly key: string; readonly ok: true; readonly value: T }
  | { readonly key: string; readonly ok: false; readonly error: TensorcastError };

/** Options of the batch calls. */
export interface BatchOptions {
  /** Items in flight at once (default: the client's `connections`). */
  readonly concurrency?: number;
  /** Cancels the items not finished (they report the abort as their error). */
  readonly signal?: AbortSignal;
}

/** Where an object's bytes live on the daemon. */
export type ObjectTier = 'memory' | 'shm' | 'disk';

/** Options of {@link ObjectsClient.list}. */
export interface ListOptions {
  /** Start after this key. */
  readonly after?: string;
  /** At most this many objects (default: all). */
  readonly limit?: number;
}

/** A condition of a transaction's commit: the key's version must be `ifVersion` (null: absent). */
export interface CommitCondition {
  readonly key: string;
  readonly ifVersion: number | null;
}

/** Options of {@link TensorcastClient.objects}. */
export interface ObjectsOptions {
  /** The store token of the namespaces this client uses (sent with every request). */
  readonly storeToken?: string;
}
