// The canonical index of an artifact: every tensor's dtype, shape and place in the canonical byte space,
// plus where its bytes physically live (shard file, file offset). The canonical byte space orders tensors
// exactly as the reference safetensors writer would (dtype descending, then name), densely packed, so the
// canonical artifact is byte for byte the data section of the file `safetensors.serialize` would produce.

import { isDtype, type Dtype } from '../core/dtypes.js';
import { tcError } from '../core/errors.js';
import { sha256Hex } from '../core/hashing.js';
import type { ModelFiles } from '../format/model-files.js';
import { compareWriteOrder } from '../format/safetensors-writer.js';

/** One tensor of the canonical index. */
export interface CanonicalTensor {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  /** Offset in the canonical byte space. */
  readonly offset: number;
  readonly byteLength: number;
  /** Index into {@link CanonicalIndex.shards}. */
  readonly shard: number;
  /** Absolute offset of the tensor's bytes inside its shard file. */
  readonly filePosition: number;
}

/** A shard file the bytes live in. */
export interface CanonicalShard {
  /** Path relative to the model root. */
  readonly file: string;
  readonly fileByteLength: number;
}

/** The canonical index of one artifact. */
export interface CanonicalIndex {
  /** Tensors in canonical order. */
  readonly tensors: readonly CanonicalTensor[];
  readonly byName: ReadonlyMap<string, CanonicalTensor>;
  readonly shards: readonly CanonicalShard[];
  /** Total bytes of the canonical byte space. */
  readonly totalBytes: number;
  /** SHA-256 (hex) of the identity part of the index (names, dtypes, shapes, canonical offsets). */
  readonly indexHash: string;
  /** Merged `__metadata__` of the shards (first shard wins on a clash). */
  readonly metadata: Readonly<Record<string, string>>;
}

/** A tensor as the index builder needs it. */
export interface IndexInput {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly byteLength: number;
  readonly shard: number;
  readonly filePosition: number;
}

/**
 * Builds the canonical index of validated model files.
 *
 * @example const index = indexModelFiles(await openModelFiles(dir));
 */
export function indexModelFiles(model: ModelFiles): CanonicalIndex {
  const inputs: IndexInput[] = [];
  const metadata: Record<string, string> = {};
  model.shards.forEach((shard, s) => {
    for (const [k, v] of Object.entries(shard.header.metadata ?? {})) if (!(k in metadata)) metadata[k] = v;
    for (const t of shard.header.tensors) {
      inputs.push({
        name: t.name,
        dtype: t.dtype,
        shape: t.shape,
        byteLength: t.end - t.begin,
        shard: s,
        filePosition: shard.header.dataStart + t.begin,
      });
    }
  });
  const shards = model.shards.map((s) => ({ file: s.file, fileByteLength: s.fileByteLength }));
  return buildCanonicalIndex(inputs, shards, metadata);
}

/** Builds a canonical index from tensors and their physical places. */
export function buildCanonicalIndex(
  inputs: readonly IndexInput[],
  shards: readonly CanonicalShard[],
  metadata: Readonly<Record<string, string>> = {},
): CanonicalIndex {
  const ordered = [...inputs].sort(compareWriteOrder);
  const byName = new Map<string, CanonicalTensor>();
  const tensors: CanonicalTensor[] = [];
  let offset = 0;
  for (const t of ordered) {
    if (byName.has(t.name)) throw tcError('TC_ERR_FORMAT_DUPLICATE_NAME', `tensor '${t.name}' appears twice`);
    const ct: CanonicalTensor = { ...t, shape: [...t.shape], offset };
    offset += t.byteLength;
    tensors.push(ct);
    byName.set(t.name, ct);
  }
  return { tensors, byName, shards, totalBytes: offset, indexHash: sha256Hex(identityJson(tensors)), metadata };
}

/** The deterministic JSON that the index hash covers (no file placement: moving bytes keeps the identity). */
export function identityJson(tensors: readonly CanonicalTensor[]): string {
  const rows = tensors.map((t) => JSON.stringify([t.name, t.dtype, t.shape, t.offset, t.byteLength]));
  return `{"v":1,"tensors":[${rows.join(',')}]}`;
}

/**
 * Parses the serialized index a daemon hands out (`{"v":1,"tensors":[[name, dtype, shape, offset, length],
 * ...],"metadata":{...}}`). Placement is the canonical byte space itself (one virtual shard).
 *
 * @throws TC_ERR_FORMAT_INDEX_INVALID
 */
export function parseIndexJson(text: string | object): CanonicalIndex {
  let value: unknown = text;
  try {
    if (typeof text === 'string') value = JSON.parse(text);
  } catch (error) {
    throw tcError('TC_ERR_FORMAT_INDEX_INVALID', `artifact index is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  const v = value as { v?: unknown; tensors?: unknown; metadata?: unknown };
  if (v.v !== 1 || !Array.isArray(v.tensors))
    throw tcError('TC_ERR_FORMAT_INDEX_INVALID', 'artifact index: expected {"v":1,"tensors":[...]}');
  const inputs: IndexInput[] = (v.tensors as unknown[]).map((row, i) => {
    const r = row as [unknown, unknown, unknown, unknown, unknown];
    if (
      !Array.isArray(row) ||
      row.length !== 5 ||
      typeof r[0] !== 'string' ||
      typeof r[1] !== 'string' ||
      !isDtype(r[1]) ||
      !Array.isArray(r[2])
    ) {
      throw tcError('TC_ERR_FORMAT_INDEX_INVALID', `artifact index: tensor row ${i} is malformed`);
    }
    return { name: r[0], dtype: r[1], shape: r[2] as number[], byteLength: Number(r[4]), shard: 0, filePosition: Number(r[3]) };
  });
  const index = buildCanonicalIndex(inputs, [{ file: 'canonical', fileByteLength: 0 }], (v.metadata ?? {}) as Record<string, string>);
  const declared = new Map(inputs.map((x) => [x.name, x.filePosition]));
  index.tensors.forEach((t, i) => {
    if (t.offset !== declared.get(t.name)) {
      throw tcError('TC_ERR_FORMAT_INDEX_INVALID', `artifact index: tensor ${i} '${t.name}' is not at its canonical offset`);
    }
  });
  return index;
}
