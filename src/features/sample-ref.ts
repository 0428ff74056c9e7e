// What a sample is on the wire and in the caller's hands: tensor inputs, their specs (name, dtype, shape,
// byteLength), the SampleRef a put returns, and the key scheme `{storeId}/{sampleId}/g{generation}/{name}`.
// Every check of caller input happens here, before any byte moves.

import { dtypeBits, isDtype, type Dtype } from '../core/dtypes.js';
import { tcError } from '../core/errors.js';
import { checkNamespace } from '../core/object-keys.js';
import { tensorByteLength } from '../format/safetensors-writer.js';

/** Most tensors one sample may hold. */
export const MAX_TENSORS_PER_SAMPLE = 4096;
/** Most dimensions a tensor may have. */
export const MAX_RANK = 32;

/** One tensor to put: its raw bytes (row-major, little-endian), dtype and shape. */
export interface TensorInput {
  readonly data: Uint8Array;
  readonly dtype: Dtype;
  /** `[]` for a scalar; a 0 anywhere makes a 0-byte tensor. */
  readonly shape: readonly number[];
}

/** One tensor of a sample as the ref describes it. */
export interface FeatureSpec {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly byteLength: number;
}

/** How a sample's bytes are laid out on the backend. */
export type FeatureLayout = 'per-tensor' | 'packed';

/**
 * A handle on one generation of a sample: everything a reader needs to get it (plain JSON, so a producer
 * can hand it to a trainer through any queue). The objects are raw bytes; shape and dtype travel here.
 */
export interface SampleRef {
  readonly storeId: string;
  readonly sampleId: string;
  readonly generation: number;
  readonly specs: readonly FeatureSpec[];
  /** 'per-tensor' (default when absent): one object per tensor; 'packed': one safetensors object. */
  readonly layout?: FeatureLayout;
  /**
   * The backend's version of each object this generation wrote (per-tensor: one per spec, in spec order;
   * packed: one): fencing tokens. A read of an object whose version differs fails with TC_ERR_NOT_FOUND, so
   * a ref never reads bytes written later under the same key (a sample released and put again).
   */
  readonly fences?: readonly (number | string)[];
  /**
   * Daemon backends: the id of the daemon that holds the sample's objects. A store whose client is
   * connected to another daemon of the same cluster reads (and releases) the sample there. Absent on
   * connector backends and on refs of older versions (then the store's own daemon is assumed).
   */
  readonly daemonId?: string;
}

/** A tensor as get returns it: the bytes (the caller's `into` buffer when given) with dtype and shape. */
export interface FeatureTensor {
  readonly data: Uint8Array;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
}

const SAMPLE_ID = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$/;
/** A daemon id as refs carry it: printable ASCII without spaces. */
const DAEMON_ID = /^[\x21-\x7e]{1,256}$/;
const TENSOR_NAME = /^[A-Za-z0-9_:+=@,-][A-Za-z0-9._:+=@,-]{0,199}$/;

/**
 * Checks a sample id: 1-200 of `[A-Za-z0-9._-]`, not starting with `.` (dot-names are reserved by
 * connectors for temporary files, and `.`/`..` are not key segments).
 *
 * @throws TC_ERR_INVALID_ARGUMENT
 */
export function checkSampleId(sampleId: unknown): string {
  if (typeof sampleId !== 'string' || !SAMPLE_ID.test(sampleId))
    throw tcError(
      'TC_ERR_INVALID_ARGUMENT',
      `bad sample id ${JSON.stringify(sampleId)}: use 1-200 of [A-Za-z0-9._-], not starting with '.'`,
    );
  return sampleId;
}

/**
 * Checks a tensor name: 1-200 of `[A-Za-z0-9._:+=@,-]` (no `/`, so a name is one key segment), not
 * starting with `.`.
 *
 * @throws TC_ERR_INVALID_ARGUMENT
 */
export function checkTensorName(name: unknown): string {
  if (typeof name !== 'string' || !TENSOR_NAME.test(name))
    throw tcError(
      'TC_ERR_INVALID_ARGUMENT',
      `bad tensor name ${JSON.stringify(name)}: use 1-200 of [A-Za-z0-9._:+=@,-] (no '/'), not starting with '.'`,
    );
  return name;
}

/** Checks a store id (it is the object namespace). @throws TC_ERR_INVALID_ARGUMENT */
export function checkStoreId(storeId: unknown): string {
  if (typeof storeId !== 'string') throw tcError('TC_ERR_INVALID_ARGUMENT', `a store id must be a string, not ${typeof storeId}`);
  return checkNamespace(storeId);
}

/** Checks dtype + shape and returns the byte length they need. @throws TC_ERR_INVALID_ARGUMENT */
export function specByteLength(name: string, dtype: unknown, shape: unknown): number {
  if (typeof dtype !== 'string' || !isDtype(dtype))
    throw tcError('TC_ERR_INVALID_ARGUMENT', `tensor '${name}': unknown dtype ${JSON.stringify(dtype)}`);
  if (!Array.isArray(shape) || shape.length > MAX_RANK || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0))
    throw tcError(
      'TC_ERR_INVALID_ARGUMENT',
      `tensor '${name}': shape must be at most ${MAX_RANK} non-negative integers, got ${JSON.stringify(shape)}`,
    );
  let elements = 1;
  for (const d of shape as number[]) elements *= d;
  if (!Number.isSafeInteger(elements * dtypeBits(dtype)))
    throw tcError('TC_ERR_INVALID_ARGUMENT', `tensor '${name}': shape ${JSON.stringify(shape)} is too large`);
  try {
    return tensorByteLength(dtype, shape as number[]);
  } catch (error) {
    throw tcError('TC_ERR_INVALID_ARGUMENT', `tensor '${name}': ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Validates the tensors of a put and returns their specs in name order (UTF-8 byte order): names, dtypes,
 * shapes, and shape x dtype size = data.byteLength.
 *
 * @throws TC_ERR_INVALID_ARGUMENT naming the tensor
 */
export function specsFromTensors(tensors: Readonly<Record<string, TensorInput>>): FeatureSpec[] {
  if (typeof tensors !== 'object' || tensors === null || Array.isArray(tensors))
    throw tcError('TC_ERR_INVALID_ARGUMENT', 'tensors must be an object of name -> { data, dtype, shape }');
  const names = Object.keys(tensors).sort(compareNames);
  if (names.length === 0) throw tcError('TC_ERR_INVALID_ARGUMENT', 'a sample needs at least one tensor');
  if (names.length > MAX_TENSORS_PER_SAMPLE)
    throw tcError('TC_ERR_INVALID_ARGUMENT', `a sample holds at most ${MAX_TENSORS_PER_SAMPLE} tensors, got ${names.length}`);
  return names.map((name) => {
    checkTensorName(name);
    const t = tensors[name]!;
    if (typeof t !== 'object' || t === null || !(t.data instanceof Uint8Array))
      throw tcError('TC_ERR_INVALID_ARGUMENT', `tensor '${name}': data must be a Uint8Array (view other typed arrays as bytes)`);
    const byteLength = specByteLength(name, t.dtype, t.shape);
    if (t.data.byteLength !== byteLength)
      throw tcError(
        'TC_ERR_INVALID_ARGUMENT',
        `tensor '${name}': shape [${t.shape.join(', ')}] of ${t.dtype} needs ${byteLength} bytes, data has ${t.data.byteLength}`,
        { details: { tensor: name, expected: byteLength, actual: t.data.byteLength } },
      );
    return { name, dtype: t.dtype, shape: [...t.shape], byteLength };
  });
}

/** Orders names by their UTF-8 bytes (the order keys list in). */
export function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * Checks a ref handed back by a caller (possibly parsed from JSON): ids, generation, specs, fences.
 *
 * @throws TC_ERR_INVALID_ARGUMENT
 */
export function checkRef(ref: SampleRef, storeId: string): SampleRef {
  if (typeof ref !== 'object' || ref === null) throw tcError('TC_ERR_INVALID_ARGUMENT', 'a sample ref must be an object');
  if (ref.storeId !== storeId)
    throw tcError('TC_ERR_INVALID_ARGUMENT', `sample ref of store '${String(ref.storeId)}' given to store '${storeId}'`);
  checkSampleId(ref.sampleId);
  if (!Number.isSafeInteger(ref.generation) || ref.generation < 0)
    throw tcError('TC_ERR_INVALID_ARGUMENT', `sample ref: bad generation ${JSON.stringify(ref.generation)}`);
  if (ref.layout !== undefined && ref.layout !== 'per-tensor' && ref.layout !== 'packed')
    throw tcError('TC_ERR_INVALID_ARGUMENT', `sample ref: bad layout ${JSON.stringify(ref.layout)}`);
  checkSpecs(ref.specs, 'sample ref');
  if (ref.daemonId !== undefined && (typeof ref.daemonId !== 'string' || !DAEMON_ID.test(ref.daemonId)))
    throw tcError('TC_ERR_INVALID_ARGUMENT', `sample ref: bad daemonId ${JSON.stringify(ref.daemonId)}`);
  if (ref.fences !== undefined) {
    const want = (ref.layout ?? 'per-tensor') === 'packed' ? 1 : ref.specs.length;
    if (!Array.isArray(ref.fences) || ref.fences.length !== want || !ref.fences.every(isFence))
      throw tcError('TC_ERR_INVALID_ARGUMENT', `sample ref: fences must be ${want} numbers or strings`);
  }
  return ref;
}

/** True for a backend version: a non-negative safe integer or a non-empty string. */
export function isFence(v: unknown): v is number | string {
  return (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) || (typeof v === 'string' && v.length > 0 && v.length <= 256);
}

/** Checks a list of specs (from a ref or a manifest): names unique and valid, byteLength = shape x dtype. */
export function checkSpecs(specs: unknown, what: string): asserts specs is readonly FeatureSpec[] {
  if (!Array.isArray(specs) || specs.length === 0 || specs.length > MAX_TENSORS_PER_SAMPLE)
    throw tcError('TC_ERR_INVALID_ARGUMENT', `${what}: specs must be 1 to ${MAX_TENSORS_PER_SAMPLE} entries`);
  const seen = new Set<string>();
  for (const s of specs as unknown[]) {
    if (typeof s !== 'object' || s === null) throw tcError('TC_ERR_INVALID_ARGUMENT', `${what}: a spec must be an object`);
    const { name, dtype, shape, byteLength } = s as Record<string, unknown>;
    checkTensorName(name);
    if (seen.has(name as string)) throw tcError('TC_ERR_INVALID_ARGUMENT', `${what}: tensor '${String(name)}' appears twice`);
    seen.add(name as string);
    if (specByteLength(name as string, dtype, shape) !== byteLength)
      throw tcError(
        'TC_ERR_INVALID_ARGUMENT',
        `${what}: tensor '${String(name)}': byteLength ${String(byteLength)} does not match shape x dtype`,
      );
  }
}

/** Total bytes of a sample's tensors. */
export function sampleBytes(specs: readonly FeatureSpec[]): number {
  return specs.reduce((sum, s) => sum + s.byteLength, 0);
}

/** The keys of one store. */
export const sampleKeys = {
  /** `{storeId}/{sampleId}/` */
  prefix: (storeId: string, sampleId: string): string => `${storeId}/${sampleId}/`,
  /** `{storeId}/{sampleId}/manifest`: the commit point of a sample. */
  manifest: (storeId: string, sampleId: string): string => `${storeId}/${sampleId}/manifest`,
  /** `{storeId}/{sampleId}/g{generation}/{name}` */
  tensor: (storeId: string, sampleId: string, generation: number, name: string): string => `${storeId}/${sampleId}/g${generation}/${name}`,
  /** `{storeId}/{sampleId}/g{generation}.safetensors` (packed layout) */
  packed: (storeId: string, sampleId: string, generation: number): string => `${storeId}/${sampleId}/g${generation}.safetensors`,
};

/** Every object key a ref's generation owns (not the manifest). */
export function refObjectKeys(ref: SampleRef): string[] {
  if ((ref.layout ?? 'per-tensor') === 'packed') return [sampleKeys.packed(ref.storeId, ref.sampleId, ref.generation)];
  return ref.specs.map((s) => sampleKeys.tensor(ref.storeId, ref.sampleId, ref.generation, s.name));
}

/**
 * Splits a key of a store into sample id, generation and part: `manifest`, a tensor name, or `packed`.
 * Undefined for keys that are not the store's (another tool's objects under the same namespace).
 */
export function parseSampleKey(
  storeId: string,
  key: string,
): { sampleId: string; kind: 'manifest' } | { sampleId: string; kind: 'tensor' | 'packed'; generation: number } | undefined {
  if (!key.startsWith(`${storeId}/`)) return undefined;
  const parts = key.slice(storeId.length + 1).split('/');
  const sampleId = parts[0] ?? '';
  if (!SAMPLE_ID.test(sampleId)) return undefined;
  if (parts.length === 2 && parts[1] === 'manifest') return { sampleId, kind: 'manifest' };
  const packed = parts.length === 2 ? /^g(\d{1,15})\.safetensors$/.exec(parts[1]!) : null;
  if (packed !== null) return { sampleId, kind: 'packed', generation: Number(packed[1]) };
  const gen = parts.length === 3 ? /^g(\d{1,15})$/.exec(parts[1]!) : null;
  if (gen !== null && TENSOR_NAME.test(parts[2]!)) return { sampleId, kind: 'tensor', generation: Number(gen[1]) };
  return undefined;
}
