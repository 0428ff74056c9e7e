// Faults of the feature store with real processes: a producer process killed (SIGKILL) in the middle of
// putting a large sample (4 x 64 MiB) leaves nothing of it visible (latest() is the previous generation,
// byte-identical), and its bytes are reclaimed: after the transaction TTL without a restart, and at once by a
// restart of a daemon with --object-spill (no pending file left under <dataDir>/objects).
// (A daemon killed with committed samples is test/e2e/features-processes.test.ts.)

import assert from 'node:assert/strict';
import { type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type TensorcastClient } from '../../src/client/tensorcast-client.js';
import type { TensorInput } from '../../src/features/sample-ref.js';
import { startDaemon, type TestDaemon } from '../harness/daemon.js';
import { until } from '../harness/cluster.js';
import { assertSame } from '../contract/feature-store-contract.js';
import { moduleUrl, spawnNode } from '../helpers/run-node.js';
import { tempDir } from '../helpers/tmp.js';

const MIB = 1 << 20;
const STORE = 'faults';
const mod = (p: string): string => moduleUrl(p, import.meta.url);

/**
 * The producer: generation 0 is a small sample; then it puts generation 1, 2, ... of four 64 MiB tensors
 * in a loop until killed. Every tensor's bytes are `tensorBytes(generation, index, size)`.
 */
const PRODUCER = `
  import { connect } from ${mod('../../src/client/tensorcast-client.js')};
  const [url, token] = process.argv.slice(1);
  const fill = (g, k, size) => { const b = Buffer.alloc(size); for (let i = 0; i + 8 <= size; i += 4096) b.writeUInt32LE(g * 1000 + k, i), b.writeUInt32LE(i, i + 4); return b; };
  const client = await connect({ url, token });
  const store = client.features(${JSON.stringify(STORE)});
  const ref = await store.put('big', { a: { data: fill(0, 0, ${MIB}), dtype: 'U8', shape: [${MIB}] } });
  process.stdout.write(JSON.stringify(ref) + '\\n');
  const bufs = [0, 1, 2, 3].map((k) => fill(1, k, ${64 * MIB}));
  for (let g = 1; ; g++) {
    for (const [k, b] of bufs.entries()) for (let i = 0; i + 8 <= b.length; i += 4096) b.writeUInt32LE(g * 1000 + k, i);
    const tensors = Object.fromEntries(bufs.map((b, k) => ['t' + k, { data: b, dtype: 'U8', shape: [b.length] }]));
    process.stdout.write('putting ' + g + '\\n');
    await store.put('big', tensors);
    process.stdout.write('put ' + g + '\\n');
  }`;

/** The bytes the producer writes for tensor `k` of generation `g` (a word pair per 4 KiB: tag, offset). */
function tensorBytes(g: number, k: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i + 8 <= size; i += 4096) {
    b.writeUInt32LE(g * 1000 + k, i);
    b.writeUInt32LE(i, i + 4);
  }
  return b;
}

function tensorsOf(g: number): Record<string, TensorInput> {
  if (g === 0) return { a: { data: tensorBytes(0, 0, MIB), dtype: 'U8', shape: [MIB] } };
  return Object.fromEntries([0, 1, 2, 3].map((k) => [`t${k}`, { data: tensorBytes(g, k, 64 * MIB), dtype: 'U8', shape: [64 * MIB] }]));
}

/**
 * Starts the producer and kills it once a put of a large generation is under way on the daemon with at least
 * one of its 64 MiB tensors written to a spill file (so the transaction holds landed objects). The producer is
 * frozen (SIGSTOP) while that is checked, and the socket given time to drain: a check on a running producer
 * raced its commit (the last tensors landed and the put committed between the check and the kill).
 */
async function killMidPut(t: TestContext, d: TestDaemon, client: TensorcastClient): Promise<void> {
  const child: ChildProcess = spawnNode(PRODUCER, [d.controlUrl, d.token]);
  t.after(() => void child.kill('SIGKILL'));
  let out = '';
  let err = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const objects = client.objects();
  try {
    await until('a put of a large generation pending on the daemon with a tensor landed', async () => {
      if (!out.includes('putting')) return false;
      child.kill('SIGSTOP');
      await sleep(200);
      if (landedFiles(d.dataDir) > 0 && (await objects.namespaceInfo(STORE)).pendingPuts > 0) return true;
      child.kill('SIGCONT');
      await sleep(20);
      return false;
    });
  } catch (error) {
    throw new Error(`${(error as Error).message}; producer output: ${out}${err}; files ${spillFiles(d.dataDir).join(' ')}`, {
      cause: error,
    });
  }
  child.kill('SIGKILL');
  await exited;
  t.diagnostic(`producer killed after: ${out.trim().split('\n').slice(1).join(', ')}`);
}

/** The store holds exactly its latest generation, byte-identical; resident bytes are its objects' only. */
async function assertOnlyCommitted(client: TensorcastClient): Promise<void> {
  const store = client.features(STORE);
  const objects = client.objects();
  const latest = await store.latest('big');
  assert.ok(latest !== undefined, 'the previous generation is still there');
  assertSame(await store.get(latest), tensorsOf(latest.generation));
  const listed = await objects.list(`${STORE}/`);
  const want = [`${STORE}/big/manifest`, ...latest.specs.map((s) => `${STORE}/big/g${latest.generation}/${s.name}`)].sort();
  assert.deepEqual(
    listed.map((o) => o.key),
    want,
  );
  const info = await objects.namespaceInfo(STORE);
  assert.deepEqual(
    { residentBytes: info.residentBytes, pendingPuts: info.pendingPuts, pendingBytes: info.pendingBytes, openTxns: info.openTxns },
    { residentBytes: listed.reduce((n, o) => n + o.size, 0), pendingPuts: 0, pendingBytes: 0, openTxns: 0 },
  );
}

/** Spill files with at least 64 MiB written (sparse until written). */
function landedFiles(dataDir: string): number {
  const dir = join(dataDir, 'objects');
  return spillFiles(dataDir).filter((n) => {
    try {
      return statSync(join(dir, n)).blocks * 512 >= 64 * MIB;
    } catch {
      return false; // freed meanwhile
    }
  }).length;
}

/** Files under <dataDir>/objects other than the journal. */
function spillFiles(dataDir: string): string[] {
  const dir = join(dataDir, 'objects');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((n) => n !== 'journal' && !n.startsWith('journal'));
}

// Everything but empty objects goes to disk (no object memory): the large puts leave pending files.
const SPILL = ['--object-spill', '--object-memory', '0'];

test('features faults: a producer killed mid-put of 4 x 64 MiB leaves nothing visible; its bytes are freed after the transaction TTL', async (t) => {
  const d = await startDaemon(t, { extraArgs: [...SPILL, '--object-txn-ttl', '2s'] });
  const client = await connect({ url: d.controlUrl, token: d.token });
  t.after(() => client.close());
  await killMidPut(t, d, client);
  const objects = client.objects();
  await until('the abandoned transaction aborted and its bytes freed', async () => {
    const info = await objects.namespaceInfo(STORE);
    return info.pendingPuts === 0 && info.pendingBytes === 0 && info.openTxns === 0;
  });
  await assertOnlyCommitted(client);
  const latest = (await client.features(STORE).latest('big'))!;
  // Only the committed objects' files are left (one per object: manifest and tensors).
  assert.equal(spillFiles(d.dataDir).length, latest.specs.length + 1, spillFiles(d.dataDir).join(', '));
});

test('features faults: a producer killed mid-put of 4 x 64 MiB, then the daemon (spill on) killed and restarted: nothing of the put visible, its space reclaimed', async (t) => {
  const dataDir = tempDir(t);
  const first = await startDaemon(t, { dataDir, extraArgs: SPILL });
  const c1 = await connect({ url: first.controlUrl, token: first.token });
  await killMidPut(t, first, c1);
  // The transaction's landed objects are still pending (60 s TTL) when the daemon dies.
  const before = await c1.objects().namespaceInfo(STORE);
  t.diagnostic(
    `before the daemon kill: ${before.openTxns} open txns, ${before.pendingBytes} pending bytes, files ${spillFiles(dataDir).join(' ')}`,
  );
  await c1.close();
  await first.stop('SIGKILL');
  const second = await startDaemon(t, { dataDir, extraArgs: SPILL });
  const c2 = await connect({ url: second.controlUrl, token: second.token });
  t.after(() => c2.close());
  await assertOnlyCommitted(c2);
  const latest = (await c2.features(STORE).latest('big'))!;
  assert.equal(spillFiles(dataDir).length, latest.specs.length + 1, spillFiles(dataDir).join(', '));
});
