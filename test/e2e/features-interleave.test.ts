// A consumer reading while a producer process re-puts the same samples, over random interleavings driven by
// a seed: every get returns exactly the bytes of its ref's generation, or TC_ERR_NOT_FOUND (stale), never
// mixed bytes. Every 8-byte word of a tensor is (tag of sampleId and generation, offset), so bytes of another
// generation, another sample or another offset cannot pass.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect } from '../../src/client/tensorcast-client.js';
import type { SampleRef } from '../../src/features/sample-ref.js';
import { isTensorcastError } from '../../src/core/errors.js';
import { startDaemon } from '../harness/daemon.js';
import { moduleUrl, spawnNode } from '../helpers/run-node.js';

const SAMPLES = 6;
const PUTS = 80;
const SEEDS = (process.env['TENSORCAST_INTERLEAVE_SEEDS'] ?? '1,2,3').split(',').map(Number);

/** A seeded PRNG (mulberry32) in [0, 1). */
const rng = (seed: number): (() => number) => {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
};
/** Bytes of tensor x of sample `s`, generation `g`: 0 to 2.4 MiB, a multiple of 8. */
const sizeOf = (s: number, g: number): number => 8 * ((s * 7919 + g * 104729) % 300_000);
/** The content: each 8-byte word is (s * 65536 + g, offset). */
const fill = (s: number, g: number, size: number): Buffer => {
  const b = Buffer.alloc(size);
  for (let i = 0; i + 8 <= size; i += 8) {
    b.writeUInt32LE(s * 65536 + g, i);
    b.writeUInt32LE(i, i + 4);
  }
  return b;
};
/** The same functions for the producer script (compiled JS has no types). */
const COMMON = `const rng = ${rng.toString()}; const sizeOf = ${sizeOf.toString()}; const fill = ${fill.toString()};`;

const PRODUCER = `
  import { connect } from ${moduleUrl('../../src/client/tensorcast-client.js', import.meta.url)};
  ${COMMON}
  const [url, token, seed, puts, samples] = process.argv.slice(1).map((v, i) => (i < 2 ? v : Number(v)));
  const client = await connect({ url, token });
  const store = client.features('il');
  const random = rng(seed);
  const generations = new Array(samples).fill(0);
  for (let n = 0; n < puts; n++) {
    const s = Math.floor(random() * samples);
    const g = generations[s]++;
    const size = sizeOf(s, g);
    const ref = await store.put('s' + s, { x: { data: fill(s, g, size), dtype: 'U8', shape: [size] }, y: { data: fill(s, g, 16), dtype: 'F32', shape: [4] } });
    if (ref.generation !== g) throw new Error('generation ' + ref.generation + ' for ' + g);
    process.stdout.write(JSON.stringify(ref) + '\\n');
  }
  await client.close();`;

for (const seed of SEEDS) {
  test(`features interleavings (seed ${seed}): a consumer reading while a producer process re-puts gets its ref's bytes or TC_ERR_NOT_FOUND, never mixed`, async (t) => {
    const d = await startDaemon(t);
    const client = await connect({ url: d.controlUrl, token: d.token });
    t.after(() => client.close());
    const store = client.features('il');
    const child = spawnNode(PRODUCER, [d.controlUrl, d.token, String(seed), String(PUTS), String(SAMPLES)]);
    t.after(() => void child.kill('SIGKILL'));
    const refs: SampleRef[] = [];
    let buffered = '';
    let err = '';
    child.stdout!.on('data', (b: Buffer) => {
      buffered += b.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const l of lines) if (l !== '') refs.push(JSON.parse(l) as SampleRef);
    });
    child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    let done = false;
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (code) => {
        done = true;
        resolve(code);
      }),
    );
    const random = rng(seed * 7 + 1);
    const outcomes = { same: 0, stale: 0, none: 0 };
    const check = async (ref: SampleRef | undefined): Promise<void> => {
      if (ref === undefined) {
        outcomes.none++;
        return;
      }
      const s = Number(ref.sampleId.slice(1));
      try {
        const got = await store.get(ref);
        assert.ok(
          Buffer.from(got.x!.data).equals(fill(s, ref.generation, sizeOf(s, ref.generation))),
          `${ref.sampleId} g${ref.generation}: x`,
        );
        assert.ok(Buffer.from(got.y!.data).equals(fill(s, ref.generation, 16)), `${ref.sampleId} g${ref.generation}: y`);
        outcomes.same++;
      } catch (error) {
        if (!isTensorcastError(error, 'TC_ERR_NOT_FOUND')) throw error;
        outcomes.stale++;
      }
    };
    while (!done) {
      if (refs.length === 0) {
        await new Promise((resolve) => setTimeout(resolve, 10)); // the producer is starting
        continue;
      }
      const pick = random();
      // Reads of the current generation (racing the next re-put), of a ref the producer handed out a while
      // ago (often superseded), and several at once.
      if (pick < 0.4) await check(await store.latest(`s${Math.floor(random() * SAMPLES)}`));
      else if (pick < 0.8) await check(refs.length === 0 ? undefined : refs[Math.floor(random() * refs.length)]);
      else await Promise.all([0, 1, 2].map(() => check(refs.length === 0 ? undefined : refs[refs.length - 1 - Math.floor(random() * 3)])));
      if (random() < 0.3) await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(await exited, 0, err);
    assert.equal(refs.length, PUTS);
    // After the producer: the latest refs read, every superseded one is stale.
    const latest = new Map(refs.map((r) => [r.sampleId, r]));
    for (const r of refs) {
      if (latest.get(r.sampleId) === r) await check(r);
      else await assert.rejects(store.get(r), { code: 'TC_ERR_NOT_FOUND' });
    }
    t.diagnostic(`seed ${seed}: ${JSON.stringify(outcomes)}`);
    assert.ok(outcomes.same > 0);
  });
}
