import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { isTensorcastError } from '../core/errors.js';
import { FrameDecoder } from './frame-decoder.js';
import { encodeControl, encodeDataHeader, encodeHeader, FrameType, HEADER_BYTES, MAGIC, type FrameHeader } from './frames.js';

interface Seen {
  type: number;
  requestId: number;
  offset: number;
  body: string;
  ok: boolean;
}

/** A stream of control and data frames plus the destination the data frames fill. */
function sampleStream(dataBytes = 100_000): { stream: Buffer; dest: Uint8Array; expected: Uint8Array } {
  const data = Buffer.alloc(dataBytes);
  for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 0xff;
  const parts: Buffer[] = [
    encodeControl(FrameType.HELLO, 0, { token: 't', version: 1 }),
    encodeControl(FrameType.LOAD, 7, { artifactId: 'a', start: 0, end: dataBytes }),
  ];
  for (let at = 0; at < data.length; at += 30_000) {
    const payload = data.subarray(at, Math.min(data.length, at + 30_000));
    parts.push(encodeDataHeader(7, at, payload), payload);
  }
  parts.push(encodeControl(FrameType.END, 7, { bytes: dataBytes }), encodeHeader(FrameType.CREDIT, 7, 0, 1 << 20));
  return { stream: Buffer.concat(parts), dest: new Uint8Array(dataBytes), expected: new Uint8Array(data) };
}

function decoderInto(dest: Uint8Array, seen: Seen[]): FrameDecoder {
  return new FrameDecoder({
    sink: (h: FrameHeader) => dest.subarray(h.offset, h.offset + h.length),
    onFrame: (h, p, ok) =>
      seen.push({
        type: h.type,
        requestId: h.requestId,
        offset: h.offset,
        body: h.type === FrameType.DATA ? '' : Buffer.from(p).toString(),
        ok,
      }),
  });
}

test('frame decoder: whole, byte by byte and at random split points give the same frames and bytes', () => {
  const { stream, expected } = sampleStream();
  const run = (cuts: number[]): { seen: Seen[]; dest: Uint8Array } => {
    const dest = new Uint8Array(expected.length);
    const seen: Seen[] = [];
    const d = decoderInto(dest, seen);
    let at = 0;
    for (const c of [...cuts, stream.length]) {
      d.push(stream.subarray(at, c));
      at = c;
    }
    return { seen, dest };
  };
  const whole = run([]);
  assert.deepEqual(whole.dest, expected);
  assert.deepEqual(
    whole.seen.map((s) => s.type),
    [1, 3, 4, 4, 4, 4, 5, 7],
  );
  assert.equal(whole.seen.at(-1)!.offset, 1 << 20);
  assert.ok(whole.seen.every((s) => s.ok));
  const small = sampleStream(3000);
  const byteByByte = (() => {
    const dest = new Uint8Array(3000);
    const seen: Seen[] = [];
    const d = decoderInto(dest, seen);
    for (let i = 0; i < small.stream.length; i++) d.push(small.stream.subarray(i, i + 1));
    return { dest, seen };
  })();
  assert.deepEqual(byteByByte.dest, small.expected);
  fc.assert(
    fc.property(fc.array(fc.nat({ max: stream.length }), { maxLength: 40 }), (raw) => {
      const r = run([...new Set(raw)].sort((a, b) => a - b));
      assert.deepEqual(r.dest, expected);
      assert.deepEqual(r.seen, whole.seen);
    }),
    { numRuns: 200 },
  );
});

test('frame decoder: the onread path reads payloads straight into the destination', () => {
  const { stream, expected } = sampleStream(200_000);
  const dest = new Uint8Array(expected.length);
  const seen: Seen[] = [];
  const d = decoderInto(dest, seen);
  let at = 0;
  let direct = 0;
  while (at < stream.length) {
    const buf = d.readBuffer();
    if (buf.buffer === dest.buffer) direct++;
    const n = Math.min(buf.length, stream.length - at, 7000);
    buf.set(stream.subarray(at, at + n));
    d.commit(n);
    at += n;
  }
  assert.deepEqual(dest, expected);
  assert.ok(direct > 10, `direct reads: ${direct}`);
  assert.equal(seen.filter((s) => s.type === FrameType.END).length, 1);
});

test('frame decoder: a corrupted data payload is reported, not silently accepted', () => {
  const { stream, expected } = sampleStream(50_000);
  const bad = Buffer.from(stream);
  const firstData = bad.indexOf(Buffer.from([0x54, 0x43, 0x44, 0x50, 1, FrameType.DATA]));
  bad[firstData + HEADER_BYTES + 5]! ^= 0xff;
  const seen: Seen[] = [];
  decoderInto(new Uint8Array(expected.length), seen).push(bad);
  assert.deepEqual(
    seen.filter((s) => s.type === FrameType.DATA).map((s) => s.ok),
    [false, true],
  );
});

test('frame decoder: malformed input only ever gives TC_ERR_PROTOCOL', () => {
  const expectProtocol = (bytes: Uint8Array, msg?: RegExp): void => {
    const d = new FrameDecoder({ onFrame: () => undefined });
    assert.throws(
      () => d.push(bytes),
      (e: unknown) => isTensorcastError(e, 'TC_ERR_PROTOCOL') && (msg === undefined || msg.test((e as Error).message)),
    );
    assert.throws(() => d.push(new Uint8Array(1)), { code: 'TC_ERR_PROTOCOL' }, 'stays failed');
  };
  expectProtocol(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n\0\0\0\0\0\0'), /magic/);
  const h = encodeHeader(FrameType.LOAD, 1, 0);
  h[4] = 9;
  expectProtocol(h, /version/);
  const t = encodeHeader(FrameType.LOAD, 1, 0);
  t[5] = 99;
  expectProtocol(t, /unknown frame type/);
  expectProtocol(encodeHeader(FrameType.LOAD, 1, 64 << 20), /exceeds/);
  expectProtocol(encodeHeader(FrameType.DATA, 1, 10), /unexpected DATA/);
  const ctl = encodeControl(FrameType.LOAD, 1, { a: 1 });
  ctl[HEADER_BYTES + 2]! ^= 1;
  expectProtocol(ctl, /checksum/);
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.boolean(), (junk, withMagic) => {
      const bytes = withMagic ? Buffer.concat([Buffer.from(new Uint32Array([MAGIC]).buffer), junk]) : junk;
      const d = new FrameDecoder({ onFrame: () => undefined, maxControlBytes: 1 << 16 });
      let accepted = true;
      try {
        d.push(bytes);
      } catch (error) {
        assert.ok(isTensorcastError(error, 'TC_ERR_PROTOCOL'), String(error));
        accepted = false;
      }
      // A whole header that does not start with the magic can never be a frame: silently accepting it is a failure.
      if (bytes.length >= HEADER_BYTES && Buffer.from(bytes).readUInt32LE(0) !== MAGIC)
        assert.equal(accepted, false, 'junk without the magic was accepted');
    }),
    { numRuns: 3000 },
  );
});

test('frame decoder: the CRC kept as reads land catches a flipped byte at any position, however the reads split', () => {
  const { stream, expected } = sampleStream(120_000);
  const firstData = stream.indexOf(Buffer.from([0x54, 0x43, 0x44, 0x50, 1, FrameType.DATA]));
  const length = stream.readUInt32LE(firstData + 12);
  fc.assert(
    fc.property(fc.integer({ min: 0, max: length - 1 }), fc.integer({ min: 1, max: 40_000 }), (flip, maxRead) => {
      const bad = Buffer.from(stream);
      bad[firstData + HEADER_BYTES + flip]! ^= 0x01;
      const seen: Seen[] = [];
      const d = decoderInto(new Uint8Array(expected.length), seen);
      for (let at = 0; at < bad.length;) {
        const buf = d.readBuffer();
        const n = Math.min(buf.length, bad.length - at, maxRead);
        buf.set(bad.subarray(at, at + n));
        d.commit(n);
        at += n;
      }
      const data = seen.filter((s) => s.type === FrameType.DATA).map((s) => s.ok);
      assert.equal(data[0], false);
      assert.ok(data.slice(1).every((ok) => ok));
    }),
    { numRuns: 100 },
  );
});
