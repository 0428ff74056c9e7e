// One rank's KV-transfer metadata and its msgpack form (docs/handshake.md "Payload schema"). The wire keys are
// snake_case and follow vLLM's NixlAgentMetadata where a field has a counterpart there, so a Python engine
// can write and read the payload with the `msgpack` package alone. Decoding is strict: unknown keys, wrong
// types, out-of-range numbers and trailing bytes are TC_ERR_MALFORMED, never a half-filled object.

import { decode, encode } from '@msgpack/msgpack';
import { tcError } from '../core/errors.js';
import { HANDSHAKE_ID_PATTERN, MAX_HANDSHAKE_RANK } from '../protocol/http/handshake.js';

/** The schema version this code writes and reads (`v` in the payload). */
export const RANK_METADATA_VERSION = 1;
/** At most this many entries in each list (base addresses, block lengths, strides). */
export const MAX_LIST_LENGTH = 65536;
/** At most this many keys in `extra`, each value at most MAX_EXTRA_BYTES once encoded. */
export const MAX_EXTRA_KEYS = 64;
const MAX_EXTRA_BYTES = 64 * 1024;

/** One rank's transfer metadata: what a reader needs to read that rank's KV blocks. */
export interface RankMetadata {
  readonly engineId: string;
  readonly tpRank: number;
  readonly dpRank: number;
  /** Hash of everything both sides must agree on (model, dtype, heads, layout, versions); opaque here. */
  readonly compatibilityHash: string;
  /** Changes whenever the engine restarts; readers re-handshake when they see a new one. */
  readonly incarnation: string;
  /** The transfer agent's own metadata (NIXL agent blob with its registration keys): opaque bytes. */
  readonly agentMetadata: Uint8Array;
  /** Base address of each registered KV region (uint64). */
  readonly kvCachesBaseAddr: readonly bigint[];
  /** Bytes of one block, per region. */
  readonly blockLens: readonly number[];
  /** Bytes between consecutive blocks, per region. */
  readonly blockStrides: readonly number[];
  readonly numBlocks: number;
  /** Tokens per block. */
  readonly blockSize: number;
  /** `HND`, `NHD` or another engine-defined name (1..32 characters). */
  readonly kvCacheLayout: string;
  readonly tpSize: number;
  readonly deviceId: number;
  /** Engine-specific fields the service carries unread (string keys, msgpack values). */
  readonly extra?: Readonly<Record<string, unknown>>;
}

/** Encodes `meta` (after validating it) to its msgpack payload. */
export function encodeRankMetadata(meta: RankMetadata): Uint8Array {
  const checked = validate(toWire(meta));
  return encode(toWire(checked), { useBigInt64: true, ignoreUndefined: true });
}

/**
 * Decodes and validates a msgpack payload. `maxBytes` caps the input before anything is read.
 *
 * @throws TC_ERR_TOO_LARGE above `maxBytes`; TC_ERR_MALFORMED for anything that is not a valid payload.
 */
export function decodeRankMetadata(payload: Uint8Array, maxBytes = Number.MAX_SAFE_INTEGER): RankMetadata {
  if (payload.byteLength > maxBytes) {
    throw tcError('TC_ERR_TOO_LARGE', `rank payload of ${payload.byteLength} bytes is above the cap of ${maxBytes}`, {
      details: { bytes: payload.byteLength, cap: maxBytes },
    });
  }
  let raw: unknown;
  try {
    raw = decode(payload, {
      useBigInt64: true,
      maxStrLength: 1 << 20,
      maxBinLength: payload.byteLength,
      maxArrayLength: MAX_LIST_LENGTH,
      maxMapLength: 1024,
      maxExtLength: 0,
    });
  } catch (error) {
    throw malformed(`not valid msgpack: ${(error as Error).message}`, error);
  }
  return validate(raw);
}

const WIRE_KEYS = {
  v: 'v',
  engine_id: 'engineId',
  tp_rank: 'tpRank',
  dp_rank: 'dpRank',
  compatibility_hash: 'compatibilityHash',
  incarnation: 'incarnation',
  agent_metadata: 'agentMetadata',
  kv_caches_base_addr: 'kvCachesBaseAddr',
  block_lens: 'blockLens',
  block_strides: 'blockStrides',
  num_blocks: 'numBlocks',
  block_size: 'blockSize',
  kv_cache_layout: 'kvCacheLayout',
  tp_size: 'tpSize',
  device_id: 'deviceId',
  extra: 'extra',
} as const;

function toWire(meta: RankMetadata): Record<string, unknown> {
  const out: Record<string, unknown> = { v: RANK_METADATA_VERSION };
  for (const [wire, field] of Object.entries(WIRE_KEYS)) {
    if (wire === 'v') continue;
    const value = (meta as unknown as Record<string, unknown>)[field];
    if (value !== undefined) out[wire] = value;
  }
  return out;
}

function malformed(message: string, cause?: unknown): Error {
  return tcError('TC_ERR_MALFORMED', `rank payload: ${message}`, cause === undefined ? {} : { cause });
}

function validate(raw: unknown): RankMetadata {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw) || raw instanceof Uint8Array) {
    throw malformed('the payload is not a map');
  }
  const map = raw as Record<string, unknown>;
  for (const key of Object.keys(map)) {
    // Own keys only: `in` would accept 'constructor' or 'toString' through Object.prototype.
    if (!Object.hasOwn(WIRE_KEYS, key)) throw malformed(`unknown key '${key.slice(0, 64)}'`);
  }
  if (map.v !== RANK_METADATA_VERSION) throw malformed(`schema version ${String(map.v)} is not ${RANK_METADATA_VERSION}`);
  const id = (key: string): string => {
    const value = map[key];
    if (typeof value !== 'string' || !HANDSHAKE_ID_PATTERN.test(value)) {
      throw malformed(`'${key}' must be 1..128 characters of [A-Za-z0-9._:@+-]`);
    }
    return value;
  };
  const int = (key: string, value: unknown, max: number): number => {
    const n = typeof value === 'bigint' && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0 || n > max) {
      throw malformed(`'${key}' must be an integer in 0..${max}`);
    }
    return n;
  };
  const list = <T>(key: string, each: (value: unknown) => T): T[] => {
    const value = map[key];
    if (!Array.isArray(value)) throw malformed(`'${key}' must be an array`);
    return value.map(each);
  };
  const agent = map.agent_metadata;
  if (!(agent instanceof Uint8Array)) throw malformed("'agent_metadata' must be msgpack bin (bytes)");
  const layout = map.kv_cache_layout;
  if (typeof layout !== 'string' || layout.length === 0 || layout.length > 32) {
    throw malformed("'kv_cache_layout' must be a string of 1..32 characters");
  }
  const tpSize = int('tp_size', map.tp_size, MAX_HANDSHAKE_RANK);
  const tpRank = int('tp_rank', map.tp_rank, MAX_HANDSHAKE_RANK - 1);
  if (tpSize < 1 || tpRank >= tpSize) throw malformed(`'tp_rank' ${tpRank} must be below 'tp_size' ${tpSize} (at least 1)`);
  const meta: RankMetadata = {
    engineId: id('engine_id'),
    tpRank,
    dpRank: int('dp_rank', map.dp_rank, MAX_HANDSHAKE_RANK - 1),
    compatibilityHash: id('compatibility_hash'),
    incarnation: id('incarnation'),
    // A copy: the decoder's bin is a view into the request body.
    agentMetadata: Uint8Array.prototype.slice.call(agent),
    kvCachesBaseAddr: list('kv_caches_base_addr', (v) => {
      const n = typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? BigInt(v) : v;
      if (typeof n !== 'bigint' || n < 0n || n >= 1n << 64n) throw malformed("'kv_caches_base_addr' holds uint64 values only");
      return n;
    }),
    blockLens: list('block_lens', (v) => int('block_lens[]', v, Number.MAX_SAFE_INTEGER)),
    blockStrides: list('block_strides', (v) => int('block_strides[]', v, Number.MAX_SAFE_INTEGER)),
    numBlocks: int('num_blocks', map.num_blocks, Number.MAX_SAFE_INTEGER),
    blockSize: int('block_size', map.block_size, Number.MAX_SAFE_INTEGER),
    kvCacheLayout: layout,
    tpSize,
    deviceId: int('device_id', map.device_id, Number.MAX_SAFE_INTEGER),
    ...(map.extra === undefined ? {} : { extra: validateExtra(map.extra) }),
  };
  return meta;
}

function validateExtra(extra: unknown): Record<string, unknown> {
  if (typeof extra !== 'object' || extra === null || Array.isArray(extra) || extra instanceof Uint8Array) {
    throw malformed("'extra' must be a map");
  }
  const keys = Object.keys(extra);
  if (keys.length > MAX_EXTRA_KEYS) throw malformed(`'extra' has ${keys.length} keys (at most ${MAX_EXTRA_KEYS})`);
  for (const key of keys) {
    let size: number;
    try {
      size = encode((extra as Record<string, unknown>)[key], { useBigInt64: true }).byteLength;
    } catch (error) {
      // The encoder refuses values nested deeper than 100 levels (the decoder reads any depth).
      throw malformed(`'extra.${key.slice(0, 64)}' cannot be encoded: ${(error as Error).message}`, error);
    }
    if (size > MAX_EXTRA_BYTES) throw malformed(`'extra.${key.slice(0, 64)}' is ${size} bytes (at most ${MAX_EXTRA_BYTES})`);
  }
  return extra as Record<string, unknown>;
}
