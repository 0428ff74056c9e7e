// The behaviour every Connector must have, run on each backend against a real server (a directory, Redis,
// an S3-compatible server). Each backend's test file calls runConnectorContract with a factory of fresh,
// empty connector URLs (or undefined after skipping the test: a service is missing).

import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { mapLimit } from '../../src/core/async.js';
import type { Connector, ObjectInfo } from '../../src/connectors/connector.js';
import type { ConnectorOptions } from '../../src/connectors/connector-options.js';
import { createConnector } from '../../src/connectors/create-connector.js';

/** Options of {@link runConnectorContract}. */
export interface ConnectorContractOptions {
  /** A connector URL over a fresh, empty namespace for `t`, or undefined after skipping `t`. */
  readonly freshUrl: (t: TestContext) => Promise<string | undefined>;
  /** A URL of the same kind whose container (directory, bucket) does not exist; unset when the backend has none. */
  readonly missingContainerUrl?: (t: TestContext) => Promise<string | undefined>;
  /** Whether the server makes a rewrite visible to readers atomically (real S3 does; s3rver does not). */
  readonly atomicRewrites: boolean;
}

/** The chunk (Redis) or part (S3) size of the tests: small, so that modest objects span many of them. */
export const TEST_CHUNK_BYTES = 64 * 1024;

/** Deterministic bytes: a different sequence per seed, no period at chunk sizes. */
export function pattern(length: number, seed = 1): Buffer {
  const out = Buffer.alloc(length);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** `bytes` as a stream of pieces of `pieceBytes` (fresh copies, as a file reader would yield). */
export async function* pieces(bytes: Uint8Array, pieceBytes: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += pieceBytes) {
    await Promise.resolve();
    yield Buffer.from(bytes.subarray(at, Math.min(bytes.length, at + pieceBytes)));
  }
}

/** Reads `length` bytes at `offset` into a fresh buffer. */
export async function read(c: Connector, key: string, offset: number, length: number, etag?: string): Promise<Buffer> {
  const dest = Buffer.alloc(length);
  await c.readInto(key, offset, dest, etag === undefined ? {} : { etag });
  return dest;
}

/** Asserts that `promise` rejects with a tensorcast error of `code` (and, optionally, a message matching `message`). */
export async function rejectsWith(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (e: Error & { code?: string }) => {
    assert.equal(e.code, code, `expected ${code}, got ${e.code}: ${e.message}`);
    if (message !== undefined) assert.match(e.message, message);
    return true;
  });
}

const keysOf = (infos: readonly ObjectInfo[]): string[] => infos.map((i) => i.key);

/** Registers the contract tests for one backend. */
export function runConnectorContract(name: string, options: ConnectorContractOptions): void {
  const open = async (t: TestContext, extra: ConnectorOptions = {}): Promise<Connector | undefined> => {
    const url = await options.freshUrl(t);
    if (url === undefined) return undefined;
    const c = await createConnector(url, { chunkBytes: TEST_CHUNK_BYTES, ...extra });
    t.after(() => c.close());
    return c;
  };
  const withConnector = (title: string, fn: (c: Connector, t: TestContext) => Promise<void>): void => {
    test(`connector contract (${name}): ${title}`, async (t) => {
      const c = await open(t);
      if (c === undefined) return;
      await fn(c, t);
    });
  };

  withConnector('write, list, stat and ranged reads agree', async (c) => {
    const a = pattern(5000, 1);
    const b = pattern(1, 2);
    const infoA = await c.write('dir/a.bin', a);
    const infoB = await c.write('dir/b.bin', b);
    const infoE = await c.write('empty', new Uint8Array(0));
    assert.deepEqual([infoA.key, infoA.size, infoB.size, infoE.size], ['dir/a.bin', 5000, 1, 0]);
    assert.notEqual(infoA.etag, '');
    assert.deepEqual(await c.list(), [infoA, infoB, infoE]);
    assert.deepEqual(await c.list(''), [infoA, infoB, infoE]);
    assert.deepEqual(await c.list('dir/'), [infoA, infoB]);
    assert.deepEqual(await c.list('dir/a'), [infoA]);
    assert.deepEqual(await c.list('di'), [infoA, infoB]);
    assert.deepEqual(await c.list('nothing/'), []);
    assert.deepEqual(await c.stat('dir/a.bin'), infoA);
    assert.deepEqual(await c.stat('empty'), infoE);
    for (const [offset, length] of [
      [0, 5000],
      [0, 1],
      [4999, 1],
      [1234, 2345],
      [5000, 0],
      [0, 0],
    ] as const) {
      assert.deepEqual(await read(c, 'dir/a.bin', offset, length), a.subarray(offset, offset + length), `${offset}+${length}`);
    }
    assert.deepEqual(await read(c, 'dir/b.bin', 0, 1), b);
    assert.deepEqual(await read(c, 'dir/a.bin', 10, 20, infoA.etag), a.subarray(10, 30));
    assert.deepEqual(await read(c, 'empty', 0, 0), Buffer.alloc(0));
    // A read into a view of a larger buffer touches only the view.
    const big = Buffer.alloc(100, 0xee);
    await c.readInto('dir/a.bin', 100, big.subarray(10, 90));
    assert.deepEqual(big.subarray(10, 90), a.subarray(100, 180));
    assert.deepEqual([big[9], big[90]], [0xee, 0xee]);
  });

  withConnector('reads past the end are TC_ERR_SHORT_READ; missing keys TC_ERR_NOT_FOUND', async (c) => {
    await c.write('obj', pattern(1000, 3));
    await rejectsWith(read(c, 'obj', 999, 2), 'TC_ERR_SHORT_READ', /1000 bytes/);
    await rejectsWith(read(c, 'obj', 0, 1001), 'TC_ERR_SHORT_READ');
    await rejectsWith(read(c, 'obj', 1000, 1), 'TC_ERR_SHORT_READ');
    await rejectsWith(read(c, 'obj', 5000, 10), 'TC_ERR_SHORT_READ');
    await rejectsWith(read(c, 'obj', 1001, 0), 'TC_ERR_SHORT_READ');
    await rejectsWith(read(c, 'missing', 0, 1), 'TC_ERR_NOT_FOUND', /missing/);
    await rejectsWith(read(c, 'missing', 0, 0), 'TC_ERR_NOT_FOUND');
    await rejectsWith(c.stat('missing'), 'TC_ERR_NOT_FOUND', /missing/);
    await rejectsWith(c.stat('ob'), 'TC_ERR_NOT_FOUND');
  });

  withConnector('bad keys, prefixes and ranges are TC_ERR_INVALID_ARGUMENT, and nothing is written', async (c) => {
    for (const key of ['', '/abs', '../up', 'a/../b', 'a/./b', 'a//b', 'trailing/', '.', 'nul\u0000', 'x'.repeat(1025)]) {
      await rejectsWith(c.write(key, pattern(3)), 'TC_ERR_INVALID_ARGUMENT');
      await rejectsWith(c.stat(key), 'TC_ERR_INVALID_ARGUMENT');
      await rejectsWith(read(c, key, 0, 1), 'TC_ERR_INVALID_ARGUMENT');
      await rejectsWith(c.delete(key), 'TC_ERR_INVALID_ARGUMENT');
    }
    await rejectsWith(c.list('../'), 'TC_ERR_INVALID_ARGUMENT');
    await rejectsWith(c.list('/x'), 'TC_ERR_INVALID_ARGUMENT');
    await c.write('ok', pattern(10));
    await rejectsWith(c.readInto('ok', -1, Buffer.alloc(1)), 'TC_ERR_INVALID_ARGUMENT');
    await rejectsWith(c.readInto('ok', 1.5, Buffer.alloc(1)), 'TC_ERR_INVALID_ARGUMENT');
    await rejectsWith(c.write('sized', pattern(10), { size: 11 }), 'TC_ERR_INVALID_ARGUMENT');
    await rejectsWith(c.write('sized', pieces(pattern(10), 3), { size: 9 }), 'TC_ERR_INVALID_ARGUMENT');
    assert.deepEqual(keysOf(await c.list()), ['ok']);
  });

  withConnector('large objects span many chunks; every range reads back exactly', async (c) => {
    const size = 10 * TEST_CHUNK_BYTES + 123;
    const data = pattern(size, 4);
    const progress: number[] = [];
    const info = await c.write('large/stream.bin', pieces(data, 77_777), { size, onBytes: (n) => progress.push(n) });
    assert.equal(info.size, size);
    assert.equal(
      progress.reduce((a, b) => a + b, 0),
      size,
    );
    const fromBuffer = await c.write('large/buffer.bin', data);
    assert.deepEqual(await c.stat('large/stream.bin'), info);
    assert.deepEqual(await read(c, 'large/stream.bin', 0, size), data);
    assert.deepEqual(await read(c, 'large/buffer.bin', 0, size, fromBuffer.etag), data);
    // Ranges on and around chunk boundaries, and a seeded spread of others.
    const ranges: Array<[number, number]> = [
      [TEST_CHUNK_BYTES - 1, 2],
      [TEST_CHUNK_BYTES, TEST_CHUNK_BYTES],
      [TEST_CHUNK_BYTES - 5, 3 * TEST_CHUNK_BYTES + 10],
      [size - 1, 1],
      [size - 200, 200],
    ];
    const r = pattern(64, 9);
    for (let i = 0; i < 16; i++) {
      const offset = r.readUInt32LE((i * 4) % 60) % size;
      ranges.push([offset, (r.readUInt16LE((i * 2) % 62) * 13) % (size - offset)]);
    }
    for (const [offset, length] of ranges) {
      assert.deepEqual(await read(c, 'large/stream.bin', offset, length), data.subarray(offset, offset + length), `${offset}+${length}`);
    }
    await rejectsWith(read(c, 'large/stream.bin', size - 10, 11), 'TC_ERR_SHORT_READ');
  });

  withConnector('a rewrite replaces the object whole: a reader with the old etag gets TC_ERR_SOURCE_CHANGED', async (c) => {
    const v1 = pattern(3 * TEST_CHUNK_BYTES + 5, 5);
    const v2 = pattern(2 * TEST_CHUNK_BYTES + 9, 6);
    const first = await c.write('model.safetensors', v1);
    const second = await c.write('model.safetensors', pieces(v2, 50_000));
    assert.notEqual(first.etag, second.etag);
    assert.deepEqual(await c.stat('model.safetensors'), second);
    assert.deepEqual(await c.list(), [second]);
    await rejectsWith(read(c, 'model.safetensors', 0, 10, first.etag), 'TC_ERR_SOURCE_CHANGED');
    await rejectsWith(read(c, 'model.safetensors', TEST_CHUNK_BYTES, TEST_CHUNK_BYTES, first.etag), 'TC_ERR_SOURCE_CHANGED');
    assert.deepEqual(await read(c, 'model.safetensors', 0, v2.length, second.etag), v2);
    // The same bytes written again are a new version too (or at least not an older one's).
    const third = await c.write('model.safetensors', v1);
    await rejectsWith(read(c, 'model.safetensors', 0, 10, second.etag), 'TC_ERR_SOURCE_CHANGED');
    assert.deepEqual(await read(c, 'model.safetensors', 0, v1.length, third.etag), v1);
  });

  withConnector('a write that fails part-way leaves the previous object (or none), never a partial one', async (c) => {
    const old = pattern(2 * TEST_CHUNK_BYTES, 7);
    const info = await c.write('kept', old);
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield pattern(TEST_CHUNK_BYTES + 17, 8);
      await Promise.resolve();
      throw new Error('producer failed');
    }
    await assert.rejects(c.write('kept', failing()), /producer failed/);
    await assert.rejects(c.write('fresh', failing()), /producer failed/);
    assert.deepEqual(await c.list(), [info]);
    assert.deepEqual(await read(c, 'kept', 0, old.length, info.etag), old);
    await rejectsWith(c.stat('fresh'), 'TC_ERR_NOT_FOUND');
  });

  withConnector('delete removes the object; deleting a missing one is no error', async (c) => {
    await c.write('a', pattern(3 * TEST_CHUNK_BYTES, 1));
    await c.write('b', pattern(10, 2));
    await c.delete('a');
    await c.delete('a');
    await c.delete('never-there');
    await rejectsWith(c.stat('a'), 'TC_ERR_NOT_FOUND');
    await rejectsWith(read(c, 'a', 0, 1), 'TC_ERR_NOT_FOUND');
    assert.deepEqual(keysOf(await c.list()), ['b']);
    // Written again after a delete, the object is new and whole.
    const again = pattern(TEST_CHUNK_BYTES + 1, 3);
    await c.write('a', again);
    assert.deepEqual(await read(c, 'a', 0, again.length), again);
  });

  withConnector('a listing of 1100 keys is complete and ordered', async (c) => {
    const keys = Array.from({ length: 1100 }, (_, i) => `many/${String(i).padStart(5, '0')}.bin`);
    await mapLimit(keys, 16, (key, i) => c.write(key, pattern(1 + (i % 7), i)));
    await c.write('other/x', pattern(1));
    const listed = await c.list('many/');
    assert.deepEqual(keysOf(listed), keys);
    assert.deepEqual(
      listed.map((o) => o.size),
      keys.map((_, i) => 1 + (i % 7)),
    );
    assert.equal((await c.list()).length, 1101);
    assert.deepEqual(keysOf(await c.list('many/0105')), keysOf(listed).slice(1050, 1060));
  });

  withConnector('keys with odd characters round-trip through write, list, stat and read', async (c) => {
    const keys = [
      'sp ace/ü-ñ é.bin',
      'plus+and&eq=1.txt',
      'pct%25/raw%.bin',
      'glob*q?[br]{x}.bin',
      'hash#tag~tilde',
      `quote'dq"back\\slash`,
      'emoji-😀/日本語.json',
      'colon:semi;comma,(paren)!$@',
      '.hidden/.file',
      '-dash/_under',
    ];
    const written = await mapLimit(keys, 4, (key, i) => c.write(key, pattern(100 + i, i)));
    assert.deepEqual(
      keysOf(await c.list()),
      [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))),
    );
    for (const [i, key] of keys.entries()) {
      assert.deepEqual(await c.stat(key), written[i]);
      assert.deepEqual(await read(c, key, 1, 99), pattern(100 + i, i).subarray(1, 100), key);
    }
    assert.deepEqual(keysOf(await c.list('glob*')), ['glob*q?[br]{x}.bin']);
    assert.deepEqual(keysOf(await c.list('glob?')), []);
    assert.deepEqual(keysOf(await c.list('pct%')), ['pct%25/raw%.bin']);
    for (const key of keys) await c.delete(key);
    assert.deepEqual(await c.list(), []);
  });

  withConnector('concurrent readers of one object each get exactly their range', async (c) => {
    const size = 12 * TEST_CHUNK_BYTES + 7;
    const data = pattern(size, 11);
    await c.write('shared.bin', data);
    const r = pattern(256, 12);
    const ranges = Array.from({ length: 32 }, (_, i) => {
      const offset = r.readUInt32LE(i * 4) % size;
      return [offset, Math.min(size - offset, (r.readUInt32LE(((i + 7) % 60) * 4) % (3 * TEST_CHUNK_BYTES)) + 1)] as const;
    });
    const results = await Promise.all(ranges.map(([offset, length]) => read(c, 'shared.bin', offset, length)));
    results.forEach((got, i) => {
      const [offset, length] = ranges[i]!;
      assert.deepEqual(got, data.subarray(offset, offset + length), `${offset}+${length}`);
    });
  });

  // Only where the server itself replaces objects atomically (s3rver does not: test/harness/s3-server.ts).
  const racing = options.atomicRewrites ? withConnector : (): void => undefined;
  racing('readers racing a writer see one version whole, never mixed bytes', async (c) => {
    const size = 4 * TEST_CHUNK_BYTES;
    const version = (v: number): Buffer => Buffer.alloc(size, v);
    await c.write('hot.bin', version(1));
    let writing = true;
    const writer = (async () => {
      for (let v = 2; v <= 12; v++) await c.write('hot.bin', v % 2 === 0 ? pieces(version(v), 40_000) : version(v));
      writing = false;
    })();
    const outcomes = { whole: 0, changed: 0 };
    const reader = async (): Promise<void> => {
      do {
        const dest = Buffer.alloc(size);
        try {
          await c.readInto('hot.bin', 0, dest);
        } catch (error) {
          assert.equal((error as { code?: string }).code, 'TC_ERR_SOURCE_CHANGED', String(error));
          outcomes.changed++;
          continue;
        }
        assert.ok(dest.every((b) => b === dest[0]) && dest[0]! >= 1, `mixed bytes: starts ${dest[0]}, ends ${dest[size - 1]}`);
        outcomes.whole++;
      } while (writing);
    };
    await Promise.all([writer, reader(), reader(), reader()]);
    assert.ok(outcomes.whole > 0, JSON.stringify(outcomes));
    assert.deepEqual(await read(c, 'hot.bin', 0, size), version(12));
  });

  const missingContainerUrl = options.missingContainerUrl;
  if (missingContainerUrl === undefined) return;
  test(`connector contract (${name}): a missing container is TC_ERR_NOT_FOUND naming it`, async (t) => {
    const url = await missingContainerUrl(t);
    if (url === undefined) return;
    const c = await createConnector(url, { retry: { attempts: 2, baseDelayMs: 10 } });
    t.after(() => c.close());
    const named = /does not exist/;
    await rejectsWith(c.list(), 'TC_ERR_NOT_FOUND', named);
    await rejectsWith(c.stat('x'), 'TC_ERR_NOT_FOUND', named);
    await rejectsWith(read(c, 'x', 0, 1), 'TC_ERR_NOT_FOUND', named);
  });
}
