// The handshake store contract on the memory store (one listener: every "instance" is the same store), and
// openHandshakeStore's choice of backend from a catalog URL.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isTensorcastError } from '../../src/core/errors.js';
import { MemoryHandshakeStore } from '../../src/handshake/store/memory-handshake-store.js';
import { openHandshakeStore } from '../../src/handshake/store/open-handshake-store.js';
import type { HandshakeStore } from '../../src/handshake/store/handshake-store.js';
import { runHandshakeStoreContract } from './handshake-store-contract.js';

runHandshakeStoreContract('memory', () => {
  let store: HandshakeStore | undefined;
  return Promise.resolve((options) => Promise.resolve((store ??= new MemoryHandshakeStore(options))));
});

test('openHandshakeStore: no URL or memory -> the memory store; another scheme is a config error without the password', async () => {
  for (const url of [undefined, '', 'memory', 'memory://']) {
    const store = await openHandshakeStore(url);
    assert.equal(store.kind, 'memory');
    await store.close();
  }
  for (const url of ['sqlite:///tmp/catalog.db', 'mysql://u:hunter22@db/x', 'nonsense']) {
    await assert.rejects(openHandshakeStore(url), (error: unknown) => {
      assert.ok(isTensorcastError(error, 'TC_ERR_CONFIG'), String(error));
      assert.ok(!error.message.includes('hunter22'), error.message);
      return true;
    });
  }
});

test('memory handshake store: a closed store refuses calls', async () => {
  const store = new MemoryHandshakeStore();
  await store.close();
  await assert.rejects(store.engines(), (error: unknown) => isTensorcastError(error, 'TC_ERR_SHUTTING_DOWN'));
});
