// `tensorcast sessions ls|stat|rm|swap-out|swap-in|gc` against real daemons (the CLI contracts of
// docs/sessions.md and README "Commands"): output lines, --json shapes, exit codes.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SESSIONS_DISABLED_MESSAGE } from '../../src/protocol/http/sessions.js';
import { startDaemon } from '../harness/daemon.js';
import { runCli } from '../helpers/cli.js';
import { controlRequest, errorCode } from '../helpers/control-http.js';

test('sessions cli: a daemon without --sessions-cold answers every session command and route TC_ERR_NOT_FOUND (exit 2)', async (t) => {
  const d = await startDaemon(t);
  for (const args of [['ls'], ['stat', 's1'], ['rm', 's1'], ['swap-out', 's1'], ['swap-in', 's1'], ['gc']]) {
    const r = await runCli(['sessions', ...args, ...d.clientArgs]);
    assert.equal(r.code, 2, `sessions ${args.join(' ')}: ${r.stderr}`);
    assert.ok(r.stderr.includes(`error TC_ERR_NOT_FOUND: ${SESSIONS_DISABLED_MESSAGE}`), r.stderr);
  }
  for (const [method, path] of [
    ['GET', '/v1/sessions'],
    ['POST', '/v1/sessions'],
    ['GET', '/v1/session-cache'],
    ['POST', '/v1/sessions/s1/truncate'],
  ] as const) {
    const a = await controlRequest(d, method, path, method === 'POST' ? {} : undefined);
    assert.equal(a.status, 404, `${method} ${path}`);
    assert.equal(errorCode(a.json), 'TC_ERR_NOT_FOUND');
  }
});
