import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { ChunkChecksummer, verifyChunks } from './chunk-checksums.js';

test('chunk checksums: the same sums whatever the pieces; a changed byte fails with TC_ERR_CHECKSUM', () => {
  const bytes = randomBytes(10_000);
  const whole = new ChunkChecksummer(4096);
  whole.push(bytes);
  const pieces = new ChunkChecksummer(4096);
  for (let at = 0; at < bytes.length; at += 777) pieces.push(bytes.subarray(at, at + 777));
  const sums = whole.finish();
  assert.deepEqual(pieces.finish(), sums);
  assert.equal(sums.crcs.length, 3);
  verifyChunks(sums, bytes.length, 0, bytes, 'test');
  verifyChunks(sums, bytes.length, 8192, bytes.subarray(8192), 'test');
  const bad = Buffer.from(bytes);
  bad[5000] = bad[5000]! ^ 1;
  assert.throws(() => verifyChunks(sums, bytes.length, 4096, bad.subarray(4096, 8192), 'test'), { code: 'TC_ERR_CHECKSUM' });
  assert.throws(() => verifyChunks(sums, bytes.length + 4096, 0, bytes, 'test'), { code: 'TC_ERR_PROTOCOL' });
});
