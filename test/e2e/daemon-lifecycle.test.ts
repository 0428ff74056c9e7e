// Daemon lifecycle with real processes: one daemon per data directory (a second exits 2 and touches
// nothing), a busy port fails the start cleanly, a loose data directory is tightened, and replica rows of a
// killed daemon's memory and shm replicas are gone after a restart.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { startDaemon, startDaemonWithModel } from '../harness/daemon.js';
import { TINY_LLAMA, writeSyntheticModel } from '../../src/format/synthetic-model.js';
import { connect } from '../../src/client/tensorcast-client.js';
import { resolveConfig } from '../../src/daemon/config.js';

interface LsJson {
  artifacts: { artifactId: string; replicas: { tier: string; viewId: string | null }[] }[];
}

/** Runs `tensorcast serve` expecting it to fail; resolves with exit code, stderr and how long it took. */
async function serveFails(args: readonly string[], timeoutMs = 20_000): Promise<{ code: number | null; stderr: string; ms: number }> {
  const t0 = Date.now();
  const run = runCli(['serve', '--log-level', 'warn', ...args], { TENSORCAST_TOKEN: '' });
  const timer = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error(`serve ${args.join(' ')} still running after ${timeoutMs} ms`)), timeoutMs).unref(),
  );
  const r = await Promise.race([run, timer]);
  return { ...r, ms: Date.now() - t0 };
}

/** A port held by another process's listener (here: this test process). */
async function busyPort(t: { after(fn: () => void): void }): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  return (server.address() as AddressInfo).port;
}

test('a second daemon on the same data directory exits 2 with TC_ERR_DATA_DIR_LOCKED and touches nothing', async (t) => {
  const { model, daemon: d, client } = await startDaemonWithModel(t);
  await client.importModel(model, { key: 'm' });
  const first = await client.load('m', { tp: { size: 2, rank: 0 }, transport: 'shm' });
  const shmDir = resolveConfig([{ dataDir: d.dataDir }]).shmDir;
  const shmFiles = readdirSync(shmDir);
  assert.ok(shmFiles.length > 0, 'the first daemon holds shm files');
  const staging = join(d.dataDir, 'artifacts', '.staging-in-use');
  mkdirSync(staging);
  // Same ports as the first daemon, then free ports.
  const [, controlPort] = /:(\d+)$/.exec(d.controlUrl)!;
  for (const ports of [
    ['--listen', `127.0.0.1:${controlPort}`, '--data-listen', d.dataAddress],
    ['--listen', '127.0.0.1:0', '--data-listen', '127.0.0.1:0'],
  ]) {
    const r = await serveFails(['--data-dir', d.dataDir, ...ports]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /TC_ERR_DATA_DIR_LOCKED.*in use by another tensorcast daemon \(pid \d+/);
    assert.deepEqual(readdirSync(shmDir), shmFiles, 'the shm files of the first daemon are untouched');
    assert.ok(existsSync(staging), 'the staging of the first daemon is untouched');
  }
  // The first daemon still serves, shm included.
  const again = await client.load('m', { tp: { size: 2, rank: 0 }, transport: 'shm' });
  assert.deepEqual(
    again.tensors.map((x) => x.name),
    first.tensors.map((x) => x.name),
  );
  assert.deepEqual(Buffer.from(again.buffer), Buffer.from(first.buffer));
});

test('a lock left by a dead process is taken over; stop releases the lock', async (t) => {
  const dataDir = tempDir(t);
  const dead = spawn(process.execPath, ['-e', '0']);
  const pid = dead.pid!;
  await new Promise((r) => dead.once('exit', r));
  writeFileSync(join(dataDir, 'daemon.lock'), `${pid} 1\n`);
  const d = await startDaemon(t, { dataDir });
  assert.equal((await fetch(`${d.controlUrl}/healthz`)).status, 200);
  assert.equal(await d.stop('SIGTERM'), 0);
  assert.equal(existsSync(join(dataDir, 'daemon.lock')), false);
});

test('serve on a busy control or data port exits promptly with TC_ERR_ADDRESS_IN_USE and releases the data directory', async (t) => {
  const dir = tempDir(t);
  const port = await busyPort(t);
  for (const flags of [
    ['--listen', `127.0.0.1:${port}`, '--data-listen', '127.0.0.1:0'],
    ['--listen', '127.0.0.1:0', '--data-listen', `127.0.0.1:${port}`],
  ]) {
    const dataDir = join(dir, `d-${flags[1]!.endsWith(String(port)) ? 'control' : 'data'}`);
    const r = await serveFails(['--data-dir', dataDir, ...flags]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`TC_ERR_ADDRESS_IN_USE.*127\\.0\\.0\\.1:${port}`));
    assert.ok(r.ms < 15_000, `exited after ${r.ms} ms`);
    assert.equal(existsSync(join(dataDir, 'daemon.lock')), false, 'the lock is released');
    // The data directory is free again: a daemon on free ports starts on it.
    const d = await startDaemon(t, { dataDir });
    await d.stop('SIGTERM');
  }
});

test('a data directory readable by other users is restricted to mode 700; one writable by others is refused', async (t) => {
  const dataDir = join(tempDir(t), 'dd');
  mkdirSync(dataDir);
  chmodSync(dataDir, 0o755);
  const d = await startDaemon(t, { dataDir });
  assert.equal(statSync(dataDir).mode & 0o777, 0o700);
  assert.equal(statSync(d.tokenFile).mode & 0o077, 0);
  // A directory others may write to (a shared folder) is refused, not changed.
  const shared = join(tempDir(t), 'shared');
  mkdirSync(shared);
  chmodSync(shared, 0o1777);
  const r = await serveFails(['--data-dir', shared, '--listen', '127.0.0.1:0', '--data-listen', '127.0.0.1:0']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /TC_ERR_CONFIG.*writable by other users/);
  assert.equal(statSync(shared).mode & 0o7777, 0o1777);
  assert.deepEqual(readdirSync(shared), []);
});

test('after SIGKILL, a restart on the same data directory lists no memory or shm replica of the dead process', async (t) => {
  const dir = tempDir(t);
  const model = join(dir, 'm');
  await writeSyntheticModel(model, TINY_LLAMA);
  const dataDir = join(dir, 'data');
  const args = ['--import-root', dir, '--replica-admission', 'always'];
  const d = await startDaemon(t, { dataDir, extraArgs: args });
  const client = await connect({ url: d.controlUrl, token: d.token });
  await client.importModel(model, { key: 'm' });
  await client.load('m', { tp: { size: 2, rank: 1 } });
  await client.load('m', { tp: { size: 2, rank: 0 }, transport: 'shm' });
  await client.close();
  const tiers = async (clientArgs: readonly string[]): Promise<string[]> => {
    const r = await runCli(['ls', '--json', ...clientArgs]);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as LsJson).artifacts.flatMap((a) => a.replicas.map((x) => x.tier)).sort();
  };
  const before = await tiers(d.clientArgs);
  assert.ok(before.includes('memory') && before.includes('shm'), `replicas before the kill: ${before.join(',')}`);
  await d.stop('SIGKILL');
  const d2 = await startDaemon(t, { dataDir, extraArgs: args });
  assert.deepEqual(await tiers(d2.clientArgs), ['disk']);
});
