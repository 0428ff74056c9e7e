// Parses `model.safetensors.index.json` as a stream with bounded memory: huge indexes (hundreds of
// thousands of entries) never go through JSON.parse, duplicate names are caught, shard names are checked.

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { tcError, wrapIoError } from '../core/errors.js';
import { JsonReader } from './json-reader.js';

/** Largest index file accepted (the huggingface.js bound). */
export const MAX_INDEX_BYTES = 250_000_000;
/** Most shards an index may name. */
export const MAX_SHARDS = 10_000;

/** A parsed sharded-checkpoint index. */
export interface ShardedIndex {
  /** `metadata.total_size` when present: the sum of tensor byte sizes. */
  readonly totalSize: number | undefined;
  /** Tensor name -> shard file name (relative to the index). */
  readonly weightMap: ReadonlyMap<string, string>;
  /** Shard file names in first-mention order. */
  readonly shards: readonly string[];
}

/**
 * Streams and validates an index file.
 *
 * @throws TC_ERR_FORMAT_INDEX_INVALID, TC_ERR_FORMAT_DUPLICATE_NAME, TC_ERR_NOT_FOUND
 * @example const index = readShardedIndex('/models/llama/model.safetensors.index.json');
 */
export function readShardedIndex(path: string, displayName = path, chunkBytes = 1 << 20): ShardedIndex {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw wrapIoError(error, 'cannot open index', path);
  }
  try {
    const size = fstatSync(fd).size;
    if (size > MAX_INDEX_BYTES) {
      throw tcError('TC_ERR_FORMAT_INDEX_INVALID', `${displayName}: index of ${size} bytes exceeds ${MAX_INDEX_BYTES}`);
    }
    const chunk = Buffer.allocUnsafe(chunkBytes);
    let position = 0;
    const refill = (): Uint8Array | null => {
      const n = readSync(fd, chunk, 0, chunk.length, position);
      position += n;
      // The reader keeps no reference into a chunk it has moved past, so one buffer serves all reads.
      return n === 0 ? null : chunk.subarray(0, n);
    };
    return parseShardedIndex(refill() ?? new Uint8Array(0), displayName, refill);
  } catch (error) {
    throw wrapIoError(error, 'cannot read index', path);
  } finally {
    closeSync(fd);
  }
}

/** Parses index bytes (the first chunk, and `refill` for the rest). */
export function parseShardedIndex(first: Uint8Array, what: string, refill?: () => Uint8Array | null): ShardedIndex {
  const r = new JsonReader(first, { what, errorCode: 'TC_ERR_FORMAT_INDEX_INVALID', ...(refill ? { refill } : {}) });
  let totalSize: number | undefined;
  let weightMap: Map<string, string> | undefined;
  const shards: string[] = [];
  const shardSet = new Set<string>();
  r.beginObject();
  for (let key = r.nextKey(); key !== undefined; key = r.nextKey()) {
    if (key === 'metadata' && r.peekKind() === 'object') {
      r.beginObject();
      for (let mk = r.nextKey(); mk !== undefined; mk = r.nextKey()) {
        if (mk === 'total_size' && r.peekKind() === 'number') {
          const n = r.readNumber();
          // transformers writes an int; some tools a float: keep it only when it is an exact integer.
          totalSize = n.isInteger && Number.isSafeInteger(Number(n.raw)) ? Number(n.raw) : undefined;
        } else r.skipValue();
      }
    } else if (key === 'weight_map') {
      if (weightMap !== undefined) throw r.error("duplicate field 'weight_map'");
      if (r.peekKind() !== 'object') throw r.error('weight_map must be an object');
      weightMap = new Map();
      r.beginObject();
      for (let name = r.nextKey(); name !== undefined; name = r.nextKey()) {
        const at = r.offset;
        if (r.peekKind() !== 'string') throw r.error(`weight_map entry '${name}' must be a shard file name`);
        const shard = r.readString();
        if (weightMap.has(name)) {
          throw tcError('TC_ERR_FORMAT_DUPLICATE_NAME', `${what}: tensor '${name}' is listed twice (second at byte ${at})`, {
            details: { file: what, tensor: name, offset: at },
          });
        }
        checkShardName(shard, name, what, at);
        weightMap.set(name, shard);
        if (!shardSet.has(shard)) {
          shardSet.add(shard);
          shards.push(shard);
          if (shards.length > MAX_SHARDS) throw r.error(`more than ${MAX_SHARDS} shards`);
        }
      }
    } else {
      r.skipValue();
    }
  }
  r.end();
  if (weightMap === undefined) throw tcError('TC_ERR_FORMAT_INDEX_INVALID', `${what}: no weight_map`);
  return { totalSize, weightMap, shards };
}

function checkShardName(shard: string, tensor: string, what: string, at: number): void {
  const bad =
    shard.length === 0 ||
    shard.includes('/') ||
    shard.includes('\\') ||
    shard.includes('\0') ||
    shard === '.' ||
    shard === '..' ||
    !shard.endsWith('.safetensors');
  if (bad) {
    throw tcError(
      'TC_ERR_FORMAT_INDEX_INVALID',
      `${what}: tensor '${tensor}' maps to '${shard}', which is not a .safetensors file name beside the index (byte ${at})`,
      { details: { file: what, tensor, offset: at } },
    );
  }
}
