// The payload codec's strictness against hostile payloads: keys inherited from Object.prototype are unknown
// keys, and a deeply nested `extra` value is a coded TC_ERR_MALFORMED, never an uncoded error.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encode } from '@msgpack/msgpack';
import { isTensorcastError } from '../core/errors.js';
import { decodeRankMetadata, encodeRankMetadata, type RankMetadata } from './rank-metadata.js';

const META: RankMetadata = {
  engineId: 'e1',
  tpRank: 0,
  dpRank: 0,
  compatibilityHash: 'h1',
  incarnation: 'i1',
  agentMetadata: new Uint8Array(16),
  kvCachesBaseAddr: [1n],
  blockLens: [2],
  blockStrides: [2],
  numBlocks: 1,
  blockSize: 16,
  kvCacheLayout: 'HND',
  tpSize: 1,
  deviceId: 0,
};

/** META's wire keys, written by hand so the test does not lean on the encoder it checks. */
const WIRE = {
  v: 1,
  engine_id: 'e1',
  tp_rank: 0,
  dp_rank: 0,
  compatibility_hash: 'h1',
  incarnation: 'i1',
  kv_caches_base_addr: [1],
  block_lens: [2],
  block_strides: [2],
  num_blocks: 1,
  block_size: 16,
  kv_cache_layout: 'HND',
  tp_size: 1,
  device_id: 0,
};
const wire = (more: Record<string, unknown>): Uint8Array => encode({ ...WIRE, ...more });

function assertMalformed(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(isTensorcastError(error), `not a coded error: ${String(error)}`);
    assert.equal(error.code, 'TC_ERR_MALFORMED');
    assert.match(error.message, pattern);
    return true;
  });
}

test('keys that Object.prototype has (constructor, toString, hasOwnProperty) are unknown keys', () => {
  for (const key of ['constructor', 'toString', 'hasOwnProperty', 'valueOf']) {
    const bytes = wire({ agent_metadata: new Uint8Array(4), [key]: 1 });
    assertMalformed(() => decodeRankMetadata(bytes), new RegExp(`unknown key '${key}'`));
  }
});

test('a deeply nested extra value is TC_ERR_MALFORMED, fed to the decoder and to the encoder', () => {
  let deep: unknown = 1;
  for (let i = 0; i < 500; i++) deep = [deep];
  const bytes = wire({ agent_metadata: new Uint8Array(4), extra: {} });
  // Splice the nested value in by hand: the msgpack encoder refuses to write it (depth > 100).
  const nested = Buffer.concat([Buffer.alloc(500, 0x91), Buffer.from([0x01])]);
  const withExtra = Buffer.from(bytes);
  const at = withExtra.lastIndexOf(0x80); // the empty `extra` map
  const hostile = Buffer.concat([withExtra.subarray(0, at), Buffer.from([0x81, 0xa1, 0x61]), nested, withExtra.subarray(at + 1)]);
  assertMalformed(() => decodeRankMetadata(hostile), /extra\.a/);
  assertMalformed(() => encodeRankMetadata({ ...META, extra: { a: deep } }), /extra\.a/);
});
