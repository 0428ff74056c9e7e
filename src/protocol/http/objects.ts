// Contracts of the object routes (docs/api.md, "Objects"): listing, stat, delete, transactions, namespaces,
// and the same-host shm hand-off (shm-puts, shm-gets). The store token of a namespace travels in the
// `x-tensorcast-store-token` header, next to the daemon's bearer token.

import { z } from 'zod';

/** The header carrying a namespace's store token. */
export const STORE_TOKEN_HEADER = 'x-tensorcast-store-token';

/** Longest list page. */
export const MAX_LIST_LIMIT = 10_000;
/** Most keys one delete may name. */
export const MAX_DELETE_KEYS = 10_000;

const key = z.string().min(3).max(2048);
const bytes = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const version = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const txn = z.string().min(1).max(128);
const crc = z.number().int().nonnegative().max(0xffffffff);

/** An object as stat and list report it (the store's, the wire's and the SDK's one shape). Never grants a lease. */
export interface ObjectMeta {
  readonly key: string;
  readonly size: number;
  readonly version: number;
  /** CRC32C of the whole object. */
  readonly crc: number;
  readonly tier: ObjectTier;
  /** Unix ms. */
  readonly createdAt: number;
  readonly expiresAt: number | null;
  /** Committed in memory before a restart: its bytes are gone. */
  readonly lost?: boolean;
}

/** GET /v1/objects?prefix=&after=&limit=: one page, ordered by key; `next` is the `after` of the next page. */
export interface ObjectList {
  readonly objects: readonly ObjectMeta[];
  readonly next: string | null;
}

/** The query of GET /v1/objects. */
export const listObjectsQuery = z
  .object({
    prefix: z.string().max(2048).optional(),
    after: z.string().max(2048).optional(),
    limit: z.coerce.number().int().positive().max(MAX_LIST_LIMIT).optional(),
  })
  .strict();

/** POST /v1/objects/delete. */
export const deleteObjectsRequest = z.object({ keys: z.array(z.string().max(2048)).min(1).max(MAX_DELETE_KEYS) }).strict();
/** The body of POST /v1/objects/delete. */
export type DeleteObjectsRequest = z.infer<typeof deleteObjectsRequest>;

/** One key's outcome of a delete: deleting a missing key is ok with `existed: false`. */
export type DeleteObjectResult =
  | { readonly key: string; readonly ok: true; readonly existed: boolean }
  | { readonly key: string; readonly ok: false; readonly code: string; readonly message: string };

/** The answer of POST /v1/objects/delete: one result per key, in order. */
export interface DeleteObjectsResponse {
  readonly results: readonly DeleteObjectResult[];
}

/** A commit condition: the key's current version must be `ifVersion` (null: the key must be absent). */
export const commitCondition = z.object({ key, ifVersion: version.nullable() }).strict();

/** POST /v1/objects/commit: make every put of `txn` visible at once, if every condition holds. */
export const commitRequest = z.object({ txn, conditions: z.array(commitCondition).max(MAX_DELETE_KEYS).default([]) }).strict();
/** The body of POST /v1/objects/commit. */
export type CommitRequest = z.input<typeof commitRequest>;

/** The answer of POST /v1/objects/commit: the version each key of the transaction now has. */
export interface CommitResponse {
  readonly versions: Readonly<Record<string, number>>;
}

/** POST /v1/objects/abort. */
export const abortRequest = z.object({ txn }).strict();

/** PUT /v1/namespaces/:ns: create or change (a token change needs the old token in the header). */
export const namespaceRequest = z
  .object({ token: z.string().min(1).max(4096).nullable().optional(), maxBytes: bytes.nullable().optional() })
  .strict();
/** The body of PUT /v1/namespaces/:ns. */
export type NamespaceRequest = z.infer<typeof namespaceRequest>;

/** Where an object's bytes live. */
export type ObjectTier = 'memory' | 'shm' | 'disk';

/** Settings of a namespace. */
export interface NamespaceSettings {
  /** The namespace's store token (null removes it; changing it needs the old one). */
  readonly token?: string | null;
  /** Resident-bytes limit (null removes it). */
  readonly maxBytes?: number | null;
}

/** A namespace, its settings and its counters. */
export interface NamespaceInfo {
  readonly namespace: string;
  readonly hasToken: boolean;
  readonly maxBytes: number | null;
  readonly objects: number;
  /** Committed + pending bytes not yet freed: what maxBytes limits. */
  readonly residentBytes: number;
  readonly memoryBytes: number;
  readonly shmBytes: number;
  readonly diskBytes: number;
  readonly pendingPuts: number;
  readonly pendingBytes: number;
  /** Deleted objects whose bytes are not freed yet (a read still copying). */
  readonly pendingFrees: number;
  readonly lost: number;
  readonly openTxns: number;
}

/** GET /v1/namespaces. */
export interface NamespaceList {
  readonly namespaces: readonly NamespaceInfo[];
}

/** POST /v1/objects/shm-puts: lease a segment file on the daemon's host to write an object into. */
export const shmPutRequest = z
  .object({
    key,
    size: bytes,
    txn: txn.optional(),
    ifVersion: version.nullable().optional(),
    ttlMs: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional(),
    waitForRoom: z.boolean().optional(),
    timeoutMs: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional(),
  })
  .strict();
/** The body of POST /v1/objects/shm-puts. */
export type ShmPutRequest = z.infer<typeof shmPutRequest>;

/** The answer of POST /v1/objects/shm-puts: write `size` bytes into the file at `path`, then commit before `expiresAt`. */
export interface ShmPutResponse {
  readonly putId: string;
  readonly path: string;
  readonly size: number;
  /** Unix ms: an uncommitted put is aborted then. */
  readonly expiresAt: number;
}

/** POST /v1/objects/shm-puts/:putId/commit: the CRC32C of the bytes written. */
export const shmPutCommitRequest = z.object({ crc }).strict();

/** The answer of POST /v1/objects/shm-puts/:putId/commit (with a txn: the version it gets once the txn commits). */
export interface ShmPutCommitResponse {
  readonly key: string;
  readonly version: number;
  readonly bytes: number;
}

/** POST /v1/objects/shm-gets: lease the segment file an object lives in (tier shm only). */
export const shmGetRequest = z.object({ key, expectBytes: bytes.optional() }).strict();
/** The body of POST /v1/objects/shm-gets. */
export type ShmGetRequest = z.infer<typeof shmGetRequest>;

/** The answer of POST /v1/objects/shm-gets: copy `size` bytes out of `path`, check `crc`, then release. */
export interface ShmGetResponse {
  readonly leaseId: string;
  readonly path: string;
  readonly size: number;
  readonly version: number;
  readonly crc: number;
  /** Unix ms: the lease ends on its own then. */
  readonly expiresAt: number;
}

/** The path of an object's stat (keys are URL-encoded in the query). */
export const objectStatPath = (k: string): string => `/v1/objects/stat?key=${encodeURIComponent(k)}`;
/** The path of a namespace's route. */
export const namespacePath = (ns: string): string => `/v1/namespaces/${encodeURIComponent(ns)}`;
