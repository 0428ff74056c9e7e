// The packed layout: one safetensors object per sample (`{storeId}/{sampleId}/g{g}.safetensors`), for backends
// where many small objects cost too much (S3 requests, Redis keys). Written from the caller's buffers as
// pieces (header, then each tensor: no gather copy); read back with ranged reads after the header is parsed
// and checked against the ref's specs, or in one read when the object is small or the backend is whole-object.

import { tcError } from '../core/errors.js';
import { parseSafetensorsHeader, readHeaderLength } from '../format/safetensors-header.js';
import { planSafetensors, type SafetensorsLayout } from '../format/safetensors-writer.js';
import type { BackendVersion, FeatureBackend } from './feature-backend.js';
import type { FeatureSpec, TensorInput } from './sample-ref.js';

/** Objects up to this size are read in one request and copied out. */
const WHOLE_READ_BYTES = 4 * 1024 * 1024;

/** The safetensors layout of a sample (deterministic: the same specs always give the same header). */
export function planPacked(specs: readonly FeatureSpec[]): SafetensorsLayout {
  return planSafetensors(specs.map((s) => ({ name: s.name, dtype: s.dtype, shape: s.shape })));
}

/** Total bytes of a packed object. */
export function packedByteLength(layout: SafetensorsLayout): number {
  return layout.header.length + layout.dataByteLength;
}

/** The pieces of the packed object, in file order (0-byte tensors left out). */
export function packedPieces(layout: SafetensorsLayout, tensors: Readonly<Record<string, TensorInput>>): Uint8Array[] {
  const out: Uint8Array[] = [layout.header];
  for (const t of layout.tensors) {
    const data = tensors[t.name]!.data;
    if (data.length > 0) out.push(data);
  }
  return out;
}

/**
 * Reads the tensors of a packed object into `dests` (one per spec, by name, each exactly its spec's size).
 *
 * @throws TC_ERR_NOT_FOUND (gone or replaced), TC_ERR_SHORT_READ (truncated), TC_ERR_BACKEND (the header
 *   disagrees with the ref: not the object the ref describes)
 */
export async function readPacked(
  backend: FeatureBackend,
  key: string,
  specs: readonly FeatureSpec[],
  dests: ReadonlyMap<string, Uint8Array>,
  version: BackendVersion | undefined,
  timeoutMs: number | undefined,
): Promise<void> {
  const layout = planPacked(specs);
  const total = packedByteLength(layout);
  const opts = { ...(version === undefined ? {} : { version }), ...(timeoutMs === undefined ? {} : { timeoutMs }) };
  if (!backend.capabilities.rangedReads || total <= WHOLE_READ_BYTES) {
    const whole = Buffer.allocUnsafe(total);
    await backend.readInto(key, 0, whole, opts);
    checkHeader(whole.subarray(0, layout.header.length), layout, total, key);
    for (const t of layout.tensors) dests.get(t.name)!.set(whole.subarray(layout.header.length + t.begin, layout.header.length + t.end));
    return;
  }
  const header = Buffer.allocUnsafe(layout.header.length);
  await backend.readInto(key, 0, header, opts);
  checkHeader(header, layout, total, key);
  await Promise.all(
    layout.tensors.map((t) =>
      t.end === t.begin ? Promise.resolve() : backend.readInto(key, layout.header.length + t.begin, dests.get(t.name)!, opts),
    ),
  );
}

/** Parses the stored header with the format's validator and requires exactly the planned tensors. */
function checkHeader(bytes: Uint8Array, layout: SafetensorsLayout, total: number, key: string): void {
  const mismatch = (why: string, cause?: unknown): Error =>
    tcError('TC_ERR_BACKEND', `${key}: the packed object does not match its sample ref (${why})`, {
      details: { key, reason: 'packed_mismatch' },
      cause,
    });
  let parsed;
  try {
    if (readHeaderLength(bytes, total, key) !== layout.header.length - 8) throw mismatch('header length differs');
    parsed = parseSafetensorsHeader(bytes, total, key);
  } catch (error) {
    throw mismatch((error as Error).message, error);
  }
  const want = new Map(layout.tensors.map((t) => [t.name, t]));
  if (parsed.tensors.length !== want.size) throw mismatch('tensor count differs');
  for (const t of parsed.tensors) {
    const w = want.get(t.name);
    if (w === undefined || w.dtype !== t.dtype || w.begin !== t.begin || w.end !== t.end || w.shape.join(',') !== t.shape.join(','))
      throw mismatch(`tensor '${t.name}' differs`);
  }
}
