// Opens a model that lies in a connector (a model directory: safetensors shards, an optional
// model.safetensors.index.json, config and tokenizer files) from its listing, its index and a ranged read
// or two per shard header: the same choice of shards and the same validation, with the same
// TC_ERR_FORMAT_* codes, as a local import (src/format/model-files.ts), and no tensor byte read.

import { mapLimit } from '../core/async.js';
import { tcError } from '../core/errors.js';
import { compareUtf8 } from '../core/strings.js';
import { checkShards, chooseIndex, type ModelFiles, type ModelShard } from '../format/model-files.js';
import { parseSafetensorsHeader, readHeaderLength } from '../format/safetensors-header.js';
import { MAX_INDEX_BYTES, parseShardedIndex, type ShardedIndex } from '../format/sharded-index.js';
import { indexModelFiles, type CanonicalIndex } from '../layout/canonical-index.js';
import type { Connector, ObjectInfo } from './connector.js';

/** A shard in a connector: its validated header, and the object's size and etag. */
export interface RemoteShard extends ModelShard {
  readonly etag: string;
}

/** A model in a connector, validated from its headers and index (a ModelFiles whose root is the URL). */
export interface RemoteModel extends ModelFiles {
  /** The connector's redacted URL. */
  readonly displayUrl: string;
  readonly shards: readonly RemoteShard[];
  /** The index object, when the model has one. */
  readonly indexObject: ObjectInfo | undefined;
  /** The non-weight objects kept with the model (config, tokenizer), at most `maxExtraFileBytes` each. */
  readonly extraObjects: readonly ObjectInfo[];
  /** Non-weight objects left out for their size. */
  readonly skippedFiles: readonly string[];
  /** Every object the model is made of (shards, index, kept files), by key. */
  readonly objects: readonly ObjectInfo[];
  /** Bytes of all of {@link objects}. */
  readonly totalObjectBytes: number;
}

/** Options of {@link openRemoteModel}. */
export interface OpenRemoteModelOptions {
  /** Non-weight objects larger than this are left out (default: kept whatever their size). */
  readonly maxExtraFileBytes?: number;
  /** Shard headers read at once (default 16). */
  readonly concurrency?: number;
  readonly signal?: AbortSignal;
}

/** Bytes read at the start of a shard in one go: the prefix and, for most models, the whole header. */
const HEAD_GUESS_BYTES = 256 << 10;

/**
 * Lists the connector, chooses the shards as a local import would (the index's shards, else
 * `model.safetensors`, else every `*.safetensors`), reads and validates every shard header with one or two
 * ranged reads, and checks the shards against the index and each other. Only objects directly under the
 * URL's prefix count (no '/' in the key), and none whose name starts with '.'.
 *
 * @throws TC_ERR_NOT_FOUND (nothing under the URL, no shards, a shard the index names is missing, or the
 *   connector's own: no bucket, no directory); TC_ERR_FORMAT_* (including TC_ERR_FORMAT_SHARD_MISMATCH);
 *   TC_ERR_AUTH, TC_ERR_BACKEND from the connector; TC_ERR_SOURCE_CHANGED when an object is rewritten
 *   while it is read
 * @example const model = await openRemoteModel(await createConnector('s3://models/llama-3-8b'));
 */
export async function openRemoteModel(connector: Connector, options: OpenRemoteModelOptions = {}): Promise<RemoteModel> {
  const where = connector.displayUrl;
  const listed = (await connector.list('')).filter((o) => !o.key.includes('/') && !o.key.startsWith('.'));
  if (listed.length === 0) {
    throw tcError('TC_ERR_NOT_FOUND', `${where}: no objects (the URL must name a model directory)`, {
      details: { connector: where, reason: 'no_objects' },
    });
  }
  const byKey = new Map(listed.map((o) => [o.key, o]));
  const names = listed.map((o) => o.key).sort();
  const choice = chooseIndex(where, names);
  const indexObject = choice.indexName === undefined ? undefined : byKey.get(choice.indexName);
  const index = indexObject === undefined ? undefined : await readRemoteIndex(connector, indexObject, options.signal);
  const shardNames = index?.shards ?? choice.shardNames;
  if (shardNames.length === 0) {
    throw tcError('TC_ERR_NOT_FOUND', `${where}: no .safetensors objects`, { details: { connector: where, reason: 'no_shards' } });
  }
  const shardObjects = shardNames.map((file) => {
    const o = byKey.get(file);
    if (o === undefined) {
      throw tcError('TC_ERR_NOT_FOUND', `${where}: ${choice.indexName ?? 'the index'} names shard '${file}', which is not there`, {
        details: { connector: where, key: file, reason: 'no_such_key' },
      });
    }
    return o;
  });
  const shards = await mapLimit(shardObjects, options.concurrency ?? 16, (o) => readRemoteShard(connector, o, options.signal));
  checkShards(shards, index, choice.indexName ?? '');
  const weightSet = new Set([...shardNames, ...choice.indexFiles]);
  const extra = listed.filter((o) => !weightSet.has(o.key) && !o.key.endsWith('.safetensors'));
  const limit = options.maxExtraFileBytes ?? Number.POSITIVE_INFINITY;
  const extraObjects = extra.filter((o) => o.size <= limit);
  const objects = [...shardObjects, ...(indexObject === undefined ? [] : [indexObject]), ...extraObjects].sort((a, b) =>
    compareUtf8(a.key, b.key),
  );
  return {
    root: where,
    displayUrl: where,
    shards,
    index,
    indexObject,
    extraFiles: extraObjects.map((o) => o.key),
    extraObjects,
    skippedFiles: extra.filter((o) => o.size > limit).map((o) => o.key),
    objects,
    totalObjectBytes: objects.reduce((n, o) => n + o.size, 0),
  };
}

/**
 * The canonical index of a remote model (placement: shard number and position inside the shard object).
 *
 * @example const index = indexRemoteModel(await openRemoteModel(connector));
 */
export function indexRemoteModel(model: RemoteModel): CanonicalIndex {
  return indexModelFiles(model);
}

/** Reads and parses an index object (bounded by MAX_INDEX_BYTES). */
async function readRemoteIndex(connector: Connector, o: ObjectInfo, signal: AbortSignal | undefined): Promise<ShardedIndex> {
  if (o.size > MAX_INDEX_BYTES) {
    throw tcError('TC_ERR_FORMAT_INDEX_INVALID', `${o.key}: index of ${o.size} bytes exceeds ${MAX_INDEX_BYTES}`, {
      details: { file: o.key },
    });
  }
  const bytes = Buffer.allocUnsafe(o.size);
  if (o.size > 0) await connector.readInto(o.key, 0, bytes, { etag: o.etag, ...(signal === undefined ? {} : { signal }) });
  return parseShardedIndex(bytes, o.key);
}

/** Reads a shard's header: the first HEAD_GUESS_BYTES (or the whole object), then the rest of the header if longer. */
async function readRemoteShard(connector: Connector, o: ObjectInfo, signal: AbortSignal | undefined): Promise<RemoteShard> {
  const read = { etag: o.etag, ...(signal === undefined ? {} : { signal }) };
  const head = Buffer.allocUnsafe(Math.min(o.size, HEAD_GUESS_BYTES));
  if (head.length > 0) await connector.readInto(o.key, 0, head, read);
  const headerByteLength = readHeaderLength(head, o.size, o.key);
  let bytes = head;
  if (8 + headerByteLength > head.length) {
    bytes = Buffer.allocUnsafe(8 + headerByteLength);
    head.copy(bytes, 0);
    await connector.readInto(o.key, head.length, bytes.subarray(head.length), read);
  }
  const header = parseSafetensorsHeader(bytes.subarray(0, 8 + headerByteLength), o.size, o.key);
  return { file: o.key, path: o.key, fileByteLength: o.size, header, etag: o.etag };
}
