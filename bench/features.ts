// features suite (issue 11, section 5): object put and get through a private daemon against plain
// baselines measured in the same run.
// - TCP: put / get of 4 KiB, 1 MiB and 64 MiB tensors (SDK objects API, transport tcp) against Redis SET /
//   GET of the same bytes from the same client (node-redis, one connection, 127.0.0.1:6379). Target
//   >= 1.5x for 1 MiB and up.
// - shm: put / get of the same sizes (transport shm) against a memcpy of the same bytes into a buffer of
//   the same size (Buffer.copy). Target >= 0.7x for 1 MiB and up.
// - Small samples: feature-store samples of 8 tensors of 4 KiB, put then got, in samples/s, against Redis
//   MSET / MGET of the same 8 values (one round trip each).
// Every ours/baseline pair runs the same number of operations; each side is the best of `repeats` runs.

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type TensorcastClient } from '../src/client/tensorcast-client.js';
import { spawnPrivateDaemon, type SpawnedDaemon } from '../src/cli/spawn-daemon.js';
import { bestOf, result, type BenchResult } from './measure.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const REDIS_URL = process.env.TENSORCAST_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
/** Sizes measured and how many operations one run makes of each (about 256 MiB per run for the big ones). */
const CASES: readonly { readonly bytes: number; readonly ops: number; readonly label: string }[] = [
  { bytes: 4 * KiB, ops: 2000, label: '4 KiB' },
  { bytes: 1 * MiB, ops: 128, label: '1 MiB' },
  { bytes: 64 * MiB, ops: 4, label: '64 MiB' },
];
const SAMPLE_TENSORS = 8;
const SAMPLES = 300;

function withTarget(r: BenchResult, min: number | undefined): BenchResult {
  if (min === undefined) return r;
  return { ...r, target: `ratio >= ${min}`, met: r.ratio >= min };
}

type Redis = Awaited<ReturnType<typeof openRedis>>;

/** A node-redis client whose bulk strings come back as Buffers (no UTF-8 decoding), or undefined without Redis. */
async function openRedis() {
  const { createClient, RESP_TYPES } = await import('redis');
  const r = createClient({ url: REDIS_URL, socket: { connectTimeout: 3000, reconnectStrategy: false } });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return r.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
  } catch (error) {
    console.log(`features  redis baseline skipped: no Redis at ${REDIS_URL} (${(error as Error).message})`);
    return undefined;
  }
}

/** Object put/get over one transport for every size, with the baseline for each. */
async function objectCases(
  client: TensorcastClient,
  transport: 'tcp' | 'shm',
  repeats: number,
  redis: Redis,
  prefix: string,
): Promise<BenchResult[]> {
  const objects = client.objects();
  const out: BenchResult[] = [];
  for (const c of CASES) {
    const data = randomBytes(c.bytes);
    const into = Buffer.allocUnsafe(c.bytes);
    const total = c.bytes * c.ops;
    const key = (i: number): string => `${prefix}/${transport}-${c.label.replace(' ', '')}-${i}`;
    const put = await bestOf(repeats, async () => {
      for (let i = 0; i < c.ops; i++) await objects.put(key(i), data, { transport });
    });
    const get = await bestOf(repeats, async () => {
      for (let i = 0; i < c.ops; i++) await objects.get(key(i), { into, transport });
    });
    await objects.delete(Array.from({ length: c.ops }, (_, i) => key(i)));
    const min = c.bytes >= MiB ? (transport === 'tcp' ? 1.5 : 0.7) : undefined;
    const oursPut = `objects.put ${transport}`;
    const oursGet = `objects.get ${transport} into`;
    if (transport === 'tcp') {
      if (redis === undefined) continue;
      const rkey = (i: number): string => `tc-bench-${prefix}-${i}`;
      const set = await bestOf(repeats, async () => {
        for (let i = 0; i < c.ops; i++) await redis.set(rkey(i), data);
      });
      const rget = await bestOf(repeats, async () => {
        for (let i = 0; i < c.ops; i++) {
          const v = await redis.get(rkey(i));
          if (v === null) throw new Error('redis baseline: value vanished');
          v.copy(into);
        }
      });
      await redis.del(Array.from({ length: c.ops }, (_, i) => rkey(i)));
      out.push(withTarget(result('features', `put ${c.label} x${c.ops}`, oursPut, 'redis SET', total, put, set), min));
      out.push(withTarget(result('features', `get ${c.label} x${c.ops}`, oursGet, 'redis GET + copy', total, get, rget), min));
    } else {
      const memcpy = await bestOf(repeats, () => {
        for (let i = 0; i < c.ops; i++) data.copy(into);
      });
      out.push(withTarget(result('features', `put ${c.label} x${c.ops}`, oursPut, 'memcpy', total, put, memcpy), min));
      out.push(withTarget(result('features', `get ${c.label} x${c.ops}`, oursGet, 'memcpy', total, get, memcpy), min));
    }
  }
  return out;
}

/** Samples of 8 x 4 KiB through the feature store, in samples/s, against Redis MSET / MGET of the same values. */
async function smallSamples(client: TensorcastClient, repeats: number, redis: Redis, storeId: string): Promise<BenchResult[]> {
  const store = client.features(storeId, {});
  const tensors = Object.fromEntries(
    Array.from({ length: SAMPLE_TENSORS }, (_, i) => [`t${i}`, { data: randomBytes(4 * KiB), dtype: 'F32' as const, shape: [1024] }]),
  );
  let refs: Awaited<ReturnType<typeof store.put>>[] = [];
  const put = await bestOf(repeats, async () => {
    refs = [];
    for (let s = 0; s < SAMPLES; s++) refs.push(await store.put(`s${s}`, tensors));
  });
  const get = await bestOf(repeats, async () => {
    for (const ref of refs) await store.get(ref);
  });
  for (const ref of refs) await store.release(ref);
  await store.drain();
  if (redis === undefined) return [];
  const values = Object.values(tensors).map((t) => t.data);
  const mset = await bestOf(repeats, async () => {
    for (let s = 0; s < SAMPLES; s++) await redis.mSet(values.map((v, i): [string, Buffer] => [`tc-bench-${storeId}-${s}-${i}`, v]));
  });
  const mget = await bestOf(repeats, async () => {
    for (let s = 0; s < SAMPLES; s++) await redis.mGet(values.map((_, i) => `tc-bench-${storeId}-${s}-${i}`));
  });
  await redis.del(
    Array.from(
      { length: SAMPLES * SAMPLE_TENSORS },
      (_, k) => `tc-bench-${storeId}-${Math.floor(k / SAMPLE_TENSORS)}-${k % SAMPLE_TENSORS}`,
    ),
  );
  const rate = (seconds: number): number => SAMPLES / seconds;
  const sample = (name: string, ours: string, baseline: string, o: number, b: number): BenchResult => ({
    suite: 'features',
    case: name,
    ours,
    baseline,
    oursRate: rate(o),
    baselineRate: rate(b),
    ratio: b / o,
    unit: 'samples/s',
    note: `${SAMPLES} samples of ${SAMPLE_TENSORS} tensors of 4 KiB, one after the other`,
  });
  return [
    sample('sample put 8x4KiB', 'features.put', 'redis MSET', put, mset),
    sample('sample get 8x4KiB', 'features.get', 'redis MGET', get, mget),
  ];
}

/** The suite. */
export async function featuresSuite(repeats: number): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'tc-bench-features-'));
  let daemon: SpawnedDaemon | undefined;
  const redis = await openRedis();
  try {
    daemon = await spawnPrivateDaemon(dir, { memoryBudget: '2GiB' });
    const client = await connect({ url: daemon.controlUrl, tokenFile: join(dir, 'token') });
    const prefix = `bench${process.pid}`;
    try {
      return [
        ...(await objectCases(client, 'tcp', repeats, redis, prefix)),
        ...(await objectCases(client, 'shm', repeats, redis, prefix)),
        ...(await smallSamples(client, repeats, redis, `${prefix}-samples`)),
      ];
    } finally {
      await client.close();
    }
  } finally {
    await redis?.quit().catch(() => undefined);
    await daemon?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
