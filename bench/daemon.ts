// daemon suite: a daemon (child process) serving a ~300 MB model to a client on the same host, over TCP
// and shared memory, first load (materialized) and again (replica hit), against a plain page-cache read of
// the same bytes; and the loopback data plane against iperf3 with the same number of streams.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, readSync, closeSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { connect } from '../src/client/tensorcast-client.js';
import { spawnPrivateDaemon } from '../src/cli/spawn-daemon.js';
import { DEMO_MODEL } from '../src/cli/commands/demo.js';
import { writeSyntheticModel } from '../src/format/synthetic-model.js';
import { bestOf, type BenchResult } from './measure.js';

/** Plain read of `dest.length` bytes from the start of `files`, one reader, 8 MiB reads. */
function plainRead(files: readonly string[], dest: Buffer): void {
  let done = 0;
  for (const f of files) {
    const fd = openSync(f, 'r');
    try {
      for (;;) {
        if (done >= dest.length) return;
        const n = readSync(fd, dest, done, Math.min(8 << 20, dest.length - done), null);
        if (n === 0) break;
        done += n;
      }
    } finally {
      closeSync(fd);
    }
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** iperf3 throughput over loopback with `streams` parallel streams, in GB/s; undefined without iperf3. */
async function iperf(streams: number): Promise<number | undefined> {
  if (spawnSync('iperf3', ['--version']).status !== 0) return undefined;
  const port = await freePort();
  const server = spawn('iperf3', ['-s', '-1', '-p', String(port), '-B', '127.0.0.1'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 300));
  const c = spawnSync('iperf3', ['-c', '127.0.0.1', '-p', String(port), '-P', String(streams), '-t', '3', '-J'], { encoding: 'utf8' });
  server.kill();
  try {
    const j = JSON.parse(c.stdout) as { end: { sum_received: { bits_per_second: number } } };
    return j.end.sum_received.bits_per_second / 8 / 1e9;
  } catch {
    return undefined;
  }
}

/** Runs the daemon suite. */
export async function daemonSuite(repeats: number): Promise<BenchResult[]> {
  const work = mkdtempSync(join(tmpdir(), 'tensorcast-bench-daemon-'));
  const out: BenchResult[] = [];
  try {
    const modelDir = join(work, 'model');
    await writeSyntheticModel(modelDir, DEMO_MODEL);
    const dataDir = join(work, 'data');
    const d = await spawnPrivateDaemon(dataDir, { importRoots: [modelDir], memoryBudget: '8GiB' });
    try {
      const client = await connect({ url: d.controlUrl, tokenFile: join(dataDir, 'token') });
      await client.importModel(modelDir, { key: 'bench' });
      spawnSync('sync');
      const files = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'].map((f) => join(modelDir, f));
      const dest = Buffer.allocUnsafeSlow(320 << 20).fill(0); // touched now, not during the first load
      const plain = Buffer.allocUnsafeSlow(320 << 20).fill(0);
      for (const [size, rank] of [
        [1, 0],
        [4, 1],
      ] as const) {
        for (const transport of ['tcp', 'shm', 'files'] as const) {
          const first = await client.load('bench', { tp: { size, rank }, transport, into: dest });
          const bytes = first.stats.bytesDelivered;
          const base = await bestOf(repeats, () => plainRead(files, plain.subarray(0, bytes)));
          const name = `TP=${size} rank ${rank} (${(bytes / 2 ** 20).toFixed(0)} MiB)`;
          out.push({
            suite: 'daemon',
            case: `${name}, first load`,
            ours: `${transport}, ${first.stats.source}`,
            baseline: 'page-cache read',
            oursRate: first.stats.gbps,
            baselineRate: bytes / base / 1e9,
            ratio: first.stats.gbps / (bytes / base / 1e9),
            unit: 'GB/s',
          });
          let best = 0;
          for (let i = 0; i < repeats; i++)
            best = Math.max(best, (await client.load('bench', { tp: { size, rank }, transport, into: dest })).stats.gbps);
          out.push({
            suite: 'daemon',
            case: `${name}, again`,
            ours: transport === 'files' ? 'files, client_materialized' : `${transport}, replica_hit`,
            baseline: 'page-cache read',
            oursRate: best,
            baselineRate: bytes / base / 1e9,
            ratio: best / (bytes / base / 1e9),
            unit: 'GB/s',
          });
        }
      }
      for (const streams of [1, 4]) {
        const ip = await iperf(streams);
        if (ip === undefined) {
          console.log('daemon: iperf3 not installed (apt-get install iperf3): the loopback comparison is skipped');
          break;
        }
        let best = 0;
        for (let i = 0; i < repeats; i++) {
          const t0 = performance.now();
          const r = await client.load('bench', { transport: 'tcp', into: dest, connections: streams });
          best = Math.max(best, r.stats.bytesDelivered / ((performance.now() - t0) / 1000) / 1e9);
        }
        out.push({
          suite: 'daemon',
          case: `loopback, ${streams} stream(s), 300 MiB resident`,
          ours: 'data plane',
          baseline: `iperf3 -P ${streams}`,
          oursRate: best,
          baselineRate: ip,
          ratio: best / ip,
          unit: 'GB/s',
        });
      }
      await client.close();
    } finally {
      await d.stop();
    }
    return out;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
