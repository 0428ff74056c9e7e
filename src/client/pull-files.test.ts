// The file filter of pullFiles: SGLang's defaults (everything but the weights), allow and ignore patterns,
// base-name matching for patterns without '/'.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileFilter } from './pull-files.js';

const KEYS = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer.model',
  'tokenizer/vocab.txt',
  'model-00001-of-00002.safetensors',
  'model.safetensors.index.json',
  'pytorch_model.bin',
  'README.md',
  '.gitattributes',
];

const pick = (options: Parameters<typeof fileFilter>[0]): string[] => KEYS.filter(fileFilter(options));

test('pull-files filter: by default every file but the weights', () => {
  assert.deepEqual(pick({}), [
    'config.json',
    'generation_config.json',
    'tokenizer.json',
    'tokenizer.model',
    'tokenizer/vocab.txt',
    'model.safetensors.index.json',
    'README.md',
    '.gitattributes',
  ]);
});

test('pull-files filter: --allow picks (weights too when asked), a pattern without / matches base names', () => {
  assert.deepEqual(pick({ allow: ['*.json'] }), [
    'config.json',
    'generation_config.json',
    'tokenizer.json',
    'model.safetensors.index.json',
  ]);
  assert.deepEqual(pick({ allow: ['*.txt'] }), ['tokenizer/vocab.txt']);
  assert.deepEqual(pick({ allow: ['tokenizer/**'] }), ['tokenizer/vocab.txt']);
  assert.deepEqual(pick({ allow: ['*.safetensors'] }), ['model-00001-of-00002.safetensors']);
  assert.equal(pick({ allow: ['*'] }).length, KEYS.length);
  assert.deepEqual(pick({ allow: ['tokenizer*'], ignore: ['*.model'] }), ['tokenizer.json']);
});

test('pull-files filter: --ignore adds to the default ignore of weights', () => {
  assert.deepEqual(pick({ ignore: ['*.md', '.*', 'tokenizer/**', '*config.json'] }), [
    'tokenizer.json',
    'tokenizer.model',
    'model.safetensors.index.json',
  ]);
  assert.throws(
    () => fileFilter({ allow: [''] }),
    (e: Error & { code?: string }) => e.code === 'TC_ERR_INVALID_ARGUMENT',
  );
});
