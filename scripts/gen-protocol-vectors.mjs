// Writes test/fixtures/protocol/vectors.json from the built TypeScript encoder (dist/src/protocol/): byte
// streams of data-plane frames, the frames each decodes to, and the error code a corrupt one must give. The
// TypeScript decoder (test/contract/protocol-vectors.test.ts) and the Python one
// (python/tests/test_protocol_vectors.py) both check every vector, whole, byte by byte and at random splits.
// Run after changing the wire format (`npm run build` first).
//
// A harness decodes a vector's `hex` with the vector's limits (default 16 MiB each) and a sink that accepts DATA
// only inside `range` when one is given; a DATA frame whose CRC32C does not match is `TC_ERR_CHECKSUM` and is not
// counted; a stream that ends inside a frame is `TC_ERR_UNAVAILABLE` (the connection closed mid-frame).
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
/* eslint-disable @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-unsafe-return -- built modules, untyped here */
const frames = await import(join(root, 'dist', 'src', 'protocol', 'frames.js'));
const messages = await import(join(root, 'dist', 'src', 'protocol', 'messages.js'));
const { encodeControl, encodeDataHeader, encodeHeader, FrameType, crc32c } = frames;

/** Deterministic bytes. */
function pattern(length, seed) {
  const b = Buffer.alloc(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** A frame as a vector lists it: the header fields, the payload (hex) and, for control frames, its JSON. */
function described(buf) {
  const type = buf.readUInt8(5);
  const length = buf.readUInt32LE(12);
  const payload = buf.subarray(32, 32 + length);
  const f = {
    type,
    requestId: buf.readUInt32LE(8),
    length,
    offset: Number(buf.readBigUInt64LE(16)),
    crc: buf.readUInt32LE(24),
    payloadHex: payload.toString('hex'),
  };
  if (type !== FrameType.DATA && length > 0) f.json = JSON.parse(payload.toString('utf8'));
  return f;
}

function dataFrame(requestId, offset, payload) {
  return Buffer.concat([encodeDataHeader(requestId, offset, payload), payload]);
}

/** A valid vector: every frame decodes. */
function valid(name, parts, extra = {}) {
  return { name, hex: Buffer.concat(parts).toString('hex'), frames: parts.map(described), error: null, ...extra };
}

/** A corrupt vector: `good` frames decode, then `bad` bytes fail with `error`. */
function corrupt(name, good, bad, error, extra = {}) {
  return { name, hex: Buffer.concat([...good, bad]).toString('hex'), frames: good.map(described), error, ...extra };
}

const hello = messages.Hello.encode(0, { version: 1, token: 'secret-token', client: 'tensorcast-node/0.1.0' });
const welcome = messages.Welcome.encode(0, { daemonId: 'd-1', version: 1, frameBytes: 4 << 20 });
const load = messages.Load.encode(7, {
  artifactId: 'sha256:abc',
  view: { tp: { size: 2, rank: 1 } },
  viewId: 'v1',
  start: 4096,
  end: 4096 + 44_000,
  credit: 64 << 20,
  timeoutMs: 30_000,
  route: 'auto',
});
const d1 = dataFrame(7, 4096, pattern(20_000, 1));
const d2 = dataFrame(7, 24_096, pattern(24_000, 2));
const end = messages.End.encode(7, { bytes: 44_000, route: 'resident_view', source: 'replica_hit', viewId: 'v1' });
const credit = encodeHeader(FrameType.CREDIT, 7, 0, 4 << 20);
const error = messages.ErrorMessage.encode(9, { code: 'TC_ERR_NOT_FOUND', message: 'no artifact', retryable: false, reason: 'not_found' });
const put = messages.Put.encode(3, { key: 'ns/obj', size: 5, ifVersion: null, ttlMs: 1000, eager: 5 });
const get = messages.Get.encode(4, { key: 'ns/obj', credit: 64 << 20, expectBytes: 5 });
const info = messages.Info.encode(4, { size: 5, version: 42 });
const objData = dataFrame(4, 0, Buffer.from('hello'));
const done = messages.Done.encode(4, { bytes: 5, version: 42 });
const cancel = encodeHeader(FrameType.CANCEL, 7, 0, 0);
const unicode = encodeControl(FrameType.ERROR, 1, { code: 'TC_ERR_INTERNAL', message: 'naïve — ünïcode ✓ 🚀' });
const emptyData = Buffer.concat([encodeDataHeader(8, 100, Buffer.alloc(0))]);
const bigCredit = encodeHeader(FrameType.CREDIT, 0xffffffff, 0, 2 ** 53 - 1);

/** A header with its fields changed (magic, version, type, length, offset, crc), no payload. */
function header(fields) {
  const b = encodeHeader(fields.type ?? FrameType.CREDIT, fields.requestId ?? 1, fields.length ?? 0, 0, fields.crc ?? 0);
  if (fields.magic !== undefined) b.writeUInt32LE(fields.magic, 0);
  if (fields.version !== undefined) b.writeUInt8(fields.version, 4);
  if (fields.offset !== undefined) b.writeBigUInt64LE(fields.offset, 16);
  return b;
}

const badCrcControl = Buffer.from(messages.Done.encode(4, { bytes: 5, version: 42 }));
badCrcControl.writeUInt32LE((badCrcControl.readUInt32LE(24) ^ 1) >>> 0, 24);
const badCrcData = Buffer.from(dataFrame(7, 24_096, pattern(24_000, 2)));
badCrcData[40] ^= 0x80;
const badMagic = Buffer.from(hello);
badMagic.writeUInt32LE(0x50444355, 0);

const vectors = [
  valid('hello-welcome', [hello, welcome]),
  valid('load-stream', [load, d1, credit, d2, end], { range: [4096, 48_096] }),
  valid('error-frame', [error]),
  valid('object-put-get', [put, dataFrame(3, 0, Buffer.from('hello')), get, info, objData, done]),
  valid('cancel-empty-data-big-credit', [cancel, emptyData, bigCredit]),
  valid('unicode-json', [unicode]),
  valid('hello-phase-limit-ok', [hello], { limits: { maxControlBytes: 8192, maxDataBytes: 8192 } }),
  corrupt('bad-magic', [hello], badMagic, 'TC_ERR_PROTOCOL'),
  corrupt('bad-version', [], header({ version: 2 }), 'TC_ERR_PROTOCOL'),
  corrupt('unknown-type-15', [welcome], header({ type: 15 }), 'TC_ERR_PROTOCOL'),
  corrupt('unknown-type-0', [], header({ type: 0 }), 'TC_ERR_PROTOCOL'),
  corrupt('oversized-control', [], header({ type: FrameType.END, length: (16 << 20) + 1 }), 'TC_ERR_PROTOCOL'),
  corrupt('oversized-data', [], header({ type: FrameType.DATA, length: (16 << 20) + 1 }), 'TC_ERR_PROTOCOL'),
  corrupt('hello-phase-oversized', [], encodeControl(FrameType.HELLO, 0, { version: 1, token: 'x'.repeat(9000) }), 'TC_ERR_PROTOCOL', {
    limits: { maxControlBytes: 8192, maxDataBytes: 8192 },
  }),
  corrupt('offset-beyond-2^53', [], header({ type: FrameType.CREDIT, offset: 2n ** 53n }), 'TC_ERR_PROTOCOL'),
  corrupt('control-crc-mismatch', [get, info], badCrcControl, 'TC_ERR_PROTOCOL'),
  corrupt('data-crc-mismatch', [load, d1], badCrcData, 'TC_ERR_CHECKSUM', { range: [4096, 48_096] }),
  corrupt('data-outside-range', [load], dataFrame(7, 0, pattern(100, 3)), 'TC_ERR_PROTOCOL', { range: [4096, 48_096] }),
  corrupt('truncated-header', [hello], welcome.subarray(0, 20), 'TC_ERR_UNAVAILABLE'),
  corrupt('truncated-control-payload', [hello], welcome.subarray(0, welcome.length - 3), 'TC_ERR_UNAVAILABLE'),
  corrupt('truncated-data-payload', [load, d1], d2.subarray(0, 32 + 10_000), 'TC_ERR_UNAVAILABLE', { range: [4096, 48_096] }),
];

// Sanity: the CRC helper agrees with a known value (RFC 3720 "123456789" -> 0xe3069283).
if (crc32c(Buffer.from('123456789')) !== 0xe3069283) throw new Error('crc32c self-check failed');

const out = {
  comment:
    'Generated by scripts/gen-protocol-vectors.mjs from the TypeScript encoder; do not edit. See that script for how a harness decodes a vector.',
  vectors,
};
writeFileSync(join(root, 'test', 'fixtures', 'protocol', 'vectors.json'), JSON.stringify(out, null, 1) + '\n');
console.log(`wrote ${vectors.length} vectors`);
