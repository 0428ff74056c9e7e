// `tensorcast sessions ls|stat|rm|swap-out|swap-in|gc` against real daemons (the CLI contracts of
// docs/sessions.md and README "Commands"): output lines, --json shapes, exit codes.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type GcResult, type SessionEntry, type SessionStat, type SwapResult } from '../../src/client/index.js';
import { SESSIONS_DISABLED_MESSAGE } from '../../src/protocol/http/sessions.js';
import { startDaemon } from '../harness/daemon.js';
import { runCli } from '../helpers/cli.js';
import { controlRequest, errorCode } from '../helpers/control-http.js';
import { BPT, coldDirUrl, GEOMETRY, kvBytes } from '../helpers/session-fixtures.js';

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

test('sessions cli: ls, stat (--entries), swap-out, swap-in, gc and rm: lines, --json shapes and exit codes', async (t) => {
  const cold = coldDirUrl(t);
  const d = await startDaemon(t, { extraArgs: ['--sessions-cold', cold, '--sessions-hot-budget', '64KiB'] });
  const client = await connect({ url: d.controlUrl, token: d.token });
  t.after(() => client.close());
  const sessions = client.sessions();
  const a = await sessions.create({ sessionId: 'chat-a', geometry: GEOMETRY });
  await sessions.append('chat-a', 0, kvBytes(10, 1));
  await sessions.append('chat-a', 10, kvBytes(6, 2));
  await sessions.create({ sessionId: 'chat-b', geometry: GEOMETRY });
  await sessions.append('chat-b', 0, kvBytes(5, 3));
  const cli = (...args: string[]) => runCli(['sessions', ...args, ...d.clientArgs]);

  const ls = await cli('ls');
  assert.equal(ls.code, 0, ls.stderr);
  const lines = ls.stdout.trim().split('\n');
  assert.match(lines[0]!, /^SESSION\s+MODEL\s+TOKENS\s+SIZE\s+ENTRIES\s+RESIDENCY\s+UPDATED$/);
  assert.match(lines[1]!, /^chat-a\s+tiny\s+16\s+512 B\s+2\s+hot\s+\d{4}-\d\d-\d\dT/);
  assert.match(lines[2]!, /^chat-b\s+tiny\s+5\s+160 B\s+1\s+hot\s/);
  assert.equal(lines[3], '2 sessions, 672 B (672 bytes), 672 B hot here');
  const lsJson = await cli('ls', '--json');
  const listed = (JSON.parse(lsJson.stdout) as { sessions: SessionStat[] }).sessions;
  assert.deepEqual(
    listed.map((s) => [s.sessionId, s.tokens, s.bytes, s.residency]),
    [
      ['chat-a', 16, 16 * BPT, 'hot'],
      ['chat-b', 5, 5 * BPT, 'hot'],
    ],
  );

  const stat = await cli('stat', 'chat-a');
  assert.equal(stat.code, 0, stat.stderr);
  assert.match(stat.stdout, /^session\s+chat-a$/m);
  assert.match(stat.stdout, new RegExp(`^geometry\\s+${a.geometryHash}$`, 'm'));
  assert.match(stat.stdout, /^tokens\s+16$/m);
  assert.match(stat.stdout, /^residency\s+hot \(512 B hot here\)$/m);
  const withEntries = await cli('stat', 'chat-a', '--entries', '--json');
  const detail = JSON.parse(withEntries.stdout) as SessionStat & { entryList: SessionEntry[] };
  assert.equal(detail.tokens, 16);
  assert.deepEqual(
    detail.entryList.map((e) => [e.tokenOffset, e.tokenLength, e.bytes, e.hot?.holder]),
    [
      [0, 10, 320, d.daemonId],
      [10, 6, 192, d.daemonId],
    ],
    'entries marked hot by this daemon (its id is the cache owner)',
  );
  const entriesText = await cli('stat', 'chat-a', '--entries');
  assert.match(entriesText.stdout, /^TOKENS\s+SIZE\s+CRC32C\s+HOT\s+URI$/m);
  assert.match(entriesText.stdout, /^0-10\s+320 B\s+[0-9a-f]{8}\s+d-[0-9a-f]+\s+sessions\/chat-a\//m);

  const out = await cli('swap-out', 'chat-a');
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stdout, /^swapped out chat-a: 512 B \(512 bytes\) in [\d.]+ ms$/m);
  assert.equal((await sessions.stat('chat-a')).residency, 'cold');
  assert.equal((await cli('swap-out', 'chat-a')).stdout, 'chat-a already cold here\n');
  const inJson = await cli('swap-in', 'chat-a', '--json');
  assert.equal(inJson.code, 0, inJson.stderr);
  const swapped = JSON.parse(inJson.stdout) as SwapResult;
  assert.equal(swapped.sessionId, 'chat-a');
  assert.equal(swapped.bytes, 512);
  assert.equal((await sessions.stat('chat-a')).residency, 'hot');
  const into = Buffer.alloc(16 * BPT);
  await sessions.read('chat-a', { tokenStart: 0, tokenEnd: 16 }, { into });
  assert.ok(into.equals(Buffer.concat([kvBytes(10, 1), kvBytes(6, 2)])));

  // An object under sessions/ that no session references (a crash between a cold write and its record).
  const coldDir = fileURLToPath(cold);
  mkdirSync(join(coldDir, 'sessions', 'chat-x'), { recursive: true });
  writeFileSync(join(coldDir, 'sessions', 'chat-x', 'orphan'), Buffer.alloc(100));
  const gc = await cli('gc');
  assert.equal(gc.code, 0, gc.stderr);
  assert.equal(gc.stdout, 'scanned 4 objects, deleted 1 (100 B)\n');
  const gcJson = JSON.parse((await cli('gc', '--json')).stdout) as GcResult;
  assert.deepEqual(gcJson, { scanned: 3, deleted: 0, deletedBytes: 0 });

  const missing = await cli('stat', 'nope');
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^error TC_ERR_NOT_FOUND: /m);
  const invalid = await cli('stat', 'bad id!');
  assert.equal(invalid.code, 2);
  assert.match(invalid.stderr, /TC_ERR_INVALID_ARGUMENT/);
  const tooBig = await startDaemon(t, { extraArgs: ['--sessions-cold', coldDirUrl(t), '--sessions-hot-budget', '100'] });
  const big = await connect({ url: tooBig.controlUrl, token: tooBig.token });
  t.after(() => big.close());
  await big.sessions().create({ sessionId: 'huge', geometry: GEOMETRY });
  await big.sessions().append('huge', 0, kvBytes(8, 9));
  const budget = await runCli(['sessions', 'swap-in', 'huge', ...tooBig.clientArgs]);
  assert.equal(budget.code, 1, 'larger than the hot budget: TC_ERR_BUDGET, exit 1');
  assert.match(budget.stderr, /TC_ERR_BUDGET/);

  const rm = await cli('rm', 'chat-b', 'nope');
  assert.equal(rm.code, 2, 'an unknown session: exit 2');
  assert.match(rm.stdout, /^closed chat-b$/m);
  assert.match(rm.stderr, /TC_ERR_NOT_FOUND/);
  const forced = await cli('rm', '--force', 'nope', 'chat-a');
  assert.equal(forced.code, 0, forced.stderr);
  assert.match(forced.stdout, /^not found nope \(ignored\)$/m);
  assert.equal(
    (await cli('ls')).stdout,
    'SESSION  MODEL  TOKENS  SIZE  ENTRIES  RESIDENCY  UPDATED\n0 sessions, 0 B (0 bytes), 0 B hot here\n',
  );
  assert.deepEqual(
    readdirSync(join(coldDir, 'sessions')).flatMap((s) => readdirSync(join(coldDir, 'sessions', s))),
    [],
    'rm freed the cold tier',
  );
});
