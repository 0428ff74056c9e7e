// The shared data-plane vectors (test/fixtures/protocol/vectors.json, written by scripts/gen-protocol-vectors.mjs
// from this encoder) through the TypeScript FrameDecoder: whole, byte by byte and at seeded random splits, and
// through the socket path (readBuffer/commit). python/tests/test_protocol_vectors.py runs the Python decoder over
// the same file: both languages must decode every vector to the same frames and fail corrupt ones with the
// same code.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { isTensorcastError, tcError } from '../../src/core/errors.js';
import { FrameDecoder } from '../../src/protocol/frame-decoder.js';
import { FrameType, HEADER_BYTES } from '../../src/protocol/frames.js';
import { REPO_ROOT } from '../helpers/cli.js';

interface VectorFrame {
  type: number;
  requestId: number;
  length: number;
  offset: number;
  crc: number;
  payloadHex: string;
  json?: unknown;
}

interface Vector {
  name: string;
  hex: string;
  frames: VectorFrame[];
  error: string | null;
  range?: [number, number];
  limits?: { maxControlBytes: number; maxDataBytes: number };
}

const { vectors } = JSON.parse(readFileSync(join(REPO_ROOT, 'test', 'fixtures', 'protocol', 'vectors.json'), 'utf8')) as {
  vectors: Vector[];
};

/** Decodes `stream` fed as `chunks` (or through readBuffer/commit when `socketLike`): the frames and the error code. */
function run(v: Vector, chunks: Uint8Array[], socketLike = false): { frames: VectorFrame[]; error: string | null } {
  const frames: VectorFrame[] = [];
  let consumed = 0;
  const decoder = new FrameDecoder({
    ...(v.limits ?? {}),
    sink: (h) =>
      v.range !== undefined && (h.offset < v.range[0] || h.offset + h.length > v.range[1]) ? undefined : new Uint8Array(h.length),
    onFrame: (h, payload, ok) => {
      if (!ok) throw tcError('TC_ERR_CHECKSUM', `checksum mismatch at offset ${h.offset}`);
      const body = Buffer.from(payload);
      const f: VectorFrame = { ...h, payloadHex: body.toString('hex') };
      if (h.type !== FrameType.DATA && h.length > 0) f.json = JSON.parse(body.toString('utf8'));
      frames.push(f);
      consumed += HEADER_BYTES + h.length;
    },
  });
  let error: string | null = null;
  try {
    for (const chunk of chunks) {
      if (!socketLike) {
        decoder.push(chunk);
        continue;
      }
      let at = 0;
      while (at < chunk.length) {
        const target = decoder.readBuffer();
        const n = Math.min(target.length, chunk.length - at);
        target.set(chunk.subarray(at, at + n));
        decoder.commit(n);
        at += n;
      }
    }
  } catch (e) {
    assert.ok(isTensorcastError(e), `${v.name}: not a tensorcast error: ${String(e)}`);
    error = e.code;
  }
  const total = chunks.reduce((s, c) => s + c.length, 0);
  if (error === null && consumed < total) error = 'TC_ERR_UNAVAILABLE';
  return { frames, error };
}

/** mulberry32: a small seeded PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomSplits(stream: Buffer, random: () => number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < stream.length;) {
    const n = 1 + Math.floor(random() * (random() < 0.5 ? 64 : 40_000));
    chunks.push(stream.subarray(at, at + n));
    at += n;
  }
  return chunks;
}

test('the vector file covers every frame type and every failure', () => {
  const types = new Set(vectors.flatMap((v) => v.frames.map((f) => f.type)));
  for (const t of Object.values(FrameType))
    if (t !== FrameType.SAPPEND && t !== FrameType.SREAD) assert.ok(types.has(t), `frame type ${t}`);
  const errors = new Set(vectors.map((v) => v.error));
  for (const e of ['TC_ERR_PROTOCOL', 'TC_ERR_CHECKSUM', 'TC_ERR_UNAVAILABLE', null]) assert.ok(errors.has(e), String(e));
});

for (const v of vectors) {
  test(`vector ${v.name}: whole, byte by byte, socket reads, random splits`, () => {
    const stream = Buffer.from(v.hex, 'hex');
    const expected = { frames: v.frames, error: v.error };
    assert.deepEqual(run(v, [stream]), expected, 'whole');
    assert.deepEqual(run(v, [stream], true), expected, 'whole, through readBuffer/commit');
    const bytes: Uint8Array[] = [];
    for (let i = 0; i < stream.length; i++) bytes.push(stream.subarray(i, i + 1));
    assert.deepEqual(run(v, bytes), expected, 'byte by byte');
    const seed = (Date.now() ^ (Math.random() * 0x7fffffff)) >>> 0;
    const random = prng(seed);
    for (let round = 0; round < 20; round++) {
      const chunks = randomSplits(stream, random);
      assert.deepEqual(run(v, chunks, round % 2 === 1), expected, `random splits, seed ${seed}, round ${round}`);
    }
  });
}
