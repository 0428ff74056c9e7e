// Listener settings as typed on a command line: addresses, TTLs in seconds or with a unit, byte sizes, files.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../../../test/helpers/tmp.js';
import { parseHandshakeTtl, parseListenAddress, parsePositiveBytes, readHandshakeTls, readTokenFile } from './listener-settings.js';

const config = { code: 'TC_ERR_CONFIG' };

test('parseListenAddress: HOST:PORT and [IPv6]:PORT; anything else names the setting', () => {
  assert.deepEqual(parseListenAddress('127.0.0.1:7072', 'x'), { host: '127.0.0.1', port: 7072 });
  assert.deepEqual(parseListenAddress('[::1]:0', 'x'), { host: '::1', port: 0 });
  assert.deepEqual(parseListenAddress('localhost:80', 'x'), { host: 'localhost', port: 80 });
  for (const bad of ['7072', 'host:', ':80', 'h:65536', '::1:80', 'h:8o']) {
    assert.throws(
      () => parseListenAddress(bad, '--listen'),
      (e: Error & { code?: string }) => e.code === 'TC_ERR_CONFIG' && e.message.startsWith('--listen'),
    );
  }
});

test('parseHandshakeTtl: bare numbers are seconds, units are honoured, tiny or junk values refused', () => {
  assert.equal(parseHandshakeTtl('60', 'x'), 60_000);
  assert.equal(parseHandshakeTtl('0.5', 'x'), 500);
  assert.equal(parseHandshakeTtl(2, 'x'), 2000);
  assert.equal(parseHandshakeTtl('250ms', 'x'), 250);
  assert.equal(parseHandshakeTtl('2m', 'x'), 120_000);
  for (const bad of ['0', '0.001', 'soon', '-1', '1 day', '']) assert.throws(() => parseHandshakeTtl(bad, 'x'), config, bad);
});

test('parsePositiveBytes, readTokenFile, readHandshakeTls', (t) => {
  assert.equal(parsePositiveBytes('4MiB', 'x'), 4 << 20);
  assert.equal(parsePositiveBytes('100', 'x'), 100);
  for (const bad of ['0', 'lots', '-5']) assert.throws(() => parsePositiveBytes(bad, 'x'), config, bad);
  const dir = tempDir(t);
  writeFileSync(join(dir, 'token'), '  secret-token-value \n');
  writeFileSync(join(dir, 'empty'), '\n');
  assert.equal(readTokenFile(join(dir, 'token'), 'x'), 'secret-token-value');
  assert.throws(() => readTokenFile(join(dir, 'empty'), 'x'), /holds no token/);
  assert.throws(() => readTokenFile(join(dir, 'missing'), 'x'), config);
  assert.equal(readHandshakeTls({}, '--tls'), undefined);
  assert.throws(() => readHandshakeTls({ cert: join(dir, 'token') }, '--tls'), /go together/);
  assert.throws(() => readHandshakeTls({ clientCa: join(dir, 'token') }, '--tls'), /needs --tls-cert/);
  const tls = readHandshakeTls({ cert: join(dir, 'token'), key: join(dir, 'empty'), clientCa: join(dir, 'token') }, '--tls');
  assert.equal(tls?.cert.toString(), '  secret-token-value \n');
  assert.throws(() => readHandshakeTls({ cert: join(dir, 'token'), key: join(dir, 'missing') }, '--tls'), /--tls-key: cannot read/);
});
