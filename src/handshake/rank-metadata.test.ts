import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encode } from '@msgpack/msgpack';
import fc from 'fast-check';
import { decodeRankMetadata, encodeRankMetadata, type RankMetadata } from './rank-metadata.js';

const id = fc.stringMatching(/^[A-Za-z0-9._:@+-]{1,40}$/);
const u = fc.integer({ min: 0, max: 2 ** 40 });
const meta: fc.Arbitrary<RankMetadata> = fc
  .record({
    engineId: id,
    tpSize: fc.integer({ min: 1, max: 64 }),
    dpRank: fc.integer({ min: 0, max: 4095 }),
    compatibilityHash: id,
    incarnation: id,
    agentMetadata: fc.uint8Array({ maxLength: 4096 }),
    kvCachesBaseAddr: fc.array(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), { maxLength: 16 }),
    blockLens: fc.array(u, { maxLength: 16 }),
    blockStrides: fc.array(u, { maxLength: 16 }),
    numBlocks: u,
    blockSize: u,
    kvCacheLayout: fc.constantFrom('HND', 'NHD', 'custom-layout'),
    deviceId: fc.integer({ min: 0, max: 1024 }),
    rankSeed: fc.nat(),
  })
  .map(({ rankSeed, ...m }) => ({ ...m, tpRank: rankSeed % m.tpSize }));

const codeOf = (e: unknown): unknown => (e as { code?: unknown }).code;

test('rank payload: decode(encode(m)) gives m back, for any valid metadata', () => {
  fc.assert(
    fc.property(meta, (m) => {
      const back = decodeRankMetadata(encodeRankMetadata(m));
      assert.deepEqual({ ...back, agentMetadata: [...back.agentMetadata] }, { ...m, agentMetadata: [...m.agentMetadata] });
    }),
    { numRuns: 200 },
  );
});

test('rank payload: random bytes, truncations and mutations are TC_ERR_MALFORMED, never another error', () => {
  const sample = encodeRankMetadata({
    engineId: 'e',
    tpRank: 0,
    dpRank: 0,
    compatibilityHash: 'h',
    incarnation: 'i',
    agentMetadata: new Uint8Array(300).fill(7),
    kvCachesBaseAddr: [1n << 47n],
    blockLens: [4096],
    blockStrides: [4096],
    numBlocks: 10,
    blockSize: 16,
    kvCacheLayout: 'HND',
    tpSize: 1,
    deviceId: 0,
  });
  const mustReject = (bytes: Uint8Array): void => {
    try {
      decodeRankMetadata(bytes);
    } catch (error) {
      assert.equal(codeOf(error), 'TC_ERR_MALFORMED', String(error));
      return;
    }
    // A mutation may still be a valid payload (a changed byte of the blob or a number): then it round-trips.
    const m = decodeRankMetadata(bytes);
    assert.deepEqual(decodeRankMetadata(encodeRankMetadata(m)), m);
  };
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 512 }), (b) => mustReject(b)),
    { numRuns: 500 },
  );
  for (let n = 0; n < sample.byteLength; n += 7) mustReject(sample.subarray(0, n));
  fc.assert(
    fc.property(fc.nat(sample.byteLength - 1), fc.integer({ min: 0, max: 255 }), (at, value) => {
      const b = Uint8Array.from(sample);
      b[at] = value;
      mustReject(b);
    }),
    { numRuns: 500 },
  );
});

test('rank payload: schema violations name the field', () => {
  const base = {
    v: 1,
    engine_id: 'e',
    tp_rank: 0,
    dp_rank: 0,
    compatibility_hash: 'h',
    incarnation: 'i',
    agent_metadata: new Uint8Array(4),
    kv_caches_base_addr: [1],
    block_lens: [1],
    block_strides: [1],
    num_blocks: 1,
    block_size: 1,
    kv_cache_layout: 'HND',
    tp_size: 1,
    device_id: 0,
  };
  const bad = (patch: Record<string, unknown>, field: string): void =>
    assert.throws(
      () => decodeRankMetadata(encode({ ...base, ...patch }, { useBigInt64: true, ignoreUndefined: true })),
      (e: unknown) => codeOf(e) === 'TC_ERR_MALFORMED' && String((e as Error).message).includes(field),
      field,
    );
  bad({ v: 2 }, 'version');
  bad({ surprise: 1 }, 'surprise');
  bad({ agent_metadata: 'text' }, 'agent_metadata');
  bad({ tp_rank: 1 }, 'tp_rank');
  bad({ kv_caches_base_addr: [-1] }, 'kv_caches_base_addr');
  bad({ block_lens: [1.5] }, 'block_lens');
  bad({ engine_id: 'a/b' }, 'engine_id');
  bad({ kv_cache_layout: '' }, 'kv_cache_layout');
  bad({ extra: [1] }, 'extra');
  assert.throws(
    () => decodeRankMetadata(encode(base), 10),
    (e: unknown) => codeOf(e) === 'TC_ERR_TOO_LARGE',
  );
});
