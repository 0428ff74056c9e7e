// daemon suite (issue 10): a daemon (child process) serving a bf16 model to a client on the same host, at
// two sizes (~300 MB and ~1.2 GB) so that cost growth shows. Per path: GB/s, a baseline measured in the same
// run, the ratio, the issue's target, and CPU seconds per GB on the daemon and on the client.
//   1. a resident replica over TCP, 1 and 4 streams, against iperf3 -P 1 / -P 4 over loopback (>= 0.9x);
//   2. a first load over TCP, TP=1/2/4, against min(iperf3, the executor materializing the view here) (>= 0.8x);
//   3. a first load over shm against a page-cache read (>= 0.7x), and again, a replica hit (>= 1.0x);
//   4. the `files` transport, first and again, against a page-cache read (no target).

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { freemem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEMO_MODEL } from '../src/cli/commands/demo.js';
import { tensorByteLength } from '../src/format/safetensors-writer.js';
import { llamaTensorShapes, writeSyntheticModel, type SyntheticModelOptions } from '../src/format/synthetic-model.js';
import { CPU_METHOD } from './cpu.js';
import { daemonFiles, LoopbackLink, materializeSeconds, pageCacheReadSeconds, type DaemonFiles } from './daemon-baselines.js';
import { BenchDaemon } from './daemon-host.js';
import { firstLoads, loadOnce, loadsAgain, type Measured, type Rank } from './daemon-runs.js';
import type { BenchResult } from './measure.js';
import type { IperfRates } from './net/iperf.js';

/** The two sizes: the demo model, and the same shapes with six times the layers (bf16 both). */
const MODELS: readonly { readonly label: string; readonly options: SyntheticModelOptions }[] = [
  { label: '300MB', options: DEMO_MODEL },
  { label: '1.2GB', options: { ...DEMO_MODEL, numLayers: 12, shards: 4 } },
];
/** Fresh daemon states per first load (the best is reported; the CPU is summed over all). */
const FRESH_STATES = 2;
/** Data-plane connections of a first load over TCP (the SDK's default). */
const FIRST_LOAD_CONNECTIONS = 4;
const WHOLE: Rank = { size: 1, rank: 0 };
const TP_RANKS: readonly Rank[] = [WHOLE, { size: 2, rank: 0 }, { size: 4, rank: 1 }];
const SHM_RANKS: readonly Rank[] = [WHOLE, { size: 4, rank: 1 }];

const modelBytes = (o: SyntheticModelOptions): number =>
  llamaTensorShapes(o).reduce((n, [, s]) => n + tensorByteLength(o.dtype ?? 'BF16', s), 0);
const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
const rankName = (r: Rank): string => (r.size === 1 ? 'TP=1' : `TP=${r.size} r${r.rank}`);

/** What one model's part of the suite works with. */
interface Part {
  readonly label: string;
  readonly key: string;
  readonly host: BenchDaemon;
  readonly files: DaemonFiles;
  readonly link: LoopbackLink;
  /** Pre-faulted buffers as large as the largest model: loads land in `dest`, baselines in `base`. */
  readonly dest: Buffer;
  readonly base: Buffer;
  readonly repeats: number;
  readonly out: BenchResult[];
}

/** One result line from a measured load and its baseline. */
function record(
  p: Part,
  what: string,
  m: Measured,
  baseline: { name: string; rate: number; parts?: Record<string, number> },
  target?: number,
): void {
  const s = m.best.stats;
  const rate = s.bytesDelivered / m.seconds / 1e9;
  const ratio = rate / baseline.rate;
  const daemonCpu = m.cpu.daemonPerGB;
  const clientCpu = m.cpu.clientPerGB;
  const notes = [
    ...(baseline.parts === undefined
      ? []
      : [
          Object.entries(baseline.parts)
            .map(([k, v]) => `${k} ${v.toFixed(2)}`)
            .join(', '),
        ]),
    ...m.problems,
  ];
  p.out.push({
    suite: 'daemon',
    case: `${p.label} ${what} (${mib(s.bytesDelivered)})`,
    ours: `${s.transport}${s.transport === 'tcp' ? ` x${s.connections}` : ''}, ${[...m.sources].join('/')}`,
    baseline: baseline.name,
    oursRate: rate,
    baselineRate: baseline.rate,
    ratio,
    unit: 'GB/s',
    ...(notes.length === 0 ? {} : { note: notes.join('; ') }),
    ...(target === undefined ? {} : { target: `>= ${target.toFixed(2)}`, met: ratio >= target && m.problems.length === 0 }),
    bytes: s.bytesDelivered,
    seconds: m.seconds,
    streams: s.connections,
    source: [...m.sources].join('/'),
    ...(daemonCpu === undefined ? {} : { daemonCpuSecPerGB: daemonCpu }),
    ...(clientCpu === undefined ? {} : { clientCpuSecPerGB: clientCpu }),
    cpuRuns: m.cpu.runs,
    ...(baseline.parts === undefined ? {} : { baselines: baseline.parts }),
  });
}

/** iperf3 as a baseline: the rate of its best one-second interval (ours are best of N), its mean kept as a part. */
function linkBaseline(streams: number, ip: IperfRates): { name: string; rate: number; parts: Record<string, number> } {
  return {
    name: `iperf3 -P ${streams}`,
    rate: ip.bestInterval,
    parts: { [`iperf3 -P ${streams} best 1 s`]: ip.bestInterval, [`iperf3 -P ${streams} mean`]: ip.mean },
  };
}

/** GB/s of a plain page-cache read of `bytes` of the daemon's files. */
async function pageCacheRate(p: Part, bytes: number): Promise<number> {
  return bytes / (await pageCacheReadSeconds(p.files, p.base.subarray(0, bytes), p.repeats)) / 1e9;
}

/** 1. A resident replica of the whole model over TCP, 1 and 4 streams, against iperf3 with as many. */
async function residentTcp(p: Part): Promise<void> {
  for (const streams of [1, 4]) {
    const ip = await p.link.rate(streams);
    if (ip === undefined) continue;
    const m = await loadsAgain(
      p.host,
      { key: p.key, tp: WHOLE, transport: 'tcp', connections: streams, into: p.dest },
      p.repeats,
      'replica_hit',
    );
    record(p, `TP=1 resident, ${streams} stream${streams === 1 ? '' : 's'}`, m, linkBaseline(streams, ip), 0.9);
  }
}

/** 2. First loads over TCP against the lower of the link and of materializing the same view here. */
async function firstTcp(p: Part): Promise<void> {
  for (const tp of TP_RANKS) {
    const plan = await p.host.client.plan(p.key, { tp });
    const materialize = plan.totalBytes / (await materializeSeconds(p.host.client, p.files, plan, p.base, p.repeats)) / 1e9;
    const m = await firstLoads(
      p.host,
      { key: p.key, tp, transport: 'tcp', connections: FIRST_LOAD_CONNECTIONS, into: p.dest },
      FRESH_STATES,
    );
    const streams = m.best.stats.connections;
    const ip = await p.link.rate(streams);
    const link = ip === undefined ? undefined : linkBaseline(streams, ip);
    const parts: Record<string, number> = { ...link?.parts, materialize };
    const rate = Math.min(materialize, link?.rate ?? materialize);
    const name = link === undefined ? 'materialize (no iperf3)' : `min(${link.name}, materialize)`;
    record(p, `${rankName(tp)} first load`, m, { name, rate, parts }, 0.8);
  }
}

/** 3. First loads over shm, then again (replica hits), against a page-cache read of as many bytes. */
async function shm(p: Part): Promise<void> {
  const firsts: [Rank, Measured][] = [];
  for (const tp of SHM_RANKS) firsts.push([tp, await firstLoads(p.host, { key: p.key, tp, transport: 'shm', into: p.dest }, FRESH_STATES)]);
  for (const [tp, m] of firsts) {
    record(p, `${rankName(tp)} first load`, m, { name: 'page-cache read', rate: await pageCacheRate(p, m.best.stats.bytesDelivered) }, 0.7);
  }
  for (const tp of SHM_RANKS) {
    const m = await loadsAgain(p.host, { key: p.key, tp, transport: 'shm', into: p.dest }, p.repeats, 'replica_hit');
    record(p, `${rankName(tp)} again`, m, { name: 'page-cache read', rate: await pageCacheRate(p, m.best.stats.bytesDelivered) }, 1.0);
  }
}

/** 4. The `files` transport (this process materializes from the daemon's files), first and again. */
async function files(p: Part): Promise<void> {
  for (const tp of SHM_RANKS) {
    const first = await loadOnce(p.host, { key: p.key, tp, transport: 'files', into: p.dest });
    const again = await loadsAgain(p.host, { key: p.key, tp, transport: 'files', into: p.dest }, p.repeats);
    const rate = await pageCacheRate(p, first.best.stats.bytesDelivered);
    record(p, `${rankName(tp)} first load`, first, { name: 'page-cache read', rate });
    record(p, `${rankName(tp)} again`, again, { name: 'page-cache read', rate });
  }
}

/** Free bytes of the file system holding `dir`. */
const freeDisk = (dir: string): number => {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
};

/** Runs the daemon suite. */
export async function daemonSuite(repeats: number): Promise<BenchResult[]> {
  const work = mkdtempSync(join(tmpdir(), 'tensorcast-bench-daemon-'));
  let host: BenchDaemon | undefined;
  // A crash or Ctrl-C leaves neither a daemon nor 1.2 GB of model files behind.
  const cleanUp = (): void => {
    host?.kill();
    rmSync(work, { recursive: true, force: true });
  };
  const interrupted = (): void => process.exit(130);
  process.once('exit', cleanUp);
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  const out: BenchResult[] = [];
  try {
    const largest = Math.max(...MODELS.map((m) => modelBytes(m.options)));
    console.log(
      `daemon: GB/s = bytes delivered / wall time of the whole client.load() (plan + transfer) into a pre-faulted buffer; ` +
        `"again" = best of ${repeats} once warm; "first load" = best of ${FRESH_STATES} fresh daemon states ` +
        `(restarted: no replicas, no read history; its code warmed by a 2 MiB load of another tensor), each checked to be no replica hit`,
    );
    console.log(`daemon: ${CPU_METHOD}`);
    console.log(
      'daemon: baselines: iperf3 -R -P n over 127.0.0.1 (3 s once per model size; its fastest 1 s interval, as ours are best of N); materialize = the executor in this process building ' +
        "the same view from the daemon's files (page cache) into a pre-faulted buffer, best of N; page-cache read = plain 8 MiB reads of as many bytes of the daemon's files, best of N",
    );
    const dest = Buffer.allocUnsafeSlow(largest).fill(0); // touched now, not during a measured load
    const base = Buffer.allocUnsafeSlow(largest).fill(0);
    for (const model of MODELS) {
      const bytes = modelBytes(model.options);
      // The model's files and the daemon's copy of them; the replicas (memory and shm) and two buffers in RAM.
      if (freeDisk(work) < 2 * bytes + (1 << 30) || freemem() < 4 * bytes + (1 << 30)) {
        console.log(
          `daemon: ${model.label} skipped: needs ${mib(2 * bytes)} of disk and ${mib(4 * bytes)} of free memory ` +
            `(free: ${mib(freeDisk(work))} disk, ${mib(freemem())} memory)`,
        );
        continue;
      }
      const dir = join(work, model.label);
      const modelDir = join(dir, 'model');
      mkdirSync(dir);
      await writeSyntheticModel(modelDir, model.options);
      host = await BenchDaemon.start(join(dir, 'data'), modelDir);
      try {
        const key = `bench:${model.label}`;
        const imported = await host.client.importModel(modelDir, { key });
        spawnSync('sync');
        console.log(
          `daemon: ${model.label} model: ${mib(imported.totalBytes)} bf16, ${imported.tensorCount} tensors, ${model.options.shards} shards`,
        );
        const link = new LoopbackLink();
        if (link.unavailable !== undefined) console.log(`daemon: ${link.unavailable}: the iperf3 baselines are skipped`);
        const p: Part = {
          label: model.label,
          key,
          host,
          files: await daemonFiles(host.client, imported.artifactId),
          link,
          dest,
          base,
          repeats,
          out,
        };
        await residentTcp(p);
        await firstTcp(p);
        await shm(p);
        await files(p);
      } finally {
        await host.close();
        host = undefined;
        rmSync(dir, { recursive: true, force: true });
      }
    }
    return out;
  } finally {
    process.off('exit', cleanUp);
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    cleanUp();
  }
}
