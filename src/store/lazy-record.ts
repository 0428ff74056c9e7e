// What the daemon keeps about a lazy artifact (one whose tensor bytes stay in a connector): in
// `<data-dir>/artifacts/tcl-<hex>/`, `lazy.json` (the remote objects' keys, sizes and etags, the canonical
// index with each tensor's place in its shard object, the kept files, the redacted source URL, and the
// content id once verified) and `connector-url` (the URL with its credentials, mode 0600: never in the
// catalog, never in a log). Also the lazy artifact id, which claims only what was read: the index, the
// objects' versions and the kept files, never a hash of tensor bytes it did not compute.

import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isDtype, type Dtype } from '../core/dtypes.js';
import { tcError, wrapIoError } from '../core/errors.js';
import { sha256Hex } from '../core/hashing.js';
import { compareUtf8 } from '../core/strings.js';
import { buildCanonicalIndex, type CanonicalIndex } from '../layout/canonical-index.js';
import type { ObjectInfo } from '../connectors/connector.js';

/** The prefix of lazy artifact ids (content ids are `tc1:`). */
export const LAZY_ID_PREFIX = 'tcl:';
/** The descriptor's file name in a lazy artifact's folder. */
export const LAZY_FILE = 'lazy.json';
/** The file holding the connector URL with its credentials (mode 0600). */
export const URL_FILE = 'connector-url';

/** What a `tensorcast verify` of a lazy artifact found. */
export interface LazyVerification {
  /** The content id (`tc1:...`) of the bytes read: what a full import of them would be called. */
  readonly contentId: string;
  readonly dataHash: string;
  readonly verifiedAt: number;
}

/** A tensor row of the descriptor: name, dtype, shape, byte length, shard number, position in the shard. */
export type LazyTensorRow = readonly [string, Dtype, readonly number[], number, number, number];

/** The descriptor of a lazy artifact (`lazy.json`). */
export interface LazyRecord {
  readonly v: 1;
  readonly artifactId: string;
  /** The connector URL with its credentials redacted. */
  readonly source: string;
  /** The shard objects and the index object, by key: what the artifact's bytes come from. */
  readonly objects: readonly ObjectInfo[];
  /** The shards in the canonical index's shard order. */
  readonly shards: readonly ObjectInfo[];
  readonly indexHash: string;
  readonly tensors: readonly LazyTensorRow[];
  readonly metadata: Readonly<Record<string, string>>;
  /** Files kept in the folder (config, tokenizer), as in the catalog. */
  readonly files: readonly string[];
  readonly filesHash: string | undefined;
  readonly createdAt: number;
  readonly verified?: LazyVerification;
}

/** SHA-256 of the objects' keys, sizes and etags (sorted by key). */
export function objectsHashOf(objects: readonly ObjectInfo[]): string {
  const rows = [...objects].sort((a, b) => compareUtf8(a.key, b.key)).map((o) => JSON.stringify([o.key, o.size, o.etag]));
  return sha256Hex(`{"v":1,"objects":[${rows.join(',')}]}`);
}

/**
 * The id of a lazy artifact: `tcl:` + SHA-256 over the canonical index hash, the objects' versions
 * ({@link objectsHashOf}) and the kept files' hash. The same objects at the same versions give the same id
 * wherever they are read from; a rewritten object gives another.
 */
export function lazyIdOf(indexHash: string, objectsHash: string, filesHash: string | undefined): string {
  return `${LAZY_ID_PREFIX}${sha256Hex(`tensorcast-lazy-v1\n${indexHash}\n${objectsHash}${filesHash === undefined ? '' : `\n${filesHash}`}`)}`;
}

/** True for a lazy artifact id. */
export const isLazyId = (artifactId: string): boolean => artifactId.startsWith(LAZY_ID_PREFIX);

/** The descriptor's tensor rows of a canonical index. */
export function tensorRows(index: CanonicalIndex): LazyTensorRow[] {
  return index.tensors.map((t) => [t.name, t.dtype, t.shape, t.byteLength, t.shard, t.filePosition] as const);
}

/**
 * The canonical index a descriptor describes (placement: shard objects), checked against its index hash.
 *
 * @throws TC_ERR_INTERNAL when the rows do not give the recorded hash (a damaged descriptor)
 */
export function indexOfRecord(record: LazyRecord): CanonicalIndex {
  const index = buildCanonicalIndex(
    record.tensors.map(([name, dtype, shape, byteLength, shard, filePosition]) => {
      if (!isDtype(dtype)) throw tcError('TC_ERR_INTERNAL', `${record.artifactId}: lazy.json names dtype '${String(dtype)}'`);
      return { name, dtype, shape, byteLength, shard, filePosition };
    }),
    record.shards.map((s) => ({ file: s.key, fileByteLength: s.size })),
    record.metadata,
  );
  if (index.indexHash !== record.indexHash) {
    throw tcError('TC_ERR_INTERNAL', `${record.artifactId}: lazy.json does not give its recorded index hash (damaged?)`);
  }
  return index;
}

/** Writes the descriptor and the URL file into `dir` (both mode 0600). */
export async function writeLazyFiles(dir: string, record: LazyRecord, url: string): Promise<void> {
  await writeFile(join(dir, URL_FILE), url, { mode: 0o600 });
  await writeFile(join(dir, LAZY_FILE), `${JSON.stringify(record)}\n`, { mode: 0o600 });
}

/** Replaces the descriptor in `dir` atomically (a verification recorded). */
export async function rewriteLazyRecord(dir: string, record: LazyRecord): Promise<void> {
  const tmp = join(dir, `${LAZY_FILE}.tmp`);
  await writeFile(tmp, `${JSON.stringify(record)}\n`, { mode: 0o600 });
  await rename(tmp, join(dir, LAZY_FILE));
}

/**
 * Reads the descriptor and the URL of the lazy artifact in `dir`.
 *
 * @throws TC_ERR_NOT_FOUND when the folder has none; TC_ERR_INTERNAL when it is damaged
 */
export async function readLazyFiles(dir: string): Promise<{ record: LazyRecord; url: string }> {
  let text: string;
  let url: string;
  try {
    text = await readFile(join(dir, LAZY_FILE), 'utf8');
    url = (await readFile(join(dir, URL_FILE), 'utf8')).trim();
  } catch (error) {
    throw wrapIoError(error, 'cannot read lazy artifact', dir);
  }
  let record: LazyRecord;
  try {
    record = JSON.parse(text) as LazyRecord;
  } catch (error) {
    throw tcError('TC_ERR_INTERNAL', `${join(dir, LAZY_FILE)} is not valid JSON`, { cause: error });
  }
  if (record.v !== 1 || !Array.isArray(record.tensors) || !Array.isArray(record.shards)) {
    throw tcError('TC_ERR_INTERNAL', `${join(dir, LAZY_FILE)} is not a lazy artifact descriptor of version 1`);
  }
  return { record, url };
}
