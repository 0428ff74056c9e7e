import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jsonDepthExceeds, MAX_JSON_DEPTH, parseJsonBody } from './json-body.js';

test('json body: depth counted outside strings only; deep, malformed and poisoned bodies are TC_ERR_INVALID_ARGUMENT', () => {
  assert.equal(jsonDepthExceeds('[[[]]]', 3), false);
  assert.equal(jsonDepthExceeds('[[[[]]]]', 3), true);
  assert.equal(jsonDepthExceeds('{"a":"[[[[[[\\"[[[["}', 1), false);
  assert.equal(jsonDepthExceeds('{"a\\\\":[[]]}', 2), true);
  assert.deepEqual(parseJsonBody(`{"view":{"t":[[0,2],null]},"s":"{{{{"}`), { view: { t: [[0, 2], null] }, s: '{{{{' });
  assert.equal(parseJsonBody(''), undefined);
  const nested = (n: number): string => `${'['.repeat(n)}${']'.repeat(n)}`;
  assert.doesNotThrow(() => parseJsonBody(nested(MAX_JSON_DEPTH)));
  for (const bad of [nested(MAX_JSON_DEPTH + 1), nested(1e6), '{"a":', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{}}}']) {
    assert.throws(() => parseJsonBody(bad), { code: 'TC_ERR_INVALID_ARGUMENT' }, bad.slice(0, 40));
  }
});
