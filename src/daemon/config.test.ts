import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../../test/helpers/tmp.js';
import { configFromEnv, parseByteSize, resolveConfig } from './config.js';
import { tokenMatches } from './token.js';

test('config: defaults < file < env < flags; every violation reported at once', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'c.json');
  writeFileSync(file, JSON.stringify({ dataDir: dir, listen: '127.0.0.1:1', memoryBudget: '1GiB', logLevel: 'debug' }));
  const env = configFromEnv({ TENSORCAST_LISTEN: '127.0.0.1:2', TENSORCAST_IMPORT_ROOTS: '/a:/b' });
  const c = resolveConfig([{ config: file }, env, { memoryBudget: '512MiB' }]);
  assert.equal(c.listen.port, 2);
  assert.equal(c.memoryBudget, 512 * 2 ** 20);
  assert.equal(c.logLevel, 'debug');
  assert.deepEqual(c.importRoots, ['/a', '/b']);
  assert.equal(c.catalog, `sqlite://${join(dir, 'catalog.db')}`);
  assert.equal(c.tokenFile, join(dir, 'token'));
  assert.deepEqual(c.dataListen, { host: '127.0.0.1', port: 7071 });
  assert.throws(
    () => resolveConfig([{ listen: 'x', dataListen: '1.2.3.4:99999', memoryBudget: 'much', logLevel: 'loud', bogus: 1 } as never]),
    (e: Error) =>
      /listen/.test(e.message) &&
      /dataListen/.test(e.message) &&
      /memoryBudget/.test(e.message) &&
      /logLevel/.test(e.message) &&
      /bogus/.test(e.message),
  );
  assert.throws(() => resolveConfig([{ listen: '0.0.0.0:7070' }]), {
    code: 'TC_ERR_CONFIG',
    message: /refusing to listen on 0\.0\.0\.0:7070/,
  });
  assert.equal(resolveConfig([{ listen: '0.0.0.0:7070', token: 'a-configured-token-of-length' }]).listen.host, '0.0.0.0');
  assert.equal(resolveConfig([{ listen: '[::1]:7070' }]).listen.host, '::1');
  assert.deepEqual(
    [parseByteSize('8GiB'), parseByteSize('512MB'), parseByteSize('1.5k'), parseByteSize('x'), parseByteSize(12)],
    [8 * 2 ** 30, 512e6, 1500, undefined, 12],
  );
});

test('token: constant-time match, any length', () => {
  assert.equal(tokenMatches('abc', 'abc'), true);
  assert.equal(tokenMatches('abd', 'abc'), false);
  assert.equal(tokenMatches('abcd', 'abc'), false);
  assert.equal(tokenMatches(undefined, 'abc'), false);
});

test('config: the staging budget defaults to an eighth of the memory budget within [64 MiB, 1 GiB]', () => {
  assert.equal(resolveConfig([{ memoryBudget: '64MB' }]).stagingBudget, 64 << 20);
  assert.equal(resolveConfig([{ memoryBudget: '4GiB' }]).stagingBudget, 512 << 20);
  assert.equal(resolveConfig([{ memoryBudget: '64GiB' }]).stagingBudget, 1 << 30);
  assert.equal(resolveConfig([configFromEnv({ TENSORCAST_STAGING_BUDGET: '32MiB' })]).stagingBudget, 32 << 20);
  assert.throws(() => resolveConfig([{ stagingBudget: '1000' }]), { code: 'TC_ERR_CONFIG', message: /stagingBudget/ });
});

test('config: objectMemory defaults to the memory budget; objectSpill from a flag, the environment or a file', () => {
  const c = resolveConfig([{ memoryBudget: '1GiB' }]);
  assert.equal(c.objectMemory, 1 << 30);
  assert.equal(c.objectSpill, false);
  const e = resolveConfig([configFromEnv({ TENSORCAST_OBJECT_MEMORY: '64MiB', TENSORCAST_OBJECT_SPILL: '1' })]);
  assert.equal(e.objectMemory, 64 << 20);
  assert.equal(e.objectSpill, true);
  assert.equal(resolveConfig([{ objectSpill: true }, { objectSpill: 'false' }]).objectSpill, false);
  assert.throws(
    () => resolveConfig([{ objectSpill: 'maybe', objectMemory: 'lots' }]),
    (err: Error) => /objectSpill/.test(err.message) && /objectMemory/.test(err.message),
  );
});

test('config: objectTxnTtlMs is a duration, 60s by default, from TENSORCAST_OBJECT_TXN_TTL', () => {
  assert.equal(resolveConfig([]).objectTxnTtlMs, 60_000);
  assert.equal(resolveConfig([configFromEnv({ TENSORCAST_OBJECT_TXN_TTL: '2s' })]).objectTxnTtlMs, 2000);
  assert.throws(() => resolveConfig([{ objectTxnTtlMs: 'soon' }]), /objectTxnTtlMs/);
});

test('config: sessions are off without a cold tier; meta defaults to sqlite in the data dir, the hot budget to a quarter', (t) => {
  const dir = tempDir(t);
  const off = resolveConfig([{ dataDir: dir, memoryBudget: '4GiB' }]);
  assert.equal(off.sessionsCold, undefined);
  assert.equal(off.sessionsMeta, `sqlite://${join(dir, 'sessions.db')}`);
  assert.equal(off.sessionsHotBudget, 1 << 30);
  assert.equal(off.sessionsLeaseTtlMs, 30_000);
  const env = configFromEnv({
    TENSORCAST_SESSIONS_COLD: 'file:///var/kv',
    TENSORCAST_SESSIONS_META: 'redis://127.0.0.1:6379?prefix=kv:',
    TENSORCAST_SESSIONS_HOT_BUDGET: '256MiB',
    TENSORCAST_SESSIONS_LEASE_TTL: '5s',
  });
  const on = resolveConfig([env, { sessionsLeaseTtlMs: '1500' }]);
  assert.equal(on.sessionsCold, 'file:///var/kv');
  assert.equal(on.sessionsMeta, 'redis://127.0.0.1:6379?prefix=kv:');
  assert.equal(on.sessionsHotBudget, 256 << 20);
  assert.equal(on.sessionsLeaseTtlMs, 1500);
  assert.equal(resolveConfig([{ sessionsMeta: 'memory' }]).sessionsMeta, 'memory');
  assert.equal(resolveConfig([configFromEnv({ TENSORCAST_LEASE_TTL_MS: '1500' })]).leaseTtlMs, 1500);
  assert.throws(
    () => resolveConfig([{ sessionsCold: 'ftp://x/y', sessionsMeta: 'mysql://db', sessionsHotBudget: 'lots', sessionsLeaseTtlMs: '0' }]),
    (e: Error) =>
      /sessionsCold/.test(e.message) &&
      /sessionsMeta/.test(e.message) &&
      /sessionsHotBudget/.test(e.message) &&
      /sessionsLeaseTtlMs/.test(e.message),
  );
});
