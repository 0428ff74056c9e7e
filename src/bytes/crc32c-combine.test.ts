// crc32cCombine against the CRC of the concatenation, on random splits of random bytes.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { crc32c } from './crc32c.js';
import { crc32cCombine } from './crc32c-combine.js';

test('crc32cCombine: the CRC of a || b from the CRCs of a and b', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 5000 }), fc.uint8Array({ maxLength: 5000 }), (a, b) => {
      const whole = crc32c(Buffer.concat([a, b]));
      assert.equal(crc32cCombine(crc32c(a), crc32c(b), b.length), whole);
    }),
    { numRuns: 300 },
  );
});

test('crc32cCombine: many parts folded left give the CRC of the whole (large lengths too)', () => {
  const data = Buffer.alloc(3 << 20);
  for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
  const cuts = [0, 1, 4096, 1 << 20, (1 << 20) + 3, (3 << 20) - 1, 3 << 20];
  let crc = 0;
  for (let i = 1; i < cuts.length; i++) {
    const part = data.subarray(cuts[i - 1], cuts[i]);
    crc = crc32cCombine(crc, crc32c(part), part.length);
  }
  assert.equal(crc, crc32c(data));
  assert.equal(crc32cCombine(0x12345678, 0, 0), 0x12345678);
});
