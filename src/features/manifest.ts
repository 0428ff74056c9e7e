// The manifest of a sample, `{storeId}/{sampleId}/manifest`: the commit point. Written last (connectors) or in
// the same transaction as the tensors with a compare-and-swap on its version (daemon). JSON, decoded strictly:
// a manifest another tool damaged is TC_ERR_BACKEND naming the key, never a half-trusted ref.

import { isTensorcastError, tcError } from '../core/errors.js';
import { checkSampleId, checkSpecs, isFence, type FeatureLayout, type FeatureSpec, type SampleRef } from './sample-ref.js';

/** Largest manifest read back (4096 specs of long names fit well below it). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** What a manifest holds. */
export interface SampleManifest {
  readonly v: 1;
  readonly sampleId: string;
  readonly generation: number;
  readonly layout: FeatureLayout;
  readonly specs: readonly FeatureSpec[];
  /** Versions of the generation's objects (see SampleRef.fences); absent when the backend gave none. */
  readonly fences?: readonly (number | string)[];
  /** Unix ms of the put. */
  readonly createdAt: number;
}

/** Serializes a manifest. */
export function encodeManifest(m: SampleManifest): Uint8Array {
  return Buffer.from(JSON.stringify(m), 'utf8');
}

/**
 * Parses and checks a manifest read from `key`.
 *
 * @throws TC_ERR_BACKEND (not retryable in effect: the object is damaged) naming the key and what is wrong
 * @example const m = decodeManifest(bytes, 'train/s-1/manifest');
 */
export function decodeManifest(bytes: Uint8Array, key: string): SampleManifest {
  const bad = (why: string, cause?: unknown): Error =>
    tcError('TC_ERR_BACKEND', `${key} is not a feature-store manifest: ${why}`, { details: { key, reason: 'bad_manifest' }, cause });
  if (bytes.length > MAX_MANIFEST_BYTES) throw bad(`${bytes.length} bytes, more than ${MAX_MANIFEST_BYTES}`);
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (error) {
    throw bad('not JSON', error);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('not an object');
  const m = raw as Record<string, unknown>;
  if (m.v !== 1) throw bad(`unknown version ${JSON.stringify(m.v)}`);
  for (const k of Object.keys(m)) {
    if (!['v', 'sampleId', 'generation', 'layout', 'specs', 'fences', 'createdAt'].includes(k)) throw bad(`unknown field '${k}'`);
  }
  try {
    checkSampleId(m.sampleId);
    checkSpecs(m.specs, 'manifest');
  } catch (error) {
    throw bad(isTensorcastError(error) ? error.message : String(error), error);
  }
  if (!Number.isSafeInteger(m.generation) || (m.generation as number) < 0) throw bad('bad generation');
  if (m.layout !== 'per-tensor' && m.layout !== 'packed') throw bad('bad layout');
  if (!Number.isSafeInteger(m.createdAt) || (m.createdAt as number) < 0) throw bad('bad createdAt');
  if (m.fences !== undefined) {
    const want = m.layout === 'packed' ? 1 : (m.specs as unknown[]).length;
    if (!Array.isArray(m.fences) || m.fences.length !== want || !m.fences.every(isFence)) throw bad('bad fences');
  }
  const specs = (m.specs as FeatureSpec[]).map((s) => ({ name: s.name, dtype: s.dtype, shape: [...s.shape], byteLength: s.byteLength }));
  return {
    v: 1,
    sampleId: m.sampleId as string,
    generation: m.generation as number,
    layout: m.layout,
    specs,
    ...(m.fences === undefined ? {} : { fences: [...m.fences] }),
    createdAt: m.createdAt as number,
  };
}

/** The ref a manifest describes. */
export function refFromManifest(storeId: string, m: SampleManifest): SampleRef {
  return {
    storeId,
    sampleId: m.sampleId,
    generation: m.generation,
    specs: m.specs,
    layout: m.layout,
    ...(m.fences === undefined ? {} : { fences: m.fences }),
  };
}
