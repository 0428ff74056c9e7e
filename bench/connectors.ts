// connectors suite (issue 9, section 5): the remote model backends' read paths against plain clients of the
// same servers, measured in the same run.
// - Redis (127.0.0.1:6379, a fresh key prefix deleted afterwards): one 256 MiB object stored as 64 MiB chunks,
//   read back through the connector (pipelined 4 MiB GETRANGEs, 16 in flight) whole and in 16 MiB ranges
//   into a preallocated buffer, against `redis-benchmark -c 1 GET` of a value of the chunk size (its rps x
//   the value size; its -d only shapes its own SET values, so the value is SET by us and fetched by a custom
//   GET command), and against a GET loop of the same value with the `redis` package (one connection,
//   Buffer replies copied into the same kind of buffer), the plain Node client.
// - S3 (s3rver started as the test harness starts it): one 256 MiB object read by the connector's ranged
//   GETs (8 MiB parts, 16 at once) against one plain sequential GetObject of the whole object (AWS SDK,
//   body streamed into a preallocated buffer).
// - The TP=4 rank load from a lazy artifact (Redis and S3): see lazyRank.

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { readFileSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '../src/client/tensorcast-client.js';
import { DEMO_MODEL } from '../src/cli/commands/demo.js';
import { spawnPrivateDaemon, type SpawnedDaemon } from '../src/cli/spawn-daemon.js';
import { writeSyntheticModel } from '../src/format/synthetic-model.js';
import { createConnector } from '../src/connectors/create-connector.js';
import type { Connector } from '../src/connectors/connector.js';
import { startS3Server, S3RVER_KEY } from '../test/harness/s3-server.js';
import { bestOf, result, type BenchResult } from './measure.js';

const MiB = 1024 * 1024;
/** The object both backends serve. */
const OBJECT_BYTES = 256 * MiB;
/** Redis chunk size (the connector's default) and the baseline value size. */
const REDIS_CHUNK = 64 * MiB;
/** Ranged reads of the object, one after the other. */
const RANGE_BYTES = 16 * MiB;
const CONCURRENCY = 16;
const REDIS_HOST = '127.0.0.1';
const REDIS_PORT = 6379;
/** GETs of the baseline value per redis-benchmark run (enough that its start-up does not count). */
const REDIS_BENCHMARK_REQUESTS = 24;

/** Random-looking bytes (no compression or zero-page shortcut anywhere), cheaper than randomBytes for 256 MiB. */
function payload(bytes: number): Buffer {
  const seed = randomBytes(MiB);
  const out = Buffer.allocUnsafeSlow(bytes);
  for (let at = 0; at < bytes; at += MiB) {
    seed.copy(out, at, 0, Math.min(MiB, bytes - at));
    out.writeUInt32LE(at / MiB, at); // every MiB differs
  }
  return out;
}

/** Reads `dest.length` bytes of `key` as consecutive `range`-byte readInto calls. */
async function readRanges(c: Connector, key: string, dest: Buffer, range: number): Promise<void> {
  for (let at = 0; at < dest.length; at += range) {
    await c.readInto(key, at, dest.subarray(at, Math.min(dest.length, at + range)));
  }
}

/** redis-benchmark's requests per second for `GET key` on one connection, or a reason it could not run. */
function redisBenchmarkRps(key: string, requests: number): number | string {
  const r = spawnSync(
    'redis-benchmark',
    ['-h', REDIS_HOST, '-p', String(REDIS_PORT), '-n', String(requests), '-c', '1', '--csv', 'GET', key],
    { encoding: 'utf8', timeout: 300_000 },
  );
  if (r.error !== undefined) return `redis-benchmark did not run: ${r.error.message}`;
  const line = r.stdout.split('\n').find((l) => l.startsWith('"GET'));
  const rps = line === undefined ? Number.NaN : Number((JSON.parse(`[${line}]`) as unknown[])[1]);
  return Number.isFinite(rps) && rps > 0 ? rps : `redis-benchmark printed no rate: ${r.stdout}${r.stderr}`;
}

/** Runs the lazy-rank part against a connector URL (while its server is up). */
type LazyHook = (scheme: string, url: string) => Promise<BenchResult[]>;

const withTarget = (r: BenchResult, min: number): BenchResult => ({ ...r, target: `>= ${min.toFixed(2)}`, met: r.ratio >= min });

async function redisPart(repeats: number, data: Buffer, dest: Buffer, lazy: LazyHook): Promise<BenchResult[]> {
  const { createClient, RESP_TYPES } = await import('redis');
  const plain = createClient({ socket: { host: REDIS_HOST, port: REDIS_PORT, connectTimeout: 3000, reconnectStrategy: false } });
  plain.on('error', () => undefined);
  try {
    await plain.connect();
  } catch (error) {
    console.log(`connectors  redis: skipped: no Redis at ${REDIS_HOST}:${REDIS_PORT} (${(error as Error).message})`);
    return [];
  }
  const prefix = `bench-${randomBytes(6).toString('hex')}`;
  const baselineKey = `${prefix}/baseline`;
  const out: BenchResult[] = [];
  const c = await createConnector(`redis://${REDIS_HOST}:${REDIS_PORT}/${prefix}`, { chunkBytes: REDIS_CHUNK, concurrency: CONCURRENCY });
  try {
    await c.write('object', data);
    await c.readInto('object', 0, dest);
    if (!dest.equals(data)) throw new Error('bench connectors: the Redis connector read back different bytes');
    const whole = await bestOf(repeats, () => c.readInto('object', 0, dest));
    const ranged = await bestOf(repeats, () => readRanges(c, 'object', dest, RANGE_BYTES));
    if (!dest.equals(data)) throw new Error('bench connectors: the Redis connector read back different bytes (ranges)');

    // Baselines: one value of the chunk size, fetched whole, again and again.
    const value = data.subarray(0, REDIS_CHUNK);
    await plain.set(baselineKey, value);
    const bytesClient = plain.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
    const perObject = OBJECT_BYTES / REDIS_CHUNK;
    const getLoop = async (): Promise<void> => {
      for (let i = 0; i < perObject; i++) {
        const got = (await bytesClient.get(baselineKey)) as unknown as Buffer;
        got.copy(dest, i * REDIS_CHUNK);
      }
    };
    const nodeRedis = await bestOf(repeats, getLoop);
    const ours = `connector ${CONCURRENCY}x4MiB GETRANGE`;
    const note = `${OBJECT_BYTES / MiB} MiB object in ${REDIS_CHUNK / MiB} MiB chunks`;
    let rps: number | string = 0;
    for (let i = 0; i < Math.max(1, Math.min(repeats, 3)); i++) {
      const r = redisBenchmarkRps(baselineKey, REDIS_BENCHMARK_REQUESTS);
      if (typeof r === 'string') {
        rps = r;
        break;
      }
      rps = Math.max(rps, r);
    }
    if (typeof rps === 'string') console.log(`connectors  redis: redis-benchmark baseline skipped: ${rps}`);
    else {
      const benchSeconds = OBJECT_BYTES / (rps * REDIS_CHUNK);
      const bnote = `${note}; redis-benchmark -c 1 GET of a ${REDIS_CHUNK / MiB} MiB value: ${rps.toFixed(2)} rps`;
      out.push(
        withTarget(
          result('connectors', 'redis read whole object', ours, 'redis-benchmark GET', OBJECT_BYTES, whole, benchSeconds, bnote),
          0.8,
        ),
      );
      out.push(
        withTarget(
          result('connectors', 'redis read 16 MiB ranges', ours, 'redis-benchmark GET', OBJECT_BYTES, ranged, benchSeconds, bnote),
          0.8,
        ),
      );
    }
    const nnote = `${note}; node-redis GET of a ${REDIS_CHUNK / MiB} MiB value x${perObject}, copied into the buffer`;
    out.push(
      withTarget(result('connectors', 'redis read whole object', ours, 'node-redis GET loop', OBJECT_BYTES, whole, nodeRedis, nnote), 0.8),
    );
    out.push(
      withTarget(
        result('connectors', 'redis read 16 MiB ranges', ours, 'node-redis GET loop', OBJECT_BYTES, ranged, nodeRedis, nnote),
        0.8,
      ),
    );
    out.push(...(await lazy('redis', `redis://${REDIS_HOST}:${REDIS_PORT}/${prefix}-model`)));
  } finally {
    await c.delete('object').catch(() => undefined);
    await c.close();
    // Anything left under the prefix (the baseline value, chunks of an interrupted write) goes too.
    for await (const keys of plain.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
      if (keys.length > 0) await plain.unlink(keys);
    }
    plain.destroy();
  }
  return out;
}

async function s3Part(repeats: number, data: Buffer, dest: Buffer, lazy: LazyHook): Promise<BenchResult[]> {
  let server;
  try {
    server = await startS3Server({ removeWhenDone: true });
  } catch (error) {
    console.log(`connectors  s3: skipped: s3rver did not start (${(error as Error).message})`);
    return [];
  }
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { CreateBucketCommand, GetObjectCommand, S3Client } = await import('@aws-sdk/client-s3');
  const client = new S3Client({
    endpoint: server.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: S3RVER_KEY, secretAccessKey: S3RVER_KEY },
  });
  const bucket = 'bench-connectors';
  const url = `s3://${bucket}/model?endpoint=${server.endpoint}&region=us-east-1&accessKeyId=${S3RVER_KEY}&secretAccessKey=${S3RVER_KEY}`;
  let c: Connector | undefined;
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    c = await createConnector(url, { concurrency: CONCURRENCY });
    const conn = c;
    await conn.write('object', data, { size: data.length });
    await conn.readInto('object', 0, dest);
    if (!dest.equals(data)) throw new Error('bench connectors: the S3 connector read back different bytes');
    const ours = await bestOf(repeats, () => conn.readInto('object', 0, dest));
    const plainGet = async (): Promise<void> => {
      const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'model/object' }));
      let at = 0;
      for await (const chunk of res.Body as AsyncIterable<Uint8Array>) {
        dest.set(chunk, at);
        at += chunk.length;
      }
      if (at !== OBJECT_BYTES) throw new Error(`bench connectors: the plain GET returned ${at} bytes`);
    };
    const baseline = await bestOf(repeats, plainGet);
    const lazyResults = await lazy(
      's3',
      `s3://${bucket}/lazy-model?endpoint=${server.endpoint}&region=us-east-1&accessKeyId=${S3RVER_KEY}&secretAccessKey=${S3RVER_KEY}`,
    );
    return [
      withTarget(
        result(
          'connectors',
          's3 read whole object',
          `connector ${CONCURRENCY}x8MiB ranged GET`,
          'one sequential GetObject',
          OBJECT_BYTES,
          ours,
          baseline,
          `${OBJECT_BYTES / MiB} MiB object, s3rver on loopback`,
        ),
        1,
      ),
      ...lazyResults,
    ];
  } finally {
    await c?.close();
    client.destroy();
    await server.stop();
  }
}

/** A sample of a daemon's /metrics (0 when absent). */
async function metric(d: SpawnedDaemon, token: string, sample: string): Promise<number> {
  const text = await (await fetch(`${d.controlUrl}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text();
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? 0 : Number(line.slice(sample.length + 1));
}

/** A daemon of its own (fresh data directory) with a client; stopped by `done`. */
async function freshDaemon(work: string, name: string, roots: readonly string[] = []) {
  const dataDir = join(work, `${name}-${randomBytes(4).toString('hex')}`);
  const d = await spawnPrivateDaemon(dataDir, { importRoots: roots, memoryBudget: '4GiB' });
  const token = readFileSync(join(dataDir, 'token'), 'utf8').trim();
  const client = await connect({ url: d.controlUrl, token });
  return {
    d,
    token,
    client,
    done: async (): Promise<void> => {
      await client.close();
      await d.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

const TP = { size: 4, rank: 1 } as const;

/**
 * The TP=4 rank load from a lazy artifact: the demo model (~300 MB bf16) pushed to `url`, then, on a fresh
 * daemon each time, `import URL --lazy` + load of TP=4 rank 1 (ours) against a full import (the whole
 * model downloaded first, the peers' way) + the same load. Bytes moved = the daemon's
 * tensorcast_connector_bytes_read_total; amplification = bytes moved / the rank's bytes (target <= 1.1).
 */
async function lazyRank(repeats: number, work: string, scheme: string, url: string): Promise<BenchResult[]> {
  const sample = `tensorcast_connector_bytes_read_total{scheme="${scheme}"}`;
  let moved = 0;
  let rankBytes = 0;
  let modelBytes = 0;
  const pass = async (lazy: boolean): Promise<number> => {
    const m = await freshDaemon(work, lazy ? 'lazy' : 'full');
    try {
      const t = performance.now();
      const info = await m.client.importModel(url, { key: 'bench:lazy', lazy });
      const r = await m.client.load('bench:lazy', { tp: TP });
      const seconds = (performance.now() - t) / 1000;
      modelBytes = info.totalBytes;
      rankBytes = r.tensors.reduce((n, x) => n + x.data.length, 0);
      if (lazy) moved = await metric(m.d, m.token, sample);
      return seconds;
    } finally {
      await m.done();
    }
  };
  let lazySeconds = Number.POSITIVE_INFINITY;
  let fullSeconds = Number.POSITIVE_INFINITY;
  for (let i = 0; i < repeats; i++) {
    lazySeconds = Math.min(lazySeconds, await pass(true));
    fullSeconds = Math.min(fullSeconds, await pass(false));
  }
  const amplification = moved / rankBytes;
  console.log(
    `connectors  ${scheme} lazy TP=4 rank 1: moved ${(moved / 1e6).toFixed(1)} MB for a rank of ${(rankBytes / 1e6).toFixed(1)} MB ` +
      `(model ${(modelBytes / 1e6).toFixed(1)} MB): amplification ${amplification.toFixed(3)} [target <= 1.10: ${amplification <= 1.1 ? 'met' : 'MISSED'}]`,
  );
  const r = result(
    'connectors',
    `${scheme} lazy TP=4 rank (import+load)`,
    'import --lazy + load',
    'full import + load',
    rankBytes,
    lazySeconds,
    fullSeconds,
    `fresh daemon per pass, best of ${repeats}; moved ${(moved / 1e6).toFixed(1)} MB of a ${(modelBytes / 1e6).toFixed(1)} MB model for a ${(rankBytes / 1e6).toFixed(1)} MB rank, amplification ${amplification.toFixed(3)} (target <= 1.1: ${amplification <= 1.1 ? 'met' : 'MISSED'})`,
  );
  return [{ ...r, target: '>= 1.00 and amplification <= 1.10', met: r.ratio >= 1 && amplification <= 1.1 }];
}

/** Runs the connectors suite. */
export async function connectorsSuite(repeats: number): Promise<BenchResult[]> {
  const data = payload(OBJECT_BYTES);
  const dest = Buffer.allocUnsafeSlow(OBJECT_BYTES).fill(0); // touched now, not during the first read
  const out: BenchResult[] = [];
  const t0 = performance.now();
  const work = mkdtempSync(join(tmpdir(), 'tensorcast-bench-connectors-'));
  const modelDir = join(work, 'model');
  await writeSyntheticModel(modelDir, DEMO_MODEL);
  const source = await freshDaemon(work, 'source', [modelDir]);
  try {
    await source.client.importModel(modelDir, { key: 'bench:lazy' });
    const lazy: LazyHook = async (scheme, url) => {
      await source.client.push('bench:lazy', url);
      return lazyRank(Math.min(repeats, 2), work, scheme, url);
    };
    out.push(...(await redisPart(repeats, data, dest, lazy)));
    out.push(...(await s3Part(repeats, data, dest, lazy)));
  } finally {
    await source.done();
    rmSync(work, { recursive: true, force: true });
  }
  console.log(`connectors  done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return out;
}
