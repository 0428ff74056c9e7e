import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { tempDir } from '../../test/helpers/tmp.js';
import { LOCK_FILE, lockDataDir } from './data-dir-lock.js';

const log = pino({ level: 'silent' });

test('data-dir lock: of concurrent takers exactly one wins, the others get TC_ERR_DATA_DIR_LOCKED; release frees it', async (t) => {
  const dir = join(tempDir(t), 'data');
  const results = await Promise.allSettled(Array.from({ length: 6 }, () => lockDataDir(dir, log)));
  const won = results.filter((r) => r.status === 'fulfilled');
  assert.equal(won.length, 1);
  for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as { code: string }).code, 'TC_ERR_DATA_DIR_LOCKED');
  assert.match(readFileSync(join(dir, LOCK_FILE), 'utf8'), new RegExp(`^${process.pid} `));
  await won[0]!.value.release();
  assert.equal(existsSync(join(dir, LOCK_FILE)), false);
  const again = await lockDataDir(dir, log);
  await again.release();
});

test('data-dir lock: a stale lock (dead pid) raced by concurrent takers goes to exactly one of them', async (t) => {
  const dir = join(tempDir(t), 'data');
  mkdirSync(dir);
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  for (let round = 0; round < 5; round++) {
    writeFileSync(join(dir, LOCK_FILE), `${dead.stdout} 1\n`);
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => lockDataDir(dir, log)));
    const won = results.filter((r) => r.status === 'fulfilled');
    assert.equal(won.length, 1, `round ${round}: ${results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'won')).join('; ')}`);
    assert.match(readFileSync(join(dir, LOCK_FILE), 'utf8'), new RegExp(`^${process.pid} `));
    await won[0]!.value.release();
  }
  assert.equal(existsSync(join(dir, `${LOCK_FILE}.takeover`)), false);
});
