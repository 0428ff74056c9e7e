// The daemon's object store as the data plane, the control routes and the shm hand-off see it (docs/api.md,
// "Objects"). Implemented by ObjectStore (object-store.ts); the daemon's handlers depend on this shape only.

import type { NamespaceInfo, NamespaceSettings, ObjectMeta, ObjectTier } from '../../protocol/http/objects.js';

export type { NamespaceInfo, NamespaceSettings, ObjectMeta, ObjectTier };

/** What a put asks for (from a PUT frame or an shm-put request). */
export interface PutRequest {
  readonly key: string;
  readonly size: number;
  readonly storeToken?: string | undefined;
  /** CRC32C of the whole object, checked when the last byte landed. */
  readonly crc?: number | undefined;
  /** Park the put in this transaction until {@link ObjectStoreApi.commitTxn}. */
  readonly txn?: string | undefined;
  /** A condition: current version must equal it; null: the key must be absent. */
  readonly ifVersion?: number | null | undefined;
  readonly ttlMs?: number | undefined;
  /** Wait (up to `deadline`) for room instead of failing with TC_ERR_BACKPRESSURE / TC_ERR_BUDGET. */
  readonly waitForRoom?: boolean | undefined;
  /** Unix ms. */
  readonly deadline: number;
  /** Where the bytes should land: `shm` asks for a tmpfs segment file (same-host put). Default memory (or disk when spilling). */
  readonly placement?: 'default' | 'shm';
}

/** A put whose room is reserved and whose bytes are landing. Invisible until it commits. */
export interface PendingPut {
  readonly id: string;
  readonly key: string;
  readonly size: number;
  readonly tier: ObjectTier;
  /** shm placement: the segment file the client writes into. */
  readonly path: string | undefined;
  /**
   * The memory `[offset, offset + length)` of the object where received bytes should land (memory and
   * shm tiers), or undefined for disk (then use {@link write}).
   */
  target(offset: number, length: number): Uint8Array | undefined;
  /** Writes received bytes at `offset` (disk tier; also works for the others). */
  write(offset: number, bytes: Uint8Array): Promise<void>;
  /**
   * All bytes landed: checks `crc` (CRC32C of the whole object; when undefined the store computes it),
   * then commits (no txn) or parks in the txn. Resolves with the version the object has (or will have once
   * the txn commits).
   *
   * @throws TC_ERR_CHECKSUM, TC_ERR_CONFLICT (condition failed; nothing visible), TC_ERR_NOT_FOUND (txn gone)
   */
  finish(crc?: number): Promise<{ version: number }>;
  /** Drops the put and frees its room (idempotent). */
  abort(): void;
}

/** A read in progress: pinned by version (fence). Never blocks a delete. */
export interface ReadLease {
  readonly key: string;
  readonly size: number;
  readonly version: number;
  readonly crc: number;
  readonly tier: ObjectTier;
  /** shm tier: the segment file a same-host client may copy from. */
  readonly path: string | undefined;
  /**
   * Bytes `[offset, offset + length)`: a view of memory (memory/shm) or read from disk into `scratch`.
   * Call {@link done} for each chunk once it is sent (the bytes may be freed after that).
   *
   * @throws TC_ERR_NOT_FOUND when the object was deleted or replaced since the lease began (fenced)
   */
  chunk(offset: number, length: number, scratch?: Uint8Array): Promise<Uint8Array>;
  /** The chunk handed out by the last {@link chunk} has been sent: a pending free may proceed. */
  done(): void;
  /** Ends the lease (idempotent). */
  release(): void;
}

/** One item's outcome of a batch operation. */
export type DeleteResult =
  | { readonly key: string; readonly ok: true; readonly existed: boolean }
  | { readonly key: string; readonly ok: false; readonly code: string; readonly message: string };

/** The object store. */
export interface ObjectStoreApi {
  /** @throws TC_ERR_INVALID_ARGUMENT, TC_ERR_AUTH, TC_ERR_BACKPRESSURE, TC_ERR_BUDGET, TC_ERR_CONFLICT, TC_ERR_TIMEOUT */
  beginPut(request: PutRequest): Promise<PendingPut>;
  /** @throws TC_ERR_NOT_FOUND, TC_ERR_OBJECT_LOST, TC_ERR_AUTH */
  openRead(key: string, storeToken: string | undefined, deadline: number): ReadLease;
  /** @throws TC_ERR_CONFLICT (nothing visible), TC_ERR_NOT_FOUND (txn unknown or expired), TC_ERR_AUTH */
  commitTxn(
    txn: string,
    conditions: readonly { key: string; ifVersion: number | null }[],
    storeToken: string | undefined,
  ): Record<string, number>;
  abortTxn(txn: string): void;
  /** Logical at once; physical as soon as no read is copying. @throws TC_ERR_AUTH per item (as a result, not thrown) */
  delete(keys: readonly string[], storeToken: string | undefined): DeleteResult[];
  /** @throws TC_ERR_NOT_FOUND, TC_ERR_OBJECT_LOST, TC_ERR_AUTH */
  stat(key: string, storeToken: string | undefined): ObjectMeta;
  /** Ordered by key (UTF-8 bytes); objects of namespaces whose token was not given are left out. */
  list(
    prefix: string,
    options: { after?: string; limit?: number; storeToken?: string | undefined },
  ): { objects: ObjectMeta[]; next: string | null };
  /** Creates or changes a namespace. @throws TC_ERR_AUTH when it has a token and `storeToken` differs */
  configureNamespace(namespace: string, settings: NamespaceSettings, storeToken: string | undefined): NamespaceInfo;
  /** @throws TC_ERR_NOT_FOUND, TC_ERR_AUTH */
  namespaceInfo(namespace: string, storeToken: string | undefined): NamespaceInfo;
  namespaces(): NamespaceInfo[];
}
