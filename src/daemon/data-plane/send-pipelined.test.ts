// The pipelined sender against a sink that records frames and lets the test decide when the "socket" lets
// go of them: order, the memory bound, a failing block, cancel and deadline mid-pipeline.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32c } from '../../bytes/crc32c.js';
import { tcError } from '../../core/errors.js';
import type { FrameSink } from '../../transport/data-server.js';
import { sendPipelined, type PipelineOptions } from './send-pipelined.js';

/** Byte i of the output. */
const byteAt = (i: number): number => (i * 7 + 3) % 251;

interface Frame {
  readonly at: number;
  readonly bytes: Buffer;
  readonly crc: number | undefined;
}

/** A sink whose sends are let go of when the test says (`flushAll`), or at once (`autoFlush`). */
class TestSink implements FrameSink {
  readonly frames: Frame[] = [];
  /** Payloads sent but not yet let go of. */
  readonly held = new Set<Uint8Array>();
  private readonly pending: (() => void)[] = [];
  abandoned = false;
  /** Throws from ready() once this many frames were sent. */
  failAfter: { frames: number; error: Error } | undefined;

  constructor(private readonly autoFlush: boolean) {}

  ready(): Promise<void> {
    if (this.failAfter !== undefined && this.frames.length >= this.failAfter.frames) return Promise.reject(this.failAfter.error);
    return Promise.resolve();
  }

  send(at: number, payload: Uint8Array, crc?: number): Promise<void> {
    // Copied now: the test checks later that the slot was not overwritten while the socket held it.
    this.frames.push({ at, bytes: Buffer.from(payload), crc });
    this.held.add(payload);
    return new Promise<void>((resolve) => {
      const done = (): void => {
        if (!this.held.has(payload)) return;
        assert.ok(Buffer.from(payload).equals(this.frames.find((f) => f.at === at)!.bytes), `frame at ${at} changed while queued`);
        this.held.delete(payload);
        resolve();
      };
      if (this.autoFlush) setImmediate(done);
      else this.pending.push(done);
    });
  }

  flushAll(): void {
    for (const done of this.pending.splice(0)) done();
  }

  abandon(): void {
    this.abandoned = true;
    this.flushAll();
  }
}

/** Options for a range produced from byteAt, blocks finishing in a scrambled order. */
function options(
  start: number,
  end: number,
  over: Partial<Omit<PipelineOptions, 'slots'>> & { slots?: number; slotBytes?: number } = {},
): PipelineOptions {
  const slotBytes = over.slotBytes ?? 1000;
  return {
    start,
    end,
    blockBytes: slotBytes,
    frameBytes: 400,
    maxInFlight: 3,
    deadline: Date.now() + 10_000,
    what: 'test',
    produce: async (from, to, dest) => {
      // Later blocks often finish first.
      await new Promise((r) => setTimeout(r, (7 - ((from / slotBytes) % 7)) * 2));
      for (let i = from; i < to; i++) dest[i - from] = byteAt(i);
    },
    crc: (payload) => Promise.resolve(crc32c(payload)),
    ...over,
    slots: Array.from({ length: over.slots ?? 4 }, () => new Uint8Array(slotBytes)),
  };
}

function assertDelivered(sink: TestSink, start: number, end: number): void {
  let at = start;
  for (const f of sink.frames) {
    assert.equal(f.at, at, 'frames leave in output order, with no gap');
    assert.ok(f.bytes.length <= 400);
    assert.equal(f.crc, crc32c(f.bytes), 'each frame carries the CRC32C of its payload');
    for (let i = 0; i < f.bytes.length; i++) assert.equal(f.bytes[i], byteAt(at + i));
    at += f.bytes.length;
  }
  assert.equal(at, end);
}

test('pipelined send: blocks produced out of order leave in order, each frame with its CRC', async () => {
  const sink = new TestSink(true);
  await sendPipelined(options(123, 123 + 9_876), sink);
  assertDelivered(sink, 123, 123 + 9_876);
  assert.equal(sink.held.size, 0, 'nothing is still held by the socket when the send returns');
});

test('pipelined send: never more productions than allowed, and a slot is reused only once the socket let go of it', async () => {
  const sink = new TestSink(false);
  let running = 0;
  let most = 0;
  const writing = new Set<Uint8Array>();
  const base = options(0, 20_000, { slots: 3, maxInFlight: 2 });
  const sending = sendPipelined(
    {
      ...base,
      produce: async (from, to, dest) => {
        running++;
        most = Math.max(most, running);
        for (const held of sink.held)
          assert.ok(held.buffer !== dest.buffer, `block ${from} is produced into a slot the socket still holds`);
        writing.add(dest);
        await base.produce(from, to, dest);
        writing.delete(dest);
        running--;
      },
    },
    sink,
  );
  // The "socket" lets go of what it holds only from time to time: the pipeline must wait for it.
  for (let i = 0; i < 200 && sink.frames.reduce((n, f) => n + f.bytes.length, 0) < 20_000; i++) {
    await new Promise((r) => setTimeout(r, 5));
    assert.ok(sink.held.size <= 3 * Math.ceil(1000 / 400), 'the socket never holds more than the slots');
    sink.flushAll();
  }
  sink.flushAll();
  await sending;
  assert.ok(most <= 2, `at most 2 productions at once (saw ${most})`);
  assertDelivered(sink, 0, 20_000);
});

test('pipelined send: a failing block fails the send with its code; nothing after it is sent; no production outlives the send', async () => {
  const sink = new TestSink(true);
  let running = 0;
  const base = options(0, 10_000);
  await assert.rejects(
    sendPipelined(
      {
        ...base,
        produce: async (from, to, dest) => {
          running++;
          try {
            if (from === 3000) {
              await new Promise((r) => setTimeout(r, 20)); // later blocks are ready before this one fails
              throw tcError('TC_ERR_SHORT_READ', 'short read: the file shrank');
            }
            await base.produce(from, to, dest);
          } finally {
            running--;
          }
        },
      },
      sink,
    ),
    { code: 'TC_ERR_SHORT_READ' },
  );
  assert.equal(running, 0, 'every production finished before the send rejected');
  assertDelivered(sink, 0, 3000);
  assert.equal(sink.held.size, 0);
});

test('pipelined send: a cancel mid-pipeline stops it with TC_ERR_ABORTED; later blocks are not produced', async () => {
  const sink = new TestSink(true);
  sink.failAfter = { frames: 7, error: tcError('TC_ERR_ABORTED', 'request 1 cancelled') };
  const produced: number[] = [];
  let running = 0;
  const base = options(0, 100_000);
  await assert.rejects(
    sendPipelined(
      {
        ...base,
        produce: async (from, to, dest) => {
          running++;
          produced.push(from);
          await base.produce(from, to, dest);
          running--;
        },
      },
      sink,
    ),
    { code: 'TC_ERR_ABORTED' },
  );
  assert.equal(running, 0);
  assert.equal(sink.frames.length, 7);
  assert.ok(produced.length <= 3 + 4, `only blocks in the pipeline were produced (${produced.length} of 100)`);
});

test('pipelined send: a peer that stops reading is cut off at the deadline (TC_ERR_TIMEOUT) and its bytes let go', async () => {
  const sink = new TestSink(false); // never lets go on its own
  await assert.rejects(sendPipelined(options(0, 50_000, { deadline: Date.now() + 150 }), sink), { code: 'TC_ERR_TIMEOUT' });
  assert.ok(sink.abandoned, 'the connection was abandoned');
  assert.equal(sink.held.size, 0);
});

test('pipelined send: an empty range sends nothing', async () => {
  const sink = new TestSink(true);
  await sendPipelined(options(500, 500), sink);
  assert.equal(sink.frames.length, 0);
});
