// JavaScript callers get coded errors for options TypeScript would have caught.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isTensorcastError } from '../core/errors.js';
import { checkLoadOptions, checkSelection, checkTransferOptions } from './load-options.js';

const invalid = (fn: () => void, mentions: string): void =>
  assert.throws(fn, (e: unknown) => isTensorcastError(e, 'TC_ERR_INVALID_ARGUMENT') && (e as Error).message.includes(mentions));

test('load options: misspelt or ill-typed options are TC_ERR_INVALID_ARGUMENT naming them', () => {
  invalid(() => checkLoadOptions({ tpSize: 2 }), "'tpSize'");
  invalid(() => checkLoadOptions({ transport: 'udp' }), 'transport');
  invalid(() => checkLoadOptions({ tp: { size: 2 } }), 'tp.rank');
  invalid(() => checkLoadOptions({ tp: { size: 0, rank: 0 } }), 'tp.size');
  invalid(() => checkLoadOptions({ tp: { size: 2, rank: 0, layout: 'auto' } }), "'layout'");
  invalid(() => checkLoadOptions({ into: [1, 2, 3] }), 'into');
  invalid(() => checkLoadOptions({ timeoutMs: -1 }), 'timeoutMs');
  invalid(() => checkLoadOptions({ connections: 1.5 }), 'connections');
  invalid(() => checkLoadOptions({ tensors: 'a,b' }), 'tensors');
  invalid(() => checkSelection({ transport: 'tcp' }), "'transport'");
  invalid(() => checkTransferOptions({ tp: { size: 1, rank: 0 } }), "'tp'");
});

test('load options: every documented option passes', () => {
  checkLoadOptions(undefined);
  checkLoadOptions({});
  checkLoadOptions({ tensors: ['a'], transport: 'shm', timeoutMs: 1000, connections: 4, into: new Uint8Array(4) });
  checkLoadOptions({ tp: { size: 4, rank: 3, rules: { name: 'mine', rules: [] } }, transport: 'files' });
  checkLoadOptions({ view: { 'lm_head.weight': [[0, 8], null] }, into: Buffer.alloc(1) });
  checkTransferOptions({ transport: 'tcp', connections: 2, timeoutMs: 5 });
});
