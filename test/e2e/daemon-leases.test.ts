// Shared-memory leases: they expire on their own (the replica can then be evicted), an unknown lease is a
// coded 404, and a restart removes files a previous run left in the shm folder.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../helpers/tmp.js';
import { createDaemon } from '../../src/daemon/create-daemon.js';
import { resolveConfig } from '../../src/daemon/config.js';
import { silentLogger } from '../../src/core/logger.js';
import { TINY_LLAMA, writeSyntheticModel } from '../../src/format/synthetic-model.js';
import { connect } from '../../src/client/tensorcast-client.js';

test('leases expire, unknown leases are TC_ERR_LEASE_NOT_FOUND, a restart clears stale shm files', async (t) => {
  const dir = tempDir(t);
  const model = join(dir, 'm');
  await writeSyntheticModel(model, TINY_LLAMA);
  const shmDir = join('/dev/shm', `tensorcast-test-${process.pid}-${Date.now()}`);
  mkdirSync(shmDir, { recursive: true });
  writeFileSync(join(shmDir, 'stale.bin'), 'left by a crashed daemon');
  mkdirSync(join(shmDir, '.pool'));
  writeFileSync(join(shmDir, '.pool', 'idle-7.bin'), 'an idle segment left by a crashed daemon');
  t.after(() => void import('node:fs').then((fs) => fs.rmSync(shmDir, { recursive: true, force: true })));
  const config = resolveConfig([
    {
      dataDir: join(dir, 'data'),
      listen: '127.0.0.1:0',
      dataListen: '127.0.0.1:0',
      shmDir,
      leaseTtlMs: 300,
      importRoots: [dir],
      logLevel: 'silent',
    },
  ]);
  const daemon = createDaemon(config, { logger: silentLogger });
  const a = await daemon.start();
  t.after(() => daemon.stop());
  assert.equal(existsSync(join(shmDir, 'stale.bin')), false, 'stale files removed at start');
  assert.equal(existsSync(join(shmDir, '.pool', 'idle-7.bin')), false, 'stale idle segments removed at start');
  const client = await connect({ url: a.controlUrl, tokenFile: config.tokenFile });
  t.after(() => client.close());
  await client.importModel(model, { key: 'm' });
  const plan = await client.plan('m', { tp: { size: 2, rank: 1 } });
  const headers = { authorization: `Bearer ${(await import('node:fs')).readFileSync(config.tokenFile, 'utf8').trim()}` };
  const res = await fetch(`${a.controlUrl}/v1/shm-leases`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json' },
    body: JSON.stringify({ artifactId: plan.artifactId, view: plan.view ?? null, viewId: plan.viewId ?? null }),
  });
  assert.equal(res.status, 200);
  const lease = (await res.json()) as { leaseId: string; path: string; bytes: number };
  assert.equal(lease.bytes, plan.totalBytes);
  assert.ok(lease.path.startsWith(shmDir));
  // One replica file (idle segments kept for reuse live in the hidden .pool folder).
  assert.deepEqual(readdirSync(shmDir).filter((f) => !f.startsWith('.')).length, 1);
  const replicas = async (): Promise<{ readers: number }[]> =>
    ((await fetch(`${a.controlUrl}/v1/replicas`, { headers }).then((r) => r.json())) as { replicas: { readers: number }[] }).replicas;
  assert.equal((await replicas())[0]!.readers, 1);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal((await replicas())[0]!.readers, 0, 'the expired lease released its reader');
  const gone = await fetch(`${a.controlUrl}/v1/shm-leases/${lease.leaseId}`, { method: 'DELETE', headers });
  assert.equal(gone.status, 404);
  assert.equal(((await gone.json()) as { error: { code: string } }).error.code, 'TC_ERR_LEASE_NOT_FOUND');
});
