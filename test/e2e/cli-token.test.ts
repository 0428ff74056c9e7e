// Where the CLI's token comes from (--token-file, TENSORCAST_TOKEN, TENSORCAST_TOKEN_FILE, the default file),
// and that a rejected or missing token says which one it was: through the CLI against a real daemon.

import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli, type CliResult } from '../helpers/cli.js';
import { startDaemon } from '../harness/daemon.js';
import { tempDir } from '../helpers/tmp.js';

const WRONG = 'not-the-token-0123456789';

/** `tensorcast ls --json` with only the given token settings (HOME is a fresh directory). */
function ls(home: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return runCli(['ls', '--json', ...args], {
    HOME: home,
    TENSORCAST_DAEMON: '',
    TENSORCAST_TOKEN: '',
    TENSORCAST_TOKEN_FILE: '',
    ...env,
  });
}

function assertRejected(r: CliResult, source: RegExp): void {
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^error TC_ERR_AUTH: /m);
  assert.match(r.stderr, source);
}

test('token: each source works, and a rejected token names where it came from', async (t) => {
  const d = await startDaemon(t);
  const dir = tempDir(t);
  const home = join(dir, 'home');
  mkdirSync(join(home, '.tensorcast'), { recursive: true });
  const wrongFile = join(dir, 'wrong-token');
  writeFileSync(wrongFile, `${WRONG}\n`);
  const url = ['--daemon', d.controlUrl];

  assert.equal((await ls(home, [...url], { TENSORCAST_TOKEN: d.token })).code, 0);
  const byEnvFile = await ls(home, [...url], { TENSORCAST_TOKEN_FILE: d.tokenFile });
  assert.equal(byEnvFile.code, 0, byEnvFile.stderr);
  assert.ok(Array.isArray((JSON.parse(byEnvFile.stdout) as { artifacts: unknown }).artifacts));

  assertRejected(await ls(home, [...url, '--token-file', wrongFile]), /token from --token-file .*wrong-token\)/);
  assertRejected(await ls(home, [...url], { TENSORCAST_TOKEN: WRONG }), /token from TENSORCAST_TOKEN\)/);
  assertRejected(await ls(home, [...url], { TENSORCAST_TOKEN_FILE: wrongFile }), /token from TENSORCAST_TOKEN_FILE=.*wrong-token\)/);
  writeFileSync(join(home, '.tensorcast', 'token'), `${WRONG}\n`);
  assertRejected(await ls(home, [...url]), /token from the default token file .*\.tensorcast\/token\)/);

  // The flag wins over both variables, and TENSORCAST_TOKEN over TENSORCAST_TOKEN_FILE.
  const env = { TENSORCAST_TOKEN: WRONG, TENSORCAST_TOKEN_FILE: wrongFile };
  assert.equal((await ls(home, [...url, '--token-file', d.tokenFile], env)).code, 0);
  assert.equal((await ls(home, [...url], { TENSORCAST_TOKEN: d.token, TENSORCAST_TOKEN_FILE: wrongFile })).code, 0);
});

test('token: a missing token file named by --token-file or TENSORCAST_TOKEN_FILE is not found (exit 2), naming it', async (t) => {
  const dir = tempDir(t);
  const missing = join(dir, 'no-such-token');
  // No daemon is needed: the file is read before anything is sent.
  const byFlag = await ls(dir, ['--daemon', 'http://127.0.0.1:9', '--token-file', missing]);
  assert.equal(byFlag.code, 2, byFlag.stderr);
  assert.match(byFlag.stderr, /^error TC_ERR_NOT_FOUND: /m);
  assert.ok(byFlag.stderr.includes('--token-file') && byFlag.stderr.includes(missing), byFlag.stderr);
  const byEnv = await ls(dir, ['--daemon', 'http://127.0.0.1:9'], { TENSORCAST_TOKEN_FILE: missing });
  assert.equal(byEnv.code, 2, byEnv.stderr);
  assert.match(byEnv.stderr, /^error TC_ERR_NOT_FOUND: /m);
  assert.ok(byEnv.stderr.includes('TENSORCAST_TOKEN_FILE') && byEnv.stderr.includes(missing), byEnv.stderr);
  // No token anywhere: an auth error saying every way to give one.
  const none = await ls(dir, ['--daemon', 'http://127.0.0.1:9']);
  assert.equal(none.code, 1, none.stderr);
  assert.match(none.stderr, /^error TC_ERR_AUTH: no token: .*TENSORCAST_TOKEN .*TENSORCAST_TOKEN_FILE/m);
});

test('token: the help of a client command says which variable is the token and which a file', async () => {
  const help = await runCli(['ls', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /TENSORCAST_TOKEN +the token itself/);
  assert.match(help.stdout, /TENSORCAST_TOKEN_FILE +a file holding the token/);
});
