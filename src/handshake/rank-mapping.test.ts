import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mapRanks, type RankMappingInput } from './rank-mapping.js';

// vLLM's documented behaviour (nixl/tp_mapping.py compute_tp_mapping), written out independently: the remote
// ranks a local rank reads, and the offset into the remote's heads ("rank_offset_factor", in heads here).
function vllmSources(localTp: number, rank: number, remoteTp: number, heads: number, mla: boolean): number[] {
  if (mla || localTp >= remoteTp) return [Math.floor((rank * remoteTp) / localTp)];
  const abs = remoteTp / localTp;
  const start = rank * abs;
  const firstOfHead = new Map<number, number>();
  for (let i = 0; i < abs; i++) {
    const head = Math.floor(((start + i) * heads) / remoteTp);
    if (!firstOfHead.has(head)) firstOfHead.set(head, start + i);
  }
  return [...firstOfHead.values()].sort((a, b) => a - b);
}

function vllmOffsetHeads(localTp: number, rank: number, remoteTp: number, heads: number, mla: boolean): number {
  if (mla || localTp <= remoteTp) return 0;
  if (localTp > heads) {
    const localHead = Math.floor((rank * heads) / localTp);
    const pStart = Math.floor((vllmSources(localTp, rank, remoteTp, heads, mla)[0]! * heads) / remoteTp);
    return localHead - pStart;
  }
  // rank_offset_factor counts local-sized chunks of heads.
  return (rank % (localTp / remoteTp)) * (heads / localTp);
}

const divides = (a: number, b: number): boolean => Math.max(a, b) % Math.min(a, b) === 0;

test('mapRanks agrees with vLLM for every TP pair 1..8 that divides, with 1..16 KV heads and MLA', () => {
  let cases = 0;
  for (let localTp = 1; localTp <= 8; localTp++) {
    for (let remoteTp = 1; remoteTp <= 8; remoteTp++) {
      if (!divides(localTp, remoteTp)) continue;
      for (const heads of [1, 2, 4, 8, 16]) {
        for (const mla of [false, true]) {
          if (mla && heads !== 1) continue;
          if (!mla && (!divides(localTp, heads) || !divides(remoteTp, heads))) continue;
          const covered = new Set<number>();
          for (let rank = 0; rank < localTp; rank++) {
            const input: RankMappingInput = { localTp, localRank: rank, remoteTp, numKvHeads: heads, mla, headDim: 128 };
            const m = mapRanks(input);
            const what = JSON.stringify(input);
            assert.deepEqual(
              m.reads.map((r) => r.remoteRank),
              vllmSources(localTp, rank, remoteTp, heads, mla),
              what,
            );
            if (localTp > remoteTp) assert.equal(m.reads[0]!.remoteHeadOffset, vllmOffsetHeads(localTp, rank, remoteTp, heads, mla), what);
            // The reads cover exactly the local rank's heads, in order, without overlap.
            let next = m.localHeads.start;
            for (const r of m.reads) {
              assert.equal(r.heads.start, next, what);
              assert.equal(r.localHeadOffset, r.heads.start - m.localHeads.start, what);
              assert.equal(r.remoteElementOffset, r.remoteHeadOffset * 128, what);
              assert.equal(r.elementCount, r.heads.count * 128, what);
              next += r.heads.count;
            }
            assert.equal(next, m.localHeads.start + m.localHeads.count, what);
            for (let h = m.localHeads.start; h < next; h++) covered.add(h);
            cases++;
          }
          assert.equal(covered.size, heads, `every head is read by some local rank (${localTp}/${remoteTp}/${heads})`);
        }
      }
    }
  }
  assert.ok(cases > 200, `${cases} cases`);
});

test('mapRanks: the cases of the vLLM docs, spelled out', () => {
  // D TP 4 reads P TP 2 (8 heads): two decode ranks share one prefill rank, each its half.
  assert.deepEqual(mapRanks({ localTp: 4, localRank: 3, remoteTp: 2, numKvHeads: 8 }), {
    localHeads: { start: 6, count: 2 },
    reads: [{ remoteRank: 1, heads: { start: 6, count: 2 }, remoteHeadOffset: 2, localHeadOffset: 0 }],
    remoteReplicated: false,
    localReplicated: false,
  });
  // D TP 2 reads P TP 4: one decode rank reads two prefill ranks whole.
  assert.deepEqual(mapRanks({ localTp: 2, localRank: 1, remoteTp: 4, numKvHeads: 8 }).reads, [
    { remoteRank: 2, heads: { start: 4, count: 2 }, remoteHeadOffset: 0, localHeadOffset: 0 },
    { remoteRank: 3, heads: { start: 6, count: 2 }, remoteHeadOffset: 0, localHeadOffset: 2 },
  ]);
  // P TP 8 with 2 KV heads replicates each head on 4 ranks: D TP 1 reads ranks 0 and 4 only.
  const m = mapRanks({ localTp: 1, localRank: 0, remoteTp: 8, numKvHeads: 2 });
  assert.deepEqual(
    m.reads.map((r) => r.remoteRank),
    [0, 4],
  );
  assert.equal(m.remoteReplicated, true);
  // MLA: P TP 8, D TP 2: decode rank 1 reads prefill rank 4, one read.
  assert.deepEqual(
    mapRanks({ localTp: 2, localRank: 1, remoteTp: 8, numKvHeads: 1, mla: true }).reads.map((r) => r.remoteRank),
    [4],
  );
});

test('mapRanks refuses sizes that do not divide, ranks out of range and non-integers', () => {
  const bad = (input: RankMappingInput): void =>
    assert.throws(
      () => mapRanks(input),
      (e: unknown) => (e as { code?: string }).code === 'TC_ERR_INVALID_ARGUMENT',
      JSON.stringify(input),
    );
  bad({ localTp: 3, localRank: 0, remoteTp: 2, numKvHeads: 6 });
  bad({ localTp: 2, localRank: 2, remoteTp: 2, numKvHeads: 2 });
  bad({ localTp: 2, localRank: -1, remoteTp: 2, numKvHeads: 2 });
  bad({ localTp: 4, localRank: 0, remoteTp: 2, numKvHeads: 6 });
  bad({ localTp: 0, localRank: 0, remoteTp: 2, numKvHeads: 2 });
  bad({ localTp: 2, localRank: 0, remoteTp: 2, numKvHeads: 2.5 });
  bad({ localTp: 2, localRank: 0, remoteTp: 2, numKvHeads: 2, headDim: 0 });
});

test('mapRanks refuses inputs no listener could serve or the caller did not mean: TP above 4096, a non-boolean mla, overflowing offsets', () => {
  const refused = (input: unknown, pattern: RegExp): void =>
    assert.throws(
      () => mapRanks(input as RankMappingInput),
      (e: Error & { code?: string }) => e.code === 'TC_ERR_INVALID_ARGUMENT' && pattern.test(e.message),
      JSON.stringify(input),
    );
  // Remote ranks above 4095 cannot be published; and a huge TP used to loop over every remote rank (seconds).
  refused({ localTp: 1, localRank: 0, remoteTp: 8192, numKvHeads: 8 }, /remoteTp must be .*4096/);
  refused({ localTp: 1, localRank: 0, remoteTp: 2 ** 40, numKvHeads: 2 ** 40 }, /remoteTp must be .*4096/);
  refused({ localTp: 8192, localRank: 0, remoteTp: 1, numKvHeads: 8 }, /localTp must be .*4096/);
  assert.equal(mapRanks({ localTp: 1, localRank: 0, remoteTp: 4096, numKvHeads: 8 }).reads.length, 8);
  // A string 'false' is truthy: it must not silently switch to the MLA rules.
  refused({ localTp: 2, localRank: 1, remoteTp: 4, numKvHeads: 8, mla: 'false' }, /mla must be a boolean/);
  // Element offsets must stay exact integers.
  refused({ localTp: 2, localRank: 0, remoteTp: 4, numKvHeads: 8, headDim: 2 ** 52 }, /headDim/);
  refused({ localTp: 2, localRank: '1', remoteTp: 4, numKvHeads: 8 }, /localRank must be an integer/);
  refused(null, /input must be an object/);
});
