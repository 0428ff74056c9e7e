import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { isTensorcastError } from '../core/errors.js';
import { dtypeBits } from '../core/dtypes.js';
import { JsonReader } from './json-reader.js';
import { parseSafetensorsHeader } from './safetensors-header.js';
import { serializeSafetensors } from './safetensors-writer.js';
import { parseShardedIndex } from './sharded-index.js';

/** Reads any JSON value into plain JS (numbers as their raw text) through the pull reader. */
function readValue(r: JsonReader): unknown {
  switch (r.peekKind()) {
    case 'object': {
      const out: [string, unknown][] = [];
      r.beginObject();
      for (let k = r.nextKey(); k !== undefined; k = r.nextKey()) out.push([k, readValue(r)]);
      return { obj: out };
    }
    case 'array': {
      const out: unknown[] = [];
      r.beginArray();
      while (r.nextItem()) out.push(readValue(r));
      return out;
    }
    case 'string':
      return r.readString();
    case 'number':
      return { num: r.readNumber().raw };
    case 'boolean':
    case 'null':
    case 'end':
    case 'invalid':
      return r.readLiteral();
  }
}

/** Feeds `bytes` in pieces cut at `cuts`. */
function chunked(bytes: Uint8Array, cuts: number[]): { first: Uint8Array; refill: () => Uint8Array | null } {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const pieces: Uint8Array[] = [];
  let at = 0;
  for (const p of [...points, bytes.length]) {
    if (p > at) pieces.push(bytes.slice(at, p));
    at = Math.max(at, p);
  }
  let i = 0;
  return { first: pieces[i++] ?? new Uint8Array(0), refill: () => pieces[i++] ?? null };
}

function parseAll(bytes: Uint8Array, cuts: number[] = []): unknown {
  const { first, refill } = chunked(bytes, cuts);
  const r = new JsonReader(first, { what: 'x', errorCode: 'TC_ERR_FORMAT_INVALID_JSON', refill });
  const v = readValue(r);
  r.end();
  return v;
}

const SAMPLE = Buffer.from(
  '{"a\\u00e9\\ud83d\\ude00":[1,-2.5e+3,true,false,null,"x\\"y\\\\z\\/\\b\\f\\n\\r\\t"],"é😀":{"k":0},"n":12345678901234567890}',
  'utf8',
);

test('json reader: byte-by-byte gives the same result as whole', () => {
  const whole = parseAll(SAMPLE);
  const cuts = Array.from({ length: SAMPLE.length }, (_, i) => i);
  assert.deepEqual(parseAll(SAMPLE, cuts), whole);
  assert.deepEqual(whole, {
    obj: [
      ['aé😀', [{ num: '1' }, { num: '-2.5e+3' }, true, false, null, 'x"y\\z/\b\f\n\r\t']],
      ['é😀', { obj: [['k', { num: '0' }]] }],
      ['n', { num: '12345678901234567890' }],
    ],
  });
});

test('json reader: agrees with JSON.parse on random documents split at random points', () => {
  fc.assert(
    fc.property(fc.json({ maxDepth: 4 }), fc.array(fc.nat(), { maxLength: 20 }), (text, cuts) => {
      const bytes = Buffer.from(text, 'utf8');
      const toPlain = (v: unknown): unknown => {
        if (Array.isArray(v)) return v.map(toPlain);
        if (v !== null && typeof v === 'object') {
          const o = v as { obj?: [string, unknown][]; num?: string };
          if (o.num !== undefined) return Number(o.num);
          return Object.fromEntries(o.obj!.map(([k, x]) => [k, toPlain(x)]));
        }
        return v;
      };
      assert.deepEqual(toPlain(parseAll(bytes, cuts)), JSON.parse(text));
    }),
    { numRuns: 300 },
  );
});

test('json reader: random bytes only ever give a coded error', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), fc.array(fc.nat(), { maxLength: 8 }), (bytes, cuts) => {
      try {
        parseAll(bytes, cuts);
      } catch (error) {
        assert.ok(isTensorcastError(error), String(error));
        assert.match(error.code, /^TC_ERR_FORMAT_(INVALID_JSON|INVALID_UTF8)$/);
      }
    }),
    { numRuns: 2000 },
  );
});

test('safetensors header: random mutations of valid files never crash and only give format errors', () => {
  const valid = serializeSafetensors(
    [
      { name: 'a', dtype: 'F32', shape: [2, 3], data: new Uint8Array(24) },
      { name: 'b.weight', dtype: 'BF16', shape: [4], data: new Uint8Array(8) },
      { name: 'c', dtype: 'F4', shape: [4], data: new Uint8Array(2) },
    ],
    { metadata: { format: 'pt' } },
  );
  fc.assert(
    fc.property(
      fc.array(fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 6 }),
      fc.integer({ min: -8, max: 8 }),
      (edits, lengthDelta) => {
        const bytes = Buffer.from(valid);
        for (const e of edits) bytes[e.at % bytes.length] = e.byte;
        const file = lengthDelta >= 0 ? Buffer.concat([bytes, Buffer.alloc(lengthDelta)]) : bytes.subarray(0, bytes.length + lengthDelta);
        let h: ReturnType<typeof parseSafetensorsHeader>;
        try {
          h = parseSafetensorsHeader(file, file.length, 'm.safetensors');
        } catch (error) {
          assert.ok(isTensorcastError(error), String(error));
          assert.equal(error.category, 'Format', `${error.code}: ${error.message}`);
          return;
        }
        // Accepted: an independent reading of the same bytes (JSON.parse, sizes from shapes) must agree.
        assertDescribesFile(h, file);
      },
    ),
    { numRuns: 3000 },
  );
});

/** Checks an accepted header against JSON.parse of its bytes and the safetensors layout rules. */
function assertDescribesFile(h: ReturnType<typeof parseSafetensorsHeader>, file: Buffer): void {
  const n = Number(file.readBigUInt64LE(0));
  assert.equal(h.dataStart, 8 + n);
  const json = JSON.parse(file.subarray(8, 8 + n).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const entries = Object.entries(json).filter(([k]) => k !== '__metadata__');
  assert.deepEqual(
    h.tensors.map((t) => [t.name, t.dtype, [...t.shape], t.begin, t.end]).sort(),
    entries.map(([k, v]) => [k, v.dtype, v.shape, v.data_offsets[0], v.data_offsets[1]]).sort(),
  );
  let at = 0;
  for (const t of [...h.tensors].sort((a, b) => a.begin - b.begin)) {
    assert.equal(t.begin, at, `${t.name}: no gap or overlap`);
    assert.equal(t.end - t.begin, Math.ceil((t.shape.reduce((a, b) => a * b, 1) * dtypeBits(t.dtype)) / 8), `${t.name}: size from shape`);
    at = t.end;
  }
  assert.equal(h.dataStart + at, file.length, 'the tensors end where the file ends');
}

test('safetensors header: mutations that must be rejected give their specific code', () => {
  const valid = Buffer.from(
    serializeSafetensors(
      [
        { name: 'a', dtype: 'F32', shape: [2, 3], data: new Uint8Array(24) },
        { name: 'b.weight', dtype: 'BF16', shape: [4], data: new Uint8Array(8) },
        { name: 'c', dtype: 'F4', shape: [4], data: new Uint8Array(2) },
      ],
      { metadata: { format: 'pt' } },
    ),
  );
  const edit = (from: string, to: string): Buffer => {
    const text = valid.toString('latin1');
    assert.ok(text.includes(from), from);
    return Buffer.from(text.replace(from, to), 'latin1');
  };
  const withLength = (n: number): Buffer => {
    const b = Buffer.from(valid);
    b.writeBigUInt64LE(BigInt(n), 0);
    return b;
  };
  const cases: [string, Buffer, string][] = [
    ['header byte that breaks JSON', edit('{"__metadata__"', 'x"__metadata__"'), 'TC_ERR_FORMAT_INVALID_JSON'],
    ['a quote turned into a space', edit('"dtype"', '"dtype '), 'TC_ERR_FORMAT_INVALID_JSON'],
    ['an offset past the end', edit('[24,32]', '[24,99]'), 'TC_ERR_FORMAT_SIZE_MISMATCH'],
    ['shape does not match the size', edit('[2,3]', '[2,4]'), 'TC_ERR_FORMAT_SIZE_MISMATCH'],
    ['dtype does not match the size', edit('"F32"', '"F64"'), 'TC_ERR_FORMAT_SIZE_MISMATCH'],
    ['unknown dtype', edit('"F32"', '"F31"'), 'TC_ERR_FORMAT_UNKNOWN_DTYPE'],
    ['overlapping tensors', edit('[24,32]', '[16,24]'), 'TC_ERR_FORMAT_INVALID_OFFSET'],
    ['a file one byte short', valid.subarray(0, valid.length - 1), 'TC_ERR_FORMAT_INCOMPLETE_BUFFER'],
    ['a file one byte long', Buffer.concat([valid, Buffer.alloc(1)]), 'TC_ERR_FORMAT_INCOMPLETE_BUFFER'],
    ['a header length past the file', withLength(valid.length), 'TC_ERR_FORMAT_INVALID_HEADER_LENGTH'],
  ];
  assertDescribesFile(parseSafetensorsHeader(valid, valid.length, 'ok'), valid);
  for (const [what, file, code] of cases) {
    assert.throws(() => parseSafetensorsHeader(file, file.length, 'm.safetensors'), { code }, what);
  }
});

test('sharded index: streamed in tiny chunks equals whole, duplicates and bad shard names rejected', () => {
  const entries = Array.from({ length: 2000 }, (_, i) => `"layer.${i}.weight":"model-0000${(i % 3) + 1}-of-00003.safetensors"`);
  const text = Buffer.from(`{"metadata":{"total_size":123,"other":[1,{"x":2}]},"weight_map":{${entries.join(',')}}}`);
  const whole = parseShardedIndex(text, 'idx');
  const { first, refill } = chunked(
    text,
    Array.from({ length: 400 }, (_, i) => i * 97),
  );
  const streamed = parseShardedIndex(first, 'idx', refill);
  assert.equal(whole.totalSize, 123);
  assert.deepEqual([...streamed.weightMap], [...whole.weightMap]);
  assert.deepEqual(streamed.shards, [
    'model-00001-of-00003.safetensors',
    'model-00002-of-00003.safetensors',
    'model-00003-of-00003.safetensors',
  ]);
  const code = (s: string): string => {
    try {
      parseShardedIndex(Buffer.from(s), 'idx');
      return 'ok';
    } catch (error) {
      return isTensorcastError(error) ? error.code : String(error);
    }
  };
  assert.equal(code('{"weight_map":{"a":"x.safetensors","a":"y.safetensors"}}'), 'TC_ERR_FORMAT_DUPLICATE_NAME');
  assert.equal(code('{"weight_map":{"a":"../x.safetensors"}}'), 'TC_ERR_FORMAT_INDEX_INVALID');
  assert.equal(code('{"weight_map":{"a":"/etc/passwd"}}'), 'TC_ERR_FORMAT_INDEX_INVALID');
  assert.equal(code('{"weight_map":{"a":1}}'), 'TC_ERR_FORMAT_INDEX_INVALID');
  assert.equal(code('{"metadata":{}}'), 'TC_ERR_FORMAT_INDEX_INVALID');
  assert.equal(code('{"weight_map":{}} x'), 'TC_ERR_FORMAT_INDEX_INVALID');
});
