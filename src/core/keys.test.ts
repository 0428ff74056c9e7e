import assert from 'node:assert/strict';
import { test } from 'node:test';
import { keyProblem, MAX_KEY_BYTES, printable, validateKey } from './keys.js';

test('key grammar: accepted keys, and each rejected key names its rule', () => {
  for (const key of ['m', 'model:llama-8b:v3', 'hf/meta-llama/Llama-3-8B@main', 'a.b_c+d=e', '...', 'x'.repeat(MAX_KEY_BYTES), 'tc:x']) {
    assert.equal(keyProblem(key), undefined, key);
  }
  const cases: [unknown, string][] = [
    [5, 'type'],
    ['', 'empty'],
    ['x'.repeat(MAX_KEY_BYTES + 1), 'length'],
    ['é'.repeat(MAX_KEY_BYTES / 2 + 1), 'length'],
    ['a b', 'character'],
    ['a\u0000', 'character'],
    ['a?b', 'character'],
    ['a#b', 'character'],
    [':a', 'empty-segment'],
    ['a//b', 'empty-segment'],
    ['a/./b', 'dot-segment'],
    ['..', 'dot-segment'],
    ['tc1:abc', 'reserved'],
    ['tc22:abc', 'reserved'],
    ['tcl:abc', 'reserved'],
  ];
  for (const [key, rule] of cases) {
    assert.equal(keyProblem(key)?.rule, rule, JSON.stringify(key));
    assert.throws(() => validateKey(key), { code: 'TC_ERR_INVALID_ARGUMENT', details: { rule } });
  }
  assert.match(keyProblem('a\x1bb')!.message, /U\+001B at position 1/);
});

test('printable: control, non-ASCII and bidi characters are escaped', () => {
  assert.equal(printable('ok:key'), 'ok:key');
  assert.equal(printable('a\x1b[2Jb\u202e\u{1f600}'), 'a\\u{1b}[2Jb\\u{202e}\\u{1f600}');
});
