// Starts a cluster for end-to-end tests: several daemons as separate processes, each with its own data
// directory and ports, all on one catalog URL and one cluster token (a shared token file), with a tiny
// Llama model under the first daemon's import root.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { connect, type LoadedTensor, type TensorcastClient } from '../../src/client/tensorcast-client.js';
import type { RefTensors } from '../helpers/reference-tp.js';
import { TINY_LLAMA, writeSyntheticModel, type SyntheticModelOptions } from '../../src/format/synthetic-model.js';
import { tempDir } from '../helpers/tmp.js';
import { startDaemon, type TestDaemon } from './daemon.js';

/** One daemon of a test cluster, with an SDK client connected to it. */
export interface ClusterMember {
  readonly daemon: TestDaemon;
  readonly client: TensorcastClient;
}

/** Options of {@link startCluster}. */
export interface ClusterOptions {
  /** How many daemons (default 3). */
  readonly daemons?: number;
  /** Extra `serve` flags per daemon (by index), e.g. a small --export-budget on the first. */
  readonly extraArgs?: (index: number) => readonly string[];
  /** Environment per daemon (by index), e.g. fault injection. */
  readonly env?: (index: number) => NodeJS.ProcessEnv;
  /** The model to write (default TINY_LLAMA). */
  readonly model?: SyntheticModelOptions;
}

/** A started cluster. */
export interface TestCluster {
  readonly members: readonly ClusterMember[];
  /** The model directory (under every daemon's import root). */
  readonly model: string;
  readonly tokenFile: string;
}

/** Writes a cluster token file (0600) in a temporary folder. */
export function writeTokenFile(t: TestContext): string {
  const file = join(tempDir(t), 'cluster-token');
  writeFileSync(file, `${randomBytes(24).toString('hex')}\n`, { mode: 0o600 });
  return file;
}

/**
 * Starts `daemons` daemons on `catalogUrl` with one cluster token; all stopped (SIGKILL) after the test.
 *
 * @example const { members: [a, b, c] } = await startCluster(t, await redisCatalogUrl(t));
 */
export async function startCluster(t: TestContext, catalogUrl: string, opts: ClusterOptions = {}): Promise<TestCluster> {
  const dir = tempDir(t);
  const model = join(dir, 'm');
  await writeSyntheticModel(model, opts.model ?? TINY_LLAMA);
  const tokenFile = writeTokenFile(t);
  const members: ClusterMember[] = [];
  for (let i = 0; i < (opts.daemons ?? 3); i++) {
    members.push(await startMember(t, catalogUrl, tokenFile, [...(opts.extraArgs?.(i) ?? []), '--import-root', dir], opts.env?.(i)));
  }
  return { members, model, tokenFile };
}

/** Starts one more daemon on the cluster's catalog with the given token file. */
export async function startMember(
  t: TestContext,
  catalogUrl: string,
  tokenFile: string,
  extraArgs: readonly string[] = [],
  env?: NodeJS.ProcessEnv,
  dataDir?: string,
): Promise<ClusterMember> {
  const daemon = await startDaemon(t, {
    extraArgs: ['--catalog', catalogUrl, '--token-file', tokenFile, '--daemon-ttl', '10s', ...extraArgs],
    ...(env === undefined ? {} : { env }),
    ...(dataDir === undefined ? {} : { dataDir }),
  });
  const client = await connect({ url: daemon.controlUrl, token: daemon.token });
  t.after(() => client.close());
  return { daemon, client };
}

/** The tensors of an SDK load as reference tensors (to compare with test/helpers/reference-tp.ts). */
export function asRef(tensors: readonly LoadedTensor[]): RefTensors {
  return new Map(tensors.map((x) => [x.name, { dtype: x.dtype, shape: x.shape, data: x.data }]));
}

/** Polls `check` every 100 ms until it holds (or fails the test after `ms`). */
export async function until(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check().catch(() => false))) {
    if (Date.now() > end) assert.fail(`${what}: not reached in ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The value of one Prometheus sample of a daemon's /metrics (0 when absent). */
export async function metric(m: ClusterMember, sample: string): Promise<number> {
  const text = await (await fetch(`${m.daemon.controlUrl}/metrics`, { headers: { authorization: `Bearer ${m.daemon.token}` } })).text();
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? 0 : Number(line.slice(sample.length + 1));
}

/** A data directory (mode 0700) whose daemon id is fixed, so source selection order is known. */
export function dataDirWithId(t: TestContext, id: string): string {
  const dir = join(tempDir(t), id);
  mkdirSync(dir, { mode: 0o700 });
  writeFileSync(join(dir, 'daemon-id'), `${id}\n`, { mode: 0o600 });
  return dir;
}
