// The shm reserve over real daemon processes: allocated before the daemon says it is ready, under the
// memory budget, and gone when the daemon stops, even when it is told to stop the moment it said ready; a
// restart clears what a killed daemon left.

import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { spawnPrivateDaemon } from '../../src/cli/spawn-daemon.js';
import { resolveConfig } from '../../src/daemon/config.js';
import { tempDir } from '../helpers/tmp.js';

const MiB = 1 << 20;

/** Bytes of the idle segments in a daemon's shm pool folder. */
const poolBytes = (shmDir: string): number =>
  readdirSync(join(shmDir, '.pool')).reduce((n, f) => n + statSync(join(shmDir, '.pool', f)).size, 0);

test('the shm reserve is there when the daemon is ready and gone when it stops, however soon', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  for (let i = 0; i < 5; i++) {
    const dataDir = join(dir, `d${i}`);
    const shmDir = resolveConfig([{ dataDir }]).shmDir;
    const d = await spawnPrivateDaemon(dataDir, { memoryBudget: '1GiB', extraArgs: ['--shm-reserve', '64MiB'] });
    if (i === 0) assert.equal(poolBytes(shmDir), 60 * MiB, 'the reserve (32 + 16 + 8 + 4 MiB) is allocated before ready');
    // Stopped the moment it said ready: a clean stop, nothing left on tmpfs.
    assert.equal(await d.stop(), 0, d.stderr());
    assert.equal(existsSync(shmDir), false, `daemon ${i} left ${shmDir}`);
  }
  // Killed: the files stay until the next start on the same data directory, which removes them.
  const dataDir = join(dir, 'killed');
  const shmDir = resolveConfig([{ dataDir }]).shmDir;
  const killed = await spawnPrivateDaemon(dataDir, { memoryBudget: '1GiB', extraArgs: ['--shm-reserve', '16MiB'] });
  await killed.stop('SIGKILL');
  assert.equal(poolBytes(shmDir), 12 * MiB);
  const again = await spawnPrivateDaemon(dataDir, { memoryBudget: '1GiB', extraArgs: ['--shm-reserve', '0'] });
  assert.equal(poolBytes(shmDir), 0, 'the killed daemon’s segments were removed at start');
  assert.equal(await again.stop(), 0);
  assert.equal(existsSync(shmDir), false);
});
