// Measured loads of the daemon suite: a first load (each in a fresh daemon state, checked to be no replica
// hit) and a load again (best of N once warm), each with its wall time and the CPU both processes spent.

import type { LoadResult, Transport } from '../src/client/tensorcast-client.js';
import { CpuTally, withCpu } from './cpu.js';
import type { BenchDaemon } from './daemon-host.js';

/** A TP rank to load. */
export interface Rank {
  readonly size: number;
  readonly rank: number;
}

/** What several runs of one load gave. */
export interface Measured {
  /** The fastest run: its result and wall time of the whole load() (plan + transfer). */
  readonly best: LoadResult;
  readonly seconds: number;
  readonly cpu: CpuTally;
  /** Sources seen across the measured runs (replica_hit, materialized, streamed, client_materialized). */
  readonly sources: ReadonlySet<string>;
  /** Why a run was not what it was meant to be (a first load that hit a replica), if one was not. */
  readonly problems: readonly string[];
}

/** A small tensor of every Llama-shaped model: the warm-up load of a fresh daemon reads only it. */
const WARMUP_TENSOR = 'model.layers.0.self_attn.k_proj.weight';

/** How a load is made. */
export interface LoadSpec {
  readonly key: string;
  readonly tp: Rank;
  readonly transport: Transport;
  readonly connections?: number;
  readonly into: Uint8Array;
}

function load(host: BenchDaemon, s: LoadSpec): Promise<LoadResult> {
  return host.client.load(s.key, {
    tp: s.tp,
    transport: s.transport,
    into: s.into,
    ...(s.connections === undefined ? {} : { connections: s.connections }),
  });
}

/** Records one run into the running best. */
class Runs {
  best: LoadResult | undefined;
  seconds = Number.POSITIVE_INFINITY;
  readonly cpu = new CpuTally();
  readonly sources = new Set<string>();
  readonly problems: string[] = [];

  add(run: { value: LoadResult; seconds: number; daemonCpuSeconds: number | undefined; clientCpuSeconds: number }): void {
    this.cpu.add(run, run.value.stats.bytesDelivered);
    this.sources.add(run.value.stats.source);
    if (run.seconds < this.seconds) {
      this.best = run.value;
      this.seconds = run.seconds;
    }
  }

  done(): Measured {
    return { best: this.best!, seconds: this.seconds, cpu: this.cpu, sources: this.sources, problems: this.problems };
  }
}

/**
 * The load as a first load, `states` times, each time in a fresh daemon state: the daemon is restarted (no
 * replicas, no memory of earlier reads; the stored artifact and the page cache stay), its code warmed by a
 * load of one small tensor (another view) over the same transport, then the load is measured. A run that
 * found a replica of the view held before it, or reports a replica hit, is listed in `problems`.
 */
export async function firstLoads(host: BenchDaemon, s: LoadSpec, states: number): Promise<Measured> {
  const runs = new Runs();
  for (let i = 0; i < states; i++) {
    await host.restart();
    await host.client.load(s.key, { tensors: [WARMUP_TENSOR], transport: s.transport, into: s.into });
    const plan = await host.client.plan(s.key, { tp: s.tp });
    const held = await host.replicaTiers(plan.artifactId, plan.viewId);
    if (held.length > 0) runs.problems.push(`the fresh daemon held a ${held.join('+')} replica of the view`);
    const run = await withCpu(host.pid, () => load(host, s));
    if (run.value.stats.source === 'replica_hit') runs.problems.push('a first load reported replica_hit');
    runs.add(run);
  }
  return runs.done();
}

/**
 * The load again: warm-up loads until it reports `warmSource` (at most 3; any source when undefined),
 * then `repeats` measured runs.
 */
export async function loadsAgain(host: BenchDaemon, s: LoadSpec, repeats: number, warmSource?: string): Promise<Measured> {
  const runs = new Runs();
  for (let i = 0; i < (warmSource === undefined ? 1 : 3); i++) {
    if ((await load(host, s)).stats.source === warmSource) break;
  }
  for (let i = 0; i < repeats; i++) runs.add(await withCpu(host.pid, () => load(host, s)));
  if (warmSource !== undefined && (runs.sources.size !== 1 || !runs.sources.has(warmSource)))
    runs.problems.push(`expected ${warmSource}, saw ${[...runs.sources].join(', ')}`);
  return runs.done();
}

/** One measured load, nothing before it (the `files` transport's first load of a view in this process). */
export async function loadOnce(host: BenchDaemon, s: LoadSpec): Promise<Measured> {
  const runs = new Runs();
  runs.add(await withCpu(host.pid, () => load(host, s)));
  return runs.done();
}
