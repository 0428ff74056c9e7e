import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { crc32c as packageCrc32c } from '@node-rs/crc32';
import { crc32c, crc32cAsync, crc32cKernel } from './crc32c.js';
import { native } from './native.js';

test('crc32c: the check value of the Castagnoli polynomial, and of nothing', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
  assert.equal(crc32c(new Uint8Array(0), 0x1234), 0x1234);
});

test('crc32c: equals the package kernel at every length, alignment and initial value (lane edges included)', () => {
  // Lengths around the three-lane sizes of the native kernel (3 x 256 and 3 x 8192 bytes) and beyond.
  const lengths = [...Array.from({ length: 80 }, (_, i) => i), 767, 768, 769, 24575, 24576, 24577, 24576 + 768 + 7, 100_003, 1 << 20];
  const pool = randomBytes((1 << 20) + 16);
  for (const length of lengths) {
    for (const offset of [0, 1, 3, 7]) {
      const data = pool.subarray(offset, offset + length);
      const initial = (length * 2654435761) >>> 0;
      assert.equal(crc32c(data), packageCrc32c(data), `length ${length} offset ${offset}`);
      assert.equal(crc32c(data, initial), packageCrc32c(data, initial), `length ${length} offset ${offset} initial`);
      if (native !== undefined) assert.equal(native.crc32cPortable(data, initial), packageCrc32c(data, initial), `portable ${length}`);
    }
  }
});

test('crc32c: chains like one pass over the concatenation; the pool variant agrees', async () => {
  const data = randomBytes(3 * 8192 * 5 + 123);
  for (const cut of [0, 1, 4095, 8192 * 3, data.length - 1, data.length]) {
    assert.equal(crc32c(data.subarray(cut), crc32c(data.subarray(0, cut))), crc32c(data));
  }
  assert.equal(await crc32cAsync(data), crc32c(data));
  assert.equal(await crc32cAsync(data.subarray(10), crc32c(data.subarray(0, 10))), crc32c(data));
});

test('crc32c: a bad argument is a TypeError with a stable code, not a crash', { skip: native === undefined }, () => {
  assert.throws(() => native!.crc32c('text' as unknown as Uint8Array), { code: 'TC_ERR_INVALID_ARGUMENT' });
  assert.throws(() => native!.crc32c(new Uint8Array(1), -1), { code: 'TC_ERR_INVALID_ARGUMENT' });
  assert.throws(() => native!.crc32c(new Uint8Array(1), 2 ** 32), { code: 'TC_ERR_INVALID_ARGUMENT' });
  assert.throws(() => native!.crc32cAsync(new Uint16Array(2) as unknown as Uint8Array), { code: 'TC_ERR_INVALID_ARGUMENT' });
  assert.ok(['sse4.2', 'table'].includes(crc32cKernel));
});
