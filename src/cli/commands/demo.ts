// `tensorcast demo [--model DIR]`: the README's main job. Starts a daemon (a child process) in a temporary
// data directory (or uses --daemon), imports --model or a generated Llama-shaped bf16 model, loads every rank for TP 1, 2
// and 4 over TCP and shared memory, verifies every byte against slicing the files locally, and prints a
// table. Exit 0 only when everything verified.

import type { Command } from 'commander';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { connect, type TensorcastClient } from '../../client/tensorcast-client.js';
import { openLocalArtifact, type LocalArtifact } from '../../bytes/local-artifact.js';
import { Materializer } from '../../bytes/materialize.js';
import { tcError } from '../../core/errors.js';
import { formatBytes } from '../../core/strings.js';
import { spawnPrivateDaemon, type SpawnedDaemon } from '../spawn-daemon.js';
import { writeSyntheticModel, type SyntheticModelOptions } from '../../format/synthetic-model.js';
import { compileProgram } from '../../layout/program.js';
import { normalizeView } from '../../layout/view.js';
import { clientFrom, withClientFlags, type ClientFlags } from '../client-flags.js';
import { formatTable } from './inspect.js';
import { EXIT_FAILURE } from '../exit-codes.js';

/** The generated model: ~310 MB of bf16, every tensor kind of the Llama family. */
export const DEMO_MODEL: SyntheticModelOptions = {
  hiddenSize: 2048,
  intermediateSize: 5632,
  numLayers: 2,
  numHeads: 16,
  numKvHeads: 4,
  vocabSize: 16384,
  shards: 2,
};

interface DemoFlags extends ClientFlags {
  readonly model?: string;
  readonly tp?: string;
  readonly keep?: boolean;
}

interface Row {
  tp: number;
  rank: number;
  transport: string;
  route: string;
  source: string;
  bytes: number;
  ms: number;
  gbps: number;
  ratio: number;
  verified: boolean;
}

/** Registers `demo`. */
export function registerDemo(program: Command): void {
  withClientFlags(
    program
      .command('demo')
      .description(
        'start a daemon, import a model, load every TP rank (1, 2, 4) over TCP, shared memory and in-place files, verify every byte',
      )
      .option('--model <dir>', 'a model directory (default: generate a Llama-shaped bf16 model of ~310 MB)')
      .option('--tp <sizes>', 'comma-separated TP sizes', '1,2,4')
      .option('--keep', 'keep the temporary directory'),
  ).action(async (flags: DemoFlags) => {
    const tpSizes = (flags.tp ?? '1,2,4').split(',').map((s) => Number(s.trim()));
    if (tpSizes.some((n) => !Number.isInteger(n) || n < 1))
      throw tcError('TC_ERR_INVALID_ARGUMENT', `--tp: expected sizes like 1,2,4, got '${flags.tp}'`);
    const work = await mkdtemp(join(tmpdir(), 'tensorcast-demo-'));
    let daemon: SpawnedDaemon | undefined;
    let client: TensorcastClient | undefined;
    let local: LocalArtifact | undefined;
    try {
      let modelDir = flags.model;
      if (modelDir === undefined) {
        modelDir = join(work, 'model');
        process.stderr.write(`demo: generating a Llama-shaped bf16 model in ${modelDir} ...\n`);
        const bytes = await writeSyntheticModel(modelDir, DEMO_MODEL);
        process.stderr.write(`demo: ${formatBytes(bytes)} of weights in ${DEMO_MODEL.shards} shards\n`);
      }
      if (flags.daemon === undefined) {
        const dataDir = join(work, 'data');
        // A daemon of its own, as a separate process (its own event loop and core, as in production).
        daemon = await spawnPrivateDaemon(dataDir, { importRoots: [modelDir], memoryBudget: '4GiB' });
        process.stderr.write(`demo: daemon ${daemon.daemonId} at ${daemon.controlUrl} (data ${daemon.dataAddress}), data dir ${dataDir}\n`);
        client = await connect({ url: daemon.controlUrl, tokenFile: join(dataDir, 'token') });
      } else {
        client = await clientFrom(flags);
      }
      const imported = await client.importModel(modelDir, { key: 'demo:model:v1' });
      process.stderr.write(
        `demo: imported ${imported.artifactId} (${imported.tensorCount} tensors, ${formatBytes(imported.totalBytes)}, via ${imported.via})\n`,
      );
      local = await openLocalArtifact(modelDir);
      const rows = await runLoads(client, local, tpSizes);
      printTable(rows);
      const bad = rows.filter((r) => !r.verified).length;
      if (bad > 0) {
        process.stderr.write(`demo: ${bad} of ${rows.length} loads did NOT verify\n`);
        process.exitCode = EXIT_FAILURE;
      } else {
        process.stdout.write(`demo: all ${rows.length} loads verified byte for byte against slicing the files locally\n`);
      }
    } finally {
      await local?.close();
      await client?.close();
      await daemon?.stop();
      if (flags.keep === true) process.stderr.write(`demo: kept ${work}\n`);
      else await rm(work, { recursive: true, force: true });
    }
  });
}

async function runLoads(client: TensorcastClient, local: LocalArtifact, tpSizes: readonly number[]): Promise<Row[]> {
  const total = local.index.totalBytes;
  // One destination and one reference buffer, touched once, reused by every load.
  const dest = Buffer.allocUnsafeSlow(total).fill(0); // touched now: a fresh page costs a fault on first use
  const expected = Buffer.allocUnsafeSlow(total).fill(0);
  const plain = Buffer.allocUnsafeSlow(total).fill(0);
  const materializer = new Materializer();
  const rows: Row[] = [];
  for (const tp of tpSizes) {
    for (let rank = 0; rank < tp; rank++) {
      // The reference: the same view, materialized from the model's own files on this host.
      const plan = await client.plan('demo:model:v1', { tp: { size: tp, rank } });
      const program = compileProgram(normalizeView(local.index, plan.view));
      const want = expected.subarray(0, program.totalBytes);
      await materializer.run(program, local.source, want);
      for (const transport of ['tcp', 'shm', 'files'] as const) {
        const r = await client.load('demo:model:v1', { tp: { size: tp, rank }, transport, into: dest });
        const verified =
          program.totalBytes === r.buffer.length &&
          Buffer.compare(Buffer.from(r.buffer.buffer, r.buffer.byteOffset, r.buffer.length), want) === 0;
        const baselineMs = await plainReadMs(local, plain.subarray(0, program.totalBytes));
        rows.push({
          tp,
          rank,
          transport,
          route: r.stats.route,
          source: r.stats.source,
          bytes: r.stats.bytesDelivered,
          ms: r.stats.timesMs.transfer,
          gbps: r.stats.gbps,
          ratio: baselineMs / r.stats.timesMs.transfer,
          verified,
        });
      }
    }
  }
  return rows;
}

/** Time of a plain sequential read of as many bytes from the model's files (page cache), in ms. */
async function plainReadMs(local: LocalArtifact, into: Buffer): Promise<number> {
  const t0 = performance.now();
  let done = 0;
  for (const shard of local.index.shards) {
    if (done >= into.length) break;
    const fh = await open(join(local.model.root, shard.file), 'r');
    try {
      while (done < into.length) {
        const { bytesRead } = await fh.read(into, done, Math.min(8 << 20, into.length - done), null);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
    } finally {
      await fh.close();
    }
  }
  return performance.now() - t0;
}

function printTable(rows: readonly Row[]): void {
  const lines = [['TP', 'RANK', 'TRANSPORT', 'ROUTE', 'SOURCE', 'BYTES', 'TIME', 'GB/S', 'VS PLAIN READ (HIGHER IS BETTER)', 'VERIFIED']];
  for (const r of rows) {
    lines.push([
      String(r.tp),
      String(r.rank),
      r.transport,
      r.route,
      r.source,
      formatBytes(r.bytes),
      `${r.ms.toFixed(1)} ms`,
      r.gbps.toFixed(2),
      `${r.ratio.toFixed(2)}x`,
      r.verified ? 'yes' : 'NO',
    ]);
  }
  process.stdout.write(formatTable(lines));
  process.stdout.write(
    'VS PLAIN READ: the time of a plain sequential read of as many bytes from the model files, divided by the time of\n' +
      'the load; above 1.00x the load was faster than reading the files, below it slower.\n',
  );
}
