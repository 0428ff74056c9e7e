import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { compactJournal, replayJournal } from './journal.js';

const object = (key: string, version: number) => ({
  key,
  version,
  size: version * 3,
  crc: version,
  tier: version % 2 === 0 ? 'disk' : 'memory',
  createdAt: 1,
  expiresAt: null,
  ...(version % 2 === 0 ? { file: `o-${version.toString(16)}.bin` } : {}),
});

const text = [
  { t: 'ver', v: 3 },
  { t: 'ns', ns: 'a', tokenHash: 'ab'.repeat(32), maxBytes: 100 },
  { t: 'put', o: [object('a/x', 4), object('a/y', 5)] },
  { t: 'del', k: [['a/x', 4]] },
  { t: 'put', o: [object('a/x', 6)] },
]
  .map((r) => `${JSON.stringify(r)}\n`)
  .join('');

test('object journal fuzz: a journal cut at any byte replays without throwing, to the state of its whole lines', () => {
  for (let cut = 0; cut <= text.length; cut++) {
    const state = replayJournal(text.slice(0, cut));
    const whole = text.slice(0, text.lastIndexOf('\n', cut - 1) + 1);
    const expected = replayJournal(whole);
    assert.deepEqual([...state.objects.entries()], [...expected.objects.entries()], `cut at ${cut}`);
    assert.equal(state.dropped, cut === whole.length ? 0 : 1);
  }
  assert.deepEqual([...replayJournal(text).objects.keys()], ['a/y', 'a/x']);
});

test('object journal fuzz: random bytes and random edits never throw; what replays is well-formed and survives compaction', () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string({ maxLength: 300 }),
        fc
          .tuple(fc.nat(text.length), fc.nat(text.length), fc.string({ maxLength: 20 }))
          .map(([a, b, s]) => text.slice(0, Math.min(a, b)) + s + text.slice(Math.max(a, b))),
      ),
      (input) => {
        const state = replayJournal(input);
        for (const o of state.objects.values()) {
          assert.ok(Number.isSafeInteger(o.version) && o.version > 0);
          assert.ok(o.file === undefined || /^o-[0-9a-f]+\.bin$/.test(o.file));
          assert.ok(state.maxVersion >= o.version);
        }
        const again = replayJournal(compactJournal(state));
        assert.deepEqual([...again.objects.entries()], [...state.objects.entries()]);
        assert.equal(again.maxVersion, state.maxVersion);
      },
    ),
    { numRuns: 2000 },
  );
});
