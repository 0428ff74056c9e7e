// Restart (issue 13): a daemon on SQLite metadata and a file:// cold tier is killed with SIGKILL while a large
// session swaps out and in and appends are in flight; restarted on the same data directory, every session is
// readable and holds exactly its acknowledged bytes (plus, at most, the append in flight at the kill), the
// daemon continues every session (its leases name the same daemon id), and after `sessions gc` no object
// under the cold tier's sessions/ is unreferenced.

import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { connect, type RemoteSessions } from '../../src/client/index.js';
import { createConnector } from '../../src/connectors/create-connector.js';
import { sessionPath } from '../../src/protocol/http/sessions.js';
import type { SessionEntry } from '../../src/sessions/session-types.js';
import { startDaemon, type TestDaemon } from '../harness/daemon.js';
import { runCli } from '../helpers/cli.js';
import { controlRequest } from '../helpers/control-http.js';
import { BPT, coldDirUrl, GEOMETRY, kvBytes } from '../helpers/session-fixtures.js';
import { tempDir } from '../helpers/tmp.js';

/** A session as the test knows it: acknowledged bytes, and an append whose answer the kill may have lost. */
interface Model {
  acked: Buffer;
  inFlight: Buffer | undefined;
}

const MIB = 1 << 20;

test('sessions restart: SIGKILL mid-swap and mid-append, restart on sqlite + file://: every session correct, gc leaves no orphans', async (t) => {
  const dataDir = tempDir(t, 'tc-sessions-restart-');
  const cold = coldDirUrl(t);
  const args = ['--sessions-cold', cold, '--sessions-hot-budget', '40MiB', '--sessions-lease-ttl', '10m'];
  const models = new Map<string, Model>();
  const d1 = await startDaemon(t, { dataDir, extraArgs: args });
  const c1 = await connect({ url: d1.controlUrl, token: d1.token });
  t.after(() => c1.close());
  const s1 = c1.sessions();

  /** Appends through `s` and keeps the model (an append not answered stays in flight). */
  const append = async (s: RemoteSessions, id: string, kv: Buffer): Promise<void> => {
    const m = models.get(id)!;
    m.inFlight = kv;
    await s.append(id, m.acked.length / BPT, kv);
    m.acked = Buffer.concat([m.acked, kv]);
    m.inFlight = undefined;
  };
  // A large session (16 MiB in 4 appends), one that keeps growing, and small ones.
  for (const id of ['big', 'grow', ...Array.from({ length: 12 }, (_, i) => `small-${i}`)]) {
    await s1.create({ sessionId: id, geometry: GEOMETRY });
    models.set(id, { acked: Buffer.alloc(0), inFlight: undefined });
  }
  for (let i = 0; i < 4; i++) await append(s1, 'big', kvBytes((4 * MIB) / BPT, 10 + i));
  for (let i = 0; i < 12; i++) await append(s1, `small-${i}`, kvBytes(1 + ((i * 37) % 200), 100 + i));

  // Churn until the kill: the large session swaps out and in, 'grow' takes 2 MiB appends, small sessions
  // get appends and reads. Every loop stops at its first error (the kill).
  let stopped = false;
  let swaps = 0;
  let grows = 0;
  const swapLoop = (async () => {
    while (!stopped) {
      await s1.swapOut('big');
      await s1.swapIn('big');
      swaps++;
    }
  })();
  const growLoop = (async () => {
    for (let i = 0; !stopped; i++) {
      await append(s1, 'grow', kvBytes((2 * MIB) / BPT, 1000 + i));
      grows++;
    }
  })();
  const smallLoop = (async () => {
    for (let i = 0; !stopped; i++) {
      const id = `small-${i % 12}`;
      await append(s1, id, kvBytes(1 + (i % 50), 5000 + i));
      const m = models.get(id)!;
      const into = Buffer.alloc(m.acked.length);
      await s1.read(id, { tokenStart: 0, tokenEnd: m.acked.length / BPT }, { into });
      assert.ok(into.equals(m.acked), `${id} before the kill`);
    }
  })();
  let loopFailure: unknown;
  for (const loop of [swapLoop, growLoop, smallLoop]) loop.catch((e: unknown) => (loopFailure ??= e));
  const loops = Promise.allSettled([swapLoop, growLoop, smallLoop]);
  // What a crash between a cold write and its metadata update leaves: an object no session references.
  const orphanDir = join(fileURLToPath(cold), 'sessions', 'big');
  mkdirSync(orphanDir, { recursive: true });
  writeFileSync(join(orphanDir, '0-1-leftover'), Buffer.alloc(BPT));
  await until(() => (swaps >= 2 && grows >= 3) || loopFailure !== undefined, 'the churn ran a few rounds');
  // A loop that failed before the kill is a failure of the daemon, not of the kill.
  if (loopFailure !== undefined)
    throw loopFailure instanceof Error ? loopFailure : new Error(`a churn loop failed: ${JSON.stringify(loopFailure)}`);
  // The kill lands while the loops run: a swap, an append and a read are in flight.
  await d1.stop('SIGKILL');
  stopped = true;
  const settled = await loops;
  for (const r of settled) if (r.status === 'rejected') t.diagnostic(`loop ended by the kill: ${String(r.reason)}`);
  t.diagnostic(`killed after ${swaps} swap rounds and ${grows} grow appends`);

  const d2 = await startDaemon(t, { dataDir, extraArgs: args });
  assert.equal(d2.daemonId, d1.daemonId, 'the restarted daemon keeps its id');
  const c2 = await connect({ url: d2.controlUrl, token: d2.token });
  t.after(() => c2.close());
  const s2 = c2.sessions();
  assert.deepEqual((await s2.list()).map((s) => s.sessionId).sort(), [...models.keys()].sort(), 'every session is there');
  for (const [id, m] of models) {
    const stat = await s2.stat(id);
    const withInFlight = m.inFlight === undefined ? undefined : Buffer.concat([m.acked, m.inFlight]);
    const expected = withInFlight !== undefined && stat.bytes === withInFlight.length ? withInFlight : m.acked;
    assert.equal(stat.bytes, expected.length, `${id}: acknowledged bytes (+ at most the append in flight)`);
    const into = Buffer.alloc(expected.length);
    if (expected.length > 0) await s2.read(id, { tokenStart: 0, tokenEnd: stat.tokens }, { into });
    assert.ok(into.equals(expected), `${id}: the bytes read after the restart are the bytes appended`);
    m.acked = expected;
    m.inFlight = undefined;
    // The restarted daemon continues the session (a lease left by the kill names the same daemon).
    await append(s2, id, kvBytes(3, 9000));
    await s2.swapOut(id);
    if (m.acked.length <= 40 * MIB) await s2.swapIn(id);
  }

  const gc = await runCli(['sessions', 'gc', '--json', ...d2.clientArgs]);
  assert.equal(gc.code, 0, gc.stderr);
  t.diagnostic(`gc after the restart: ${gc.stdout.trim()}`);
  assert.ok((JSON.parse(gc.stdout) as { deleted: number }).deleted >= 1, 'gc removed the leftover');
  await assertNoOrphans(d2, cold, [...models.keys()]);
  for (const [id, m] of models) {
    const into = Buffer.alloc(m.acked.length);
    await s2.read(id, { tokenStart: 0, tokenEnd: m.acked.length / BPT }, { into });
    assert.ok(into.equals(m.acked), `${id}: intact after gc`);
  }
});

/** Every object the cold connector lists under sessions/ is an entry of a session. */
async function assertNoOrphans(d: TestDaemon, cold: string, ids: readonly string[]): Promise<void> {
  const referenced = new Set<string>();
  for (const id of ids) {
    const r = await controlRequest(d, 'GET', `${sessionPath(id)}?entries=1`);
    for (const e of (r.json as { entryList: SessionEntry[] }).entryList) referenced.add(e.uri);
  }
  const connector = await createConnector(cold);
  try {
    const objects = await connector.list('sessions/');
    const orphans = objects.map((o) => o.key).filter((k) => !referenced.has(k));
    assert.deepEqual(orphans, [], 'no orphaned cold objects after gc');
    assert.equal(objects.length, referenced.size, 'every referenced object exists');
  } finally {
    await connector.close();
  }
}

/** Polls `cond` (a generous deadline only against a hang; no timing assertion). */
async function until(cond: () => boolean, what: string, deadlineMs = 180_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
