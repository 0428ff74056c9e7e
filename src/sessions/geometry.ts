// A session's KV geometry, fixed at creation: the model, layers, KV heads, head size, dtype and tokens per page.
// Its hash is the session's compatibility hash: a reader or writer that expects another geometry is refused
// with TC_ERR_INCOMPATIBLE before any byte moves. KV bytes are token-major: the bytes of tokens [a, b) are
// bytes [a * bytesPerToken, b * bytesPerToken) of the session's stream (docs/sessions.md "Model").

import { createHash } from 'node:crypto';
import { dtypeBits, isDtype, type Dtype } from '../core/dtypes.js';
import { tcError } from '../core/errors.js';

/** The KV geometry of a session. */
export interface SessionGeometry {
  /** The model the KV belongs to (1..256 characters). */
  readonly modelId: string;
  readonly layers: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly dtype: Dtype;
  /** Tokens per KV page of the engine (informational; appends need not be page-aligned). */
  readonly tokensPerPage: number;
  /** Tensors per layer and head: 2 (K and V, the default) or 1 (MLA's latent). */
  readonly kvFactor?: 1 | 2;
}

/** Largest value of any geometry field (keeps bytesPerToken far below 2^53). */
const MAX_DIM = 1 << 20;

/**
 * Validates `g` and returns it with defaults filled.
 *
 * @throws TC_ERR_INVALID_ARGUMENT naming the field
 */
export function checkGeometry(g: SessionGeometry): Required<SessionGeometry> {
  const bad = (why: string): Error => tcError('TC_ERR_INVALID_ARGUMENT', `session geometry: ${why}`);
  if (typeof g !== 'object' || g === null) throw bad('must be an object');
  if (typeof g.modelId !== 'string' || g.modelId.length === 0 || g.modelId.length > 256) throw bad('modelId must be 1..256 characters');
  for (const field of ['layers', 'kvHeads', 'headDim', 'tokensPerPage'] as const) {
    const v = g[field];
    if (!Number.isSafeInteger(v) || v < 1 || v > MAX_DIM) throw bad(`${field} must be an integer in 1..${MAX_DIM} (got ${String(v)})`);
  }
  if (typeof g.dtype !== 'string' || !isDtype(g.dtype)) throw bad(`dtype '${String(g.dtype)}' is not a safetensors dtype`);
  const kvFactor = g.kvFactor ?? 2;
  if (kvFactor !== 1 && kvFactor !== 2) throw bad(`kvFactor must be 1 or 2 (got ${String(kvFactor)})`);
  const checked = { ...g, kvFactor };
  const bits = tokenBits(checked);
  if (bits % 8 !== 0) throw bad(`one token's KV is ${bits} bits, not whole bytes`);
  if (bits / 8 > 2 ** 40) throw bad('one token holds more than 1 TiB of KV');
  return checked;
}

function tokenBits(g: Required<SessionGeometry>): number {
  return g.layers * g.kvFactor * g.kvHeads * g.headDim * dtypeBits(g.dtype);
}

/** Bytes of KV per token. */
export function bytesPerToken(g: SessionGeometry): number {
  return tokenBits(checkGeometry(g)) / 8;
}

/** The compatibility hash of a geometry: hex SHA-256 of its canonical JSON (field order fixed), 32 characters. */
export function geometryHash(g: SessionGeometry): string {
  const c = checkGeometry(g);
  const canonical = JSON.stringify({
    v: 1,
    modelId: c.modelId,
    layers: c.layers,
    kvHeads: c.kvHeads,
    headDim: c.headDim,
    dtype: c.dtype,
    tokensPerPage: c.tokensPerPage,
    kvFactor: c.kvFactor,
  });
  return createHash('sha256').update(canonical).digest('hex').slice(0, 32);
}
