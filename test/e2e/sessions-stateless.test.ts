// Stateless servers (issue 13, docs/sessions.md "On the daemon"): two daemon processes on one shared metadata
// store (Redis, then PostgreSQL) and one shared cold tier (redis://, then s3://). A session created and
// appended on A is continued on B and read back on A; concurrent appends from A and B to one session: one
// wins, the other gets TC_ERR_CONFLICT, and the session stays consistent.

import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { connect, type RemoteSessions } from '../../src/client/index.js';
import { isTensorcastError } from '../../src/core/errors.js';
import { encodeDataHeader, FrameType } from '../../src/protocol/frames.js';
import { SAppend } from '../../src/protocol/session-messages.js';
import { startDaemon, type TestDaemon } from '../harness/daemon.js';
import { postgresCatalogUrl, redisCatalogUrl, redisConnectorUrl, s3ConnectorUrl } from '../harness/services.js';
import { ObjectWire } from '../helpers/object-wire.js';
import { BPT, GEOMETRY, kvBytes } from '../helpers/session-fixtures.js';

/** A daemon with sessions on `cold` and `meta`, and its SDK sessions. */
interface SessionDaemon {
  readonly daemon: TestDaemon;
  readonly sessions: RemoteSessions;
}

async function startSessionDaemon(t: TestContext, cold: string, meta: string, hotBudget = 64 * 1024): Promise<SessionDaemon> {
  const daemon = await startDaemon(t, {
    extraArgs: [
      '--sessions-cold',
      cold,
      '--sessions-meta',
      meta,
      '--sessions-hot-budget',
      String(hotBudget),
      '--sessions-lease-ttl',
      '60s',
    ],
  });
  const client = await connect({ url: daemon.controlUrl, token: daemon.token });
  t.after(() => client.close());
  return { daemon, sessions: client.sessions() };
}

/** Reads the whole session through `s` and compares it with `model`. */
async function assertSession(s: RemoteSessions, id: string, model: Buffer, where: string): Promise<void> {
  const stat = await s.stat(id);
  assert.equal(stat.tokens * BPT, model.length, `${where}: tokens`);
  assert.equal(stat.bytes, model.length, `${where}: bytes`);
  if (model.length === 0) return;
  const into = Buffer.alloc(model.length);
  await s.read(id, { tokenStart: 0, tokenEnd: stat.tokens }, { into });
  assert.ok(into.equals(model), `${where}: the bytes read back are the bytes appended`);
}

/**
 * An SAPPEND on a raw data-plane connection that stops after the daemon's CREDIT: the daemon has prepared the
 * append (the session's lease is taken) and waits for the bytes. `finish` sends them and waits for the answer.
 */
async function heldAppend(
  d: TestDaemon,
  sessionId: string,
  tokenOffset: number,
  kv: Buffer,
): Promise<{ finish(): Promise<'done' | 'error'>; close(): void }> {
  const w = await ObjectWire.open(d.dataAddress, d.token);
  const id = 7001;
  const frame = SAppend.encode(0, { sessionId, tokenOffset, size: kv.length });
  frame.writeUInt32LE(id, 8);
  w.raw(frame);
  await until(() => w.seen.includes(FrameType.CREDIT) || w.seen.includes(FrameType.ERROR), 'the held append is granted credit');
  assert.ok(!w.seen.includes(FrameType.ERROR), 'the held append was refused');
  return {
    finish: async () => {
      w.raw(Buffer.concat([encodeDataHeader(id, 0, kv), kv]));
      await until(() => w.seen.includes(FrameType.DONE) || w.seen.includes(FrameType.ERROR), 'the held append is answered');
      return w.seen.includes(FrameType.DONE) ? 'done' : 'error';
    },
    close: () => w.close(),
  };
}

/** Polls `cond` (no timing assertion: a generous deadline only against a hang). */
async function until(cond: () => boolean, what: string, deadlineMs = 60_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The scenario on two daemons sharing `cold` and `meta`. */
async function statelessScenario(t: TestContext, cold: string, meta: string): Promise<void> {
  const a = await startSessionDaemon(t, cold, meta);
  const b = await startSessionDaemon(t, cold, meta);
  assert.notEqual(a.daemon.daemonId, b.daemon.daemonId);

  // Created and appended on A, continued on B, read back on A (and B).
  const created = await a.sessions.create({ sessionId: 'conv-1', geometry: GEOMETRY });
  assert.equal(created.tokens, 0);
  let model = Buffer.alloc(0);
  const turn = async (s: RemoteSessions, tokens: number, seed: number): Promise<void> => {
    const kv = kvBytes(tokens, seed);
    const r = await s.append('conv-1', model.length / BPT, kv, { expectHash: created.geometryHash });
    model = Buffer.concat([model, kv]);
    assert.equal(r.tokens, model.length / BPT);
  };
  await turn(a.sessions, 40, 1);
  await turn(b.sessions, 25, 2);
  await assertSession(a.sessions, 'conv-1', model, 'A after B continued');
  await turn(a.sessions, 7, 3);
  await turn(b.sessions, 1, 4);
  await assertSession(b.sessions, 'conv-1', model, 'B');
  await assertSession(a.sessions, 'conv-1', model, 'A');
  assert.deepEqual(
    (await b.sessions.list()).map((s) => s.sessionId),
    ['conv-1'],
    'B lists the session A created',
  );

  // A writer holds the session on A (its append prepared, bytes not sent yet): B's append is refused at once.
  const heldKv = kvBytes(10, 5);
  const held = await heldAppend(a.daemon, 'conv-1', model.length / BPT, heldKv);
  t.after(() => held.close());
  await assert.rejects(b.sessions.append('conv-1', model.length / BPT, kvBytes(10, 6)), (e: unknown) =>
    isTensorcastError(e, 'TC_ERR_CONFLICT'),
  );
  assert.equal(await held.finish(), 'done');
  model = Buffer.concat([model, heldKv]);
  await assertSession(b.sessions, 'conv-1', model, 'after the held append won');
  assert.ok((await b.sessions.stats()).leaseConflicts >= 1, 'B counted the lease conflict');

  // Racing appends at the same offset from A and B: exactly one lands each round; the other is refused with
  // TC_ERR_CONFLICT (the lease was held) or, when it came after the winner released the lease, as an overlap.
  let conflicts = 0;
  for (let round = 0; round < 12; round++) {
    const offset = model.length / BPT;
    const kvA = kvBytes(3 + (round % 5), 100 + round);
    const kvB = kvBytes(2 + (round % 3), 200 + round);
    const [ra, rb] = await Promise.allSettled([a.sessions.append('conv-1', offset, kvA), b.sessions.append('conv-1', offset, kvB)]);
    const won = [ra, rb].filter((r) => r.status === 'fulfilled');
    assert.equal(won.length, 1, `round ${round}: exactly one append lands`);
    const lost = [ra, rb].find((r) => r.status === 'rejected')!.reason as unknown;
    if (isTensorcastError(lost, 'TC_ERR_CONFLICT')) conflicts++;
    else
      assert.ok(
        isTensorcastError(lost, 'TC_ERR_INVALID_ARGUMENT') && lost.details?.['reason'] === 'overlap',
        `round ${round}: ${String(lost)}`,
      );
    model = Buffer.concat([model, ra.status === 'fulfilled' ? kvA : kvB]);
  }
  t.diagnostic(`racing appends: ${conflicts} of 12 losers got TC_ERR_CONFLICT, the rest an overlap`);
  await assertSession(a.sessions, 'conv-1', model, 'A after the races');
  await assertSession(b.sessions, 'conv-1', model, 'B after the races');

  // Closed on B: gone on A too.
  await b.sessions.close('conv-1');
  await assert.rejects(a.sessions.stat('conv-1'), (e: unknown) => isTensorcastError(e, 'TC_ERR_NOT_FOUND'));
}

test("sessions stateless: two daemons on a shared Redis store and a redis:// cold tier continue each other's sessions", async (t) => {
  const meta = await redisCatalogUrl(t);
  const cold = await redisConnectorUrl(t);
  if (meta === undefined || cold === undefined) return;
  await statelessScenario(t, cold, meta);
});

test("sessions stateless: two daemons on a shared PostgreSQL store and an s3:// cold tier continue each other's sessions", async (t) => {
  const meta = await postgresCatalogUrl(t);
  const cold = await s3ConnectorUrl(t);
  if (meta === undefined || cold === undefined) return;
  await statelessScenario(t, cold, meta);
});
