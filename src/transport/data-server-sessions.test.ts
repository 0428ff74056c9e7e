// Session SAPPEND and SREAD on the data-plane server, with an in-memory session handler (the cache's data-plane
// shape; the real SessionCache behind a real daemon is tested in src/daemon/data-plane/session-frames.test.ts
// and test/e2e): credit, bytes landing in the reserved memory, errors before CREDIT / INFO, checksums, DATA
// beyond the credit, disconnects mid-append and mid-read (nothing recorded, room and pins given back), and
// random frame sequences from a hostile peer that never crash the server.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { test } from 'node:test';
import fc from 'fast-check';
import { tcError } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import { crc32c, encodeControl, encodeDataHeader, encodeHeader, FrameType } from '../protocol/frames.js';
import { Hello } from '../protocol/messages.js';
import { SAppend, SRead } from '../protocol/session-messages.js';
import { badDataFrame, ObjectWire } from '../../test/helpers/object-wire.js';
import { DataConnection } from './data-connection.js';
import { DataServer, type LoadHandler } from './data-server.js';
import type { SessionAppendLanding, SessionHandler, SessionOutcome, SessionReadSource } from './session-serving.js';

const TOKEN = 'a-token-of-enough-length';
const noLoads: LoadHandler = { serve: () => Promise.reject(tcError('TC_ERR_NOT_FOUND', 'no loads here')) };

/** Sessions in memory: each append kept as its own chunk; counts reserved bytes and pinned reads. */
class MemorySessions implements SessionHandler {
  readonly sessions = new Map<string, { bpt: number; chunks: Buffer[]; tokens: number; version: number }>();
  reserved = 0;
  pins = 0;
  commits = 0;
  /** When set, reservations wait for it (eager DATA then arrives before the room is there). */
  gate: Promise<void> | undefined;

  add(id: string, bytesPerToken: number): void {
    this.sessions.set(id, { bpt: bytesPerToken, chunks: [], tokens: 0, version: 0 });
  }

  bytesOf(id: string): Buffer {
    return Buffer.concat(this.sessions.get(id)!.chunks);
  }

  async prepareAppend(id: string, tokenOffset: number, size: number, o?: { expectHash?: string }): Promise<SessionAppendLanding> {
    await this.gate;
    const s = this.get(id, o?.expectHash);
    if (tokenOffset > s.tokens) throw tcError('TC_ERR_INVALID_ARGUMENT', 'gap', { details: { reason: 'gap' } });
    if (tokenOffset < s.tokens) throw tcError('TC_ERR_INVALID_ARGUMENT', 'overlap', { details: { reason: 'overlap' } });
    if (size % s.bpt !== 0) throw tcError('TC_ERR_INVALID_ARGUMENT', 'partial token', { details: { reason: 'partial_token' } });
    this.reserved += size;
    const dest = Buffer.alloc(size);
    let ended = false;
    return {
      dest,
      commit: () => {
        if (ended) return Promise.reject(tcError('TC_ERR_INTERNAL', 'ended'));
        ended = true;
        this.reserved -= size;
        s.chunks.push(dest);
        s.tokens += size / s.bpt;
        this.commits++;
        return Promise.resolve({ tokens: s.tokens, version: ++s.version });
      },
      abort: () => {
        if (!ended) this.reserved -= size;
        ended = true;
      },
    };
  }

  openRead(id: string, range: { tokenStart: number; tokenEnd: number }, o?: { expectHash?: string }): Promise<SessionReadSource> {
    const s = this.get(id, o?.expectHash);
    if (range.tokenEnd <= range.tokenStart || range.tokenEnd > s.tokens)
      return Promise.reject(tcError('TC_ERR_SOURCE_RANGE', `[${range.tokenStart}, ${range.tokenEnd}) of ${s.tokens}`));
    this.pins++;
    let closed = false;
    const [from, to] = [range.tokenStart * s.bpt, range.tokenEnd * s.bpt];
    const chunks = s.chunks;
    return Promise.resolve({
      bytes: to - from,
      hit: s.version % 2 === 0,
      async *chunks() {
        // Views of the appends' chunks, cut to the range (as the cache hands out hot copies).
        let at = 0;
        for (const c of chunks) {
          const [a, b] = [Math.max(from, at), Math.min(to, at + c.length)];
          // A turn of the event loop between chunks, as a cold read would take.
          if (a < b) yield await Promise.resolve(c.subarray(a - at, b - at));
          at += c.length;
        }
      },
      close: () => {
        if (!closed) this.pins--;
        closed = true;
      },
    });
  }

  private get(id: string, expectHash: string | undefined): { bpt: number; chunks: Buffer[]; tokens: number; version: number } {
    const s = this.sessions.get(id);
    if (s === undefined) throw tcError('TC_ERR_NOT_FOUND', `no session ${id}`);
    if (expectHash !== undefined && expectHash !== 'h') throw tcError('TC_ERR_INCOMPATIBLE', 'other geometry');
    return s;
  }
}

async function start(
  t: { after: (fn: () => Promise<void>) => void },
  sessions: SessionHandler | undefined,
  onSession?: (o: SessionOutcome) => void,
  stallTimeoutMs?: number,
): Promise<string> {
  const server = new DataServer({
    ...(stallTimeoutMs === undefined ? {} : { stallTimeoutMs }),
    token: TOKEN,
    daemonId: 'd-test',
    handler: noLoads,
    ...(sessions ? { sessions } : {}),
    log: silentLogger,
    frameBytes: 1 << 20,
    ...(onSession ? { onSession } : {}),
  });
  const address = await server.listen('127.0.0.1', 0);
  t.after(() => server.close(100));
  return address;
}

async function wire(t: { after: (fn: () => Promise<void>) => void }, address: string): Promise<ObjectWire> {
  const w = await ObjectWire.open(address, TOKEN);
  t.after(() => Promise.resolve(w.close()));
  return w;
}

async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((res) => setTimeout(res, 20));
  assert.ok(cond(), what);
}

const BPT = 48;

test('sessions on the data plane: the SDK connection appends (eager and beyond the window) and reads any range, byte-identical', async (t) => {
  const store = new MemorySessions();
  store.add('s1', BPT);
  const outcomes: SessionOutcome[] = [];
  const conn = await DataConnection.open(await start(t, store, (o) => outcomes.push(o)), TOKEN);
  t.after(() => conn.close());
  const parts = [1, 7, Math.floor((1 << 20) / BPT) + 1, 3, Math.floor((6 << 20) / BPT)].map((n) => randomBytes(n * BPT));
  let tokens = 0;
  for (const p of parts) {
    const r = await conn.sessionAppend({ sessionId: 's1', tokenOffset: tokens, timeoutMs: 60_000 }, p);
    tokens += p.length / BPT;
    assert.equal(r.tokens, tokens);
    assert.equal(r.bytes, p.length);
  }
  const all = Buffer.concat(parts);
  assert.ok(store.bytesOf('s1').equals(all));
  for (const [a, b] of [
    [0, tokens],
    [0, 1],
    [tokens - 1, tokens],
    [5, 9],
    [3, tokens - 2],
  ] as const) {
    const into = Buffer.alloc((b - a) * BPT);
    const r = await conn.sessionRead({ sessionId: 's1', tokenStart: a, tokenEnd: b, timeoutMs: 60_000 }, into);
    assert.equal(r.bytes, into.length);
    assert.ok(into.equals(all.subarray(a * BPT, b * BPT)), `tokens [${a}, ${b})`);
  }
  assert.equal(store.reserved, 0);
  assert.equal(store.pins, 0);
  assert.deepEqual([...new Set(outcomes.map((o) => `${o.op}:${o.outcome}`))].sort(), ['append:ok', 'read:ok']);
});

test('sessions on the data plane: refusals come before any CREDIT (appends) or INFO (reads), change nothing, and keep the connection', async (t) => {
  const store = new MemorySessions();
  store.add('s', BPT);
  const w = await wire(t, await start(t, store));
  const ok = await w.sappend({ sessionId: 's', tokenOffset: 0 }, randomBytes(4 * BPT));
  assert.ok(ok.ok && ok.tokens === 4, JSON.stringify(ok));
  const seenBefore = w.seen.filter((x) => x === FrameType.CREDIT).length;
  const cases: [string, Promise<Awaited<ReturnType<ObjectWire['sappend']>>>, string, string | undefined][] = [
    ['gap', w.sappend({ sessionId: 's', tokenOffset: 5 }, randomBytes(BPT)), 'TC_ERR_INVALID_ARGUMENT', 'gap'],
    ['overlap', w.sappend({ sessionId: 's', tokenOffset: 3 }, randomBytes(BPT)), 'TC_ERR_INVALID_ARGUMENT', 'overlap'],
    ['partial', w.sappend({ sessionId: 's', tokenOffset: 4 }, randomBytes(BPT + 1)), 'TC_ERR_INVALID_ARGUMENT', 'partial_token'],
    ['unknown', w.sappend({ sessionId: 'nope', tokenOffset: 0 }, randomBytes(BPT)), 'TC_ERR_NOT_FOUND', undefined],
    ['hash', w.sappend({ sessionId: 's', tokenOffset: 4, expectHash: 'other' }, randomBytes(BPT)), 'TC_ERR_INCOMPATIBLE', undefined],
  ];
  for (const [name, p, code, reason] of cases) {
    const r = await p;
    assert.ok(!r.ok && r.error.code === code, `${name}: ${JSON.stringify(r)}`);
    if (reason !== undefined && !r.ok) assert.equal(r.error.details['reason'], reason, name);
  }
  // Every refused append was small enough to be eager: its DATA was dropped, no CREDIT went out.
  assert.equal(w.seen.filter((x) => x === FrameType.CREDIT).length, seenBefore);
  const big = await w.sappend({ sessionId: 's', tokenOffset: 9 }, randomBytes(BPT * 30_000));
  assert.ok(!big.ok && big.error.code === 'TC_ERR_INVALID_ARGUMENT');
  assert.equal(w.seen.filter((x) => x === FrameType.CREDIT).length, seenBefore, 'no CREDIT for a refused append');
  const infos = w.seen.filter((x) => x === FrameType.INFO).length;
  const reads: [string, Promise<Awaited<ReturnType<ObjectWire['sread']>>>, string][] = [
    ['beyond', w.sread({ sessionId: 's', tokenStart: 0, tokenEnd: 5, expectBytes: 5 * BPT }), 'TC_ERR_SOURCE_RANGE'],
    ['reversed', w.sread({ sessionId: 's', tokenStart: 3, tokenEnd: 1, expectBytes: 0 }), 'TC_ERR_SOURCE_RANGE'],
    ['small into', w.sread({ sessionId: 's', tokenStart: 0, tokenEnd: 4, expectBytes: 4 * BPT - 1 }), 'TC_ERR_DESTINATION_SIZE'],
    ['large into', w.sread({ sessionId: 's', tokenStart: 0, tokenEnd: 4, expectBytes: 4 * BPT + 1 }), 'TC_ERR_DESTINATION_SIZE'],
    ['unknown', w.sread({ sessionId: 'nope', tokenStart: 0, tokenEnd: 1, expectBytes: BPT }), 'TC_ERR_NOT_FOUND'],
  ];
  for (const [name, p, code] of reads) {
    const r = await p;
    assert.ok(!r.ok && r.error.code === code, `${name}: ${JSON.stringify(r)}`);
  }
  assert.equal(w.seen.filter((x) => x === FrameType.INFO).length, infos, 'no INFO for a refused read');
  assert.equal(store.sessions.get('s')!.tokens, 4);
  assert.equal(store.reserved, 0);
  assert.equal(store.pins, 0);
  const after = await w.sread({ sessionId: 's', tokenStart: 1, tokenEnd: 3, expectBytes: 2 * BPT });
  assert.ok(after.ok && after.data!.equals(store.bytesOf('s').subarray(BPT, 3 * BPT)));
  assert.equal(w.closedWith, undefined);
});

test('sessions on the data plane: a bad DATA checksum is TC_ERR_CHECKSUM, nothing recorded, room given back, the connection keeps working', async (t) => {
  const store = new MemorySessions();
  store.add('s', BPT);
  const w = await wire(t, await start(t, store));
  for (const [size, corrupt] of [
    [BPT * 10, 0],
    [BPT * 100_000, 3],
  ] as const) {
    const bad = await w.sappend({ sessionId: 's', tokenOffset: 0 }, randomBytes(size), { frameBytes: 1 << 20, corruptFrame: corrupt });
    assert.ok(!bad.ok && bad.error.code === 'TC_ERR_CHECKSUM', JSON.stringify(bad));
    assert.equal(store.sessions.get('s')!.tokens, 0);
    assert.equal(store.reserved, 0);
  }
  const data = randomBytes(BPT * 20);
  const ok = await w.sappend({ sessionId: 's', tokenOffset: 0 }, data, { frameBytes: 100 });
  assert.ok(ok.ok && ok.tokens === 20);
  assert.ok(store.bytesOf('s').equals(data));
});

test('sessions on the data plane: DATA beyond the credit, or malformed SAPPEND/SREAD bodies, close the connection; nothing recorded', async (t) => {
  const store = new MemorySessions();
  store.add('s', BPT);
  const address = await start(t, store);
  // DATA beyond the eager bytes before any CREDIT.
  const w = await wire(t, address);
  store.gate = new Promise(() => undefined);
  w.raw(SAppend.encode(1, { sessionId: 's', tokenOffset: 0, size: BPT * 100, eager: BPT }));
  const p = randomBytes(BPT * 100);
  w.raw(Buffer.concat([encodeDataHeader(1, 0, p), p]));
  await w.whenClosed();
  assert.equal(w.closedWith?.code, 'TC_ERR_PROTOCOL');
  store.gate = undefined;
  await until('the refused append gave its room back', () => store.reserved === 0);
  assert.equal(store.sessions.get('s')!.tokens, 0);
  // Malformed bodies.
  const bodies: [number, unknown][] = [
    [FrameType.SAPPEND, { sessionId: 's', tokenOffset: -1, size: 10 }],
    [FrameType.SAPPEND, { sessionId: 's', tokenOffset: 0, size: 10, eager: 11 }],
    [FrameType.SAPPEND, { sessionId: '', tokenOffset: 0, size: 10 }],
    [FrameType.SAPPEND, { sessionId: 's', tokenOffset: 0, size: 10, extra: 1 }],
    [FrameType.SREAD, { sessionId: 's', tokenStart: 0, tokenEnd: 1 }],
    [FrameType.SREAD, [1, 2]],
    [FrameType.SREAD, 'text'],
  ];
  for (const [type, body] of bodies) {
    const x = await wire(t, address);
    x.raw(encodeControl(type as 13 | 14, 1, body));
    await x.whenClosed();
    assert.equal(x.closedWith?.code, 'TC_ERR_PROTOCOL', JSON.stringify(body));
  }
  // Not JSON at all.
  const j = await wire(t, address);
  const junk = Buffer.from('{not json', 'utf8');
  j.raw(Buffer.concat([encodeHeader(FrameType.SREAD, 1, junk.length, 0, crc32c(junk)), junk]));
  await j.whenClosed();
  assert.equal(j.closedWith?.code, 'TC_ERR_PROTOCOL');
  // Still serving.
  const ok = await wire(t, address);
  const r = await ok.sappend({ sessionId: 's', tokenOffset: 0 }, randomBytes(BPT));
  assert.ok(r.ok, JSON.stringify(r));
});

test('sessions on the data plane: a connection closed mid-append records nothing and gives the room back; mid-read unpins', async (t) => {
  const store = new MemorySessions();
  store.add('s', BPT);
  const address = await start(t, store);
  const w = await wire(t, address);
  w.raw(SAppend.encode(1, { sessionId: 's', tokenOffset: 0, size: BPT * 1000 }));
  await until('credit granted', () => w.seen.includes(FrameType.CREDIT));
  assert.equal(store.reserved, BPT * 1000);
  const p = randomBytes(BPT * 500);
  w.raw(Buffer.concat([encodeDataHeader(1, 0, p), p]));
  await new Promise((res) => setTimeout(res, 50));
  w.close();
  await until('room given back', () => store.reserved === 0);
  assert.equal(store.sessions.get('s')!.tokens, 0);
  assert.equal(store.commits, 0);
  // A read whose client stops granting credit and goes away.
  const data = randomBytes(BPT * 60_000);
  const w2 = await wire(t, address);
  const a = await w2.sappend({ sessionId: 's', tokenOffset: 0 }, data);
  assert.ok(a.ok);
  const [host, port] = address.split(':');
  const r = connect({ host: host!, port: Number(port) });
  r.on('error', () => undefined);
  r.on('data', () => undefined);
  r.write(Hello.encode(0, { version: 1, token: TOKEN }));
  r.write(SRead.encode(1, { sessionId: 's', tokenStart: 0, tokenEnd: 60_000, expectBytes: data.length, credit: 1 << 20 }));
  await until('read pinned', () => store.pins === 1);
  r.destroy();
  await until('read unpinned', () => store.pins === 0);
});

test('sessions on the data plane: without a session handler SAPPEND and SREAD answer TC_ERR_NOT_FOUND (sessions not enabled)', async (t) => {
  const w = await wire(t, await start(t, undefined));
  const a = await w.sappend({ sessionId: 's', tokenOffset: 0 }, randomBytes(10));
  assert.ok(!a.ok && a.error.code === 'TC_ERR_NOT_FOUND' && /--sessions-cold/.test(a.error.message), JSON.stringify(a));
  const big = await w.sappend({ sessionId: 's', tokenOffset: 0 }, randomBytes(3 << 20));
  assert.ok(!big.ok && big.error.code === 'TC_ERR_NOT_FOUND');
  const r = await w.sread({ sessionId: 's', tokenStart: 0, tokenEnd: 1, expectBytes: 1 });
  assert.ok(!r.ok && r.error.code === 'TC_ERR_NOT_FOUND' && /--sessions-cold/.test(r.error.message));
  assert.equal(w.closedWith, undefined);
});

test('sessions on the data plane: random frame sequences after HELLO never crash the server, leak no room and no pin', async (t) => {
  const store = new MemorySessions();
  store.add('f', 4);
  const address = await start(t, store);
  const [host, port] = address.split(':');
  const frame = fc.oneof(
    fc.record({
      k: fc.constant('append' as const),
      id: fc.integer({ min: 1, max: 4 }),
      offset: fc.integer({ min: 0, max: 3 }),
      size: fc.integer({ min: 0, max: 3000 }),
      eager: fc.integer({ min: 0, max: 3000 }),
    }),
    fc.record({
      k: fc.constant('read' as const),
      id: fc.integer({ min: 1, max: 4 }),
      start: fc.integer({ min: 0, max: 300 }),
      end: fc.integer({ min: 0, max: 300 }),
      expect: fc.integer({ min: 0, max: 1200 }),
      credit: fc.integer({ min: 0, max: 2000 }),
    }),
    fc.record({
      k: fc.constant('data' as const),
      id: fc.integer({ min: 0, max: 5 }),
      offset: fc.integer({ min: 0, max: 3000 }),
      len: fc.integer({ min: 0, max: 2000 }),
      bad: fc.boolean(),
    }),
    fc.record({ k: fc.constant('credit' as const), id: fc.integer({ min: 0, max: 5 }), n: fc.integer({ min: 0, max: 1 << 20 }) }),
    fc.record({ k: fc.constant('cancel' as const), id: fc.integer({ min: 0, max: 5 }) }),
    fc.record({ k: fc.constant('junk' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }) }),
  );
  await fc.assert(
    fc.asyncProperty(fc.array(frame, { maxLength: 12 }), async (frames) => {
      const socket = connect({ host: host!, port: Number(port) });
      socket.on('error', () => undefined);
      socket.on('data', () => undefined);
      const closed = new Promise((resolve) => socket.on('close', resolve));
      socket.write(Hello.encode(0, { version: 1, token: TOKEN }));
      for (const f of frames) {
        if (f.k === 'append') {
          const tokens = store.sessions.get('f')!.tokens;
          const eager = Math.min(f.eager, f.size);
          socket.write(
            SAppend.encode(f.id, {
              sessionId: 'f',
              tokenOffset: tokens + f.offset - 1,
              size: f.size,
              timeoutMs: 500,
              ...(eager > 0 ? { eager } : {}),
            }),
          );
        } else if (f.k === 'read')
          socket.write(
            SRead.encode(f.id, {
              sessionId: 'f',
              tokenStart: f.start,
              tokenEnd: f.end,
              expectBytes: f.expect,
              credit: f.credit,
              timeoutMs: 500,
            }),
          );
        else if (f.k === 'data') {
          const p = Buffer.alloc(f.len, 7);
          socket.write(f.bad ? badDataFrame(f.id, f.offset, p) : Buffer.concat([encodeDataHeader(f.id, f.offset, p), p]));
        } else if (f.k === 'credit') socket.write(encodeHeader(FrameType.CREDIT, f.id, 0, f.n));
        else if (f.k === 'cancel') socket.write(encodeHeader(FrameType.CANCEL, f.id, 0, 0));
        else socket.write(f.bytes);
      }
      await new Promise((res) => setTimeout(res, 30));
      socket.destroy();
      await closed;
    }),
    { numRuns: 60 },
  );
  // Still serving: a clean append and read.
  const w = await wire(t, address);
  const tokens = store.sessions.get('f')!.tokens;
  const data = randomBytes(4 * 333);
  const put = await w.sappend({ sessionId: 'f', tokenOffset: tokens }, data);
  assert.ok(put.ok, JSON.stringify(put));
  const got = await w.sread({ sessionId: 'f', tokenStart: tokens, tokenEnd: tokens + 333, expectBytes: data.length });
  assert.ok(got.ok && got.data!.equals(data));
  // Whatever was recorded is whole tokens of the bytes sent; nothing reserved or pinned is left.
  await until('no room or pin leaked', () => store.reserved === 0 && store.pins === 0);
  assert.equal(store.bytesOf('f').length, store.sessions.get('f')!.tokens * 4);
});

test('sessions on the data plane: an append whose client goes silent is aborted after the stall timeout (the session is not held)', async (t) => {
  const store = new MemorySessions();
  store.add('s', BPT);
  const w = await wire(t, await start(t, store, undefined, 300));
  const data = randomBytes(BPT * 100_000);
  const silent = w.sappend({ sessionId: 's', tokenOffset: 0, size: data.length }, data.subarray(0, BPT * 1000));
  const r = await silent;
  assert.ok(!r.ok && r.error.code === 'TC_ERR_TIMEOUT', JSON.stringify(r));
  assert.equal(store.reserved, 0);
  assert.equal(store.sessions.get('s')!.tokens, 0);
  const ok = await w.sappend({ sessionId: 's', tokenOffset: 0 }, data);
  assert.ok(ok.ok, JSON.stringify(ok));
});

test('sessions on the data plane: a read whose client grants no credit is ended after the stall timeout (the session is not pinned for its whole deadline)', async (t) => {
  const store = new MemorySessions();
  store.add('s', BPT);
  const w = await wire(t, await start(t, store, undefined, 300));
  const data = randomBytes(BPT * 64);
  assert.ok((await w.sappend({ sessionId: 's', tokenOffset: 0 }, data)).ok);
  // Credit 0 and none ever after: nothing is queued on the socket, so only a credit stall rule can end it.
  const started = Date.now();
  const r = await Promise.race([
    w.sread({ sessionId: 's', tokenStart: 0, tokenEnd: 64, expectBytes: data.length, credit: 0 }),
    new Promise<'stuck'>((res) => setTimeout(() => res('stuck'), 5_000)),
  ]);
  assert.ok(r !== 'stuck' && !r.ok && r.error.code === 'TC_ERR_TIMEOUT', `after ${Date.now() - started} ms: ${JSON.stringify(r)}`);
  await until('the pin is let go', () => store.pins === 0);
  const ok = await w.sread({ sessionId: 's', tokenStart: 0, tokenEnd: 64, expectBytes: data.length });
  assert.ok(ok.ok && ok.data!.equals(data));
});

test('sessions on the data plane: an SDK append aborted by its signal rejects with the reason and records nothing', async (t) => {
  const store = new MemorySessions();
  store.add('s', BPT);
  const address = await start(t, store);
  const conn = await DataConnection.open(address, TOKEN);
  t.after(() => conn.close());
  let open!: () => void;
  store.gate = new Promise((res) => (open = res));
  const ac = new AbortController();
  const append = conn.sessionAppend({ sessionId: 's', tokenOffset: 0, timeoutMs: 60_000 }, randomBytes(BPT * 100_000), ac.signal);
  ac.abort(tcError('TC_ERR_ABORTED', 'the engine gave up'));
  await assert.rejects(append, (e: unknown) => (e as Error).message === 'the engine gave up');
  open();
  await until('nothing reserved', () => store.reserved === 0);
  assert.equal(store.sessions.get('s')!.tokens, 0);
  assert.equal(conn.usable, false, 'the connection was closed with the request');
});
