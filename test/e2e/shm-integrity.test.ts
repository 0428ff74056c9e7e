// Shared-memory replicas that someone else changed: a deleted or truncated replica file is noticed and
// rebuilt (the next load succeeds with the right bytes), and changed bytes fail the client's CRC32C check
// with TC_ERR_CHECKSUM instead of arriving silently wrong.

import assert from 'node:assert/strict';
import { openSync, readdirSync, rmSync, truncateSync, writeSync, closeSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../helpers/tmp.js';
import { startDaemon } from '../harness/daemon.js';
import { writeSyntheticModel } from '../../src/format/synthetic-model.js';
import { connect } from '../../src/client/tensorcast-client.js';
import { resolveConfig } from '../../src/daemon/config.js';

/** About 15 MB: several 4 MiB checksum chunks. */
const MODEL = { hiddenSize: 512, intermediateSize: 1024, numLayers: 2, numHeads: 8, numKvHeads: 2, vocabSize: 4096, shards: 1 };

test('a deleted or truncated shm replica file is rebuilt; changed bytes fail with TC_ERR_CHECKSUM', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const model = join(dir, 'model');
  await writeSyntheticModel(model, MODEL);
  const d = await startDaemon(t, { extraArgs: ['--import-root', dir] });
  const shmDir = resolveConfig([{ dataDir: d.dataDir }]).shmDir;
  const client = await connect({ url: d.controlUrl, token: d.token });
  t.after(() => client.close());
  await client.importModel(model, { key: 'm' });
  const tp = { size: 2, rank: 1 };
  const want = Buffer.from((await client.load('m', { tp, transport: 'tcp' })).buffer);
  assert.ok(want.length > 8 << 20);
  const replicaFile = (): string => {
    // Replica files only (idle segments kept for reuse live in the hidden .pool folder).
    const files = readdirSync(shmDir).filter((f) => !f.startsWith('.'));
    assert.equal(files.length, 1, `one replica file, found ${files.join(', ')}`);
    return join(shmDir, files[0]!);
  };
  const shmLoad = async (): Promise<Buffer> => Buffer.from((await client.load('m', { tp, transport: 'shm' })).buffer);

  assert.ok((await shmLoad()).equals(want));
  rmSync(replicaFile());
  assert.ok((await shmLoad()).equals(want), 'after the file was deleted: rebuilt, right bytes');
  truncateSync(replicaFile(), 1000);
  assert.ok((await shmLoad()).equals(want), 'after the file was truncated: rebuilt, right bytes');
  assert.equal(statSync(replicaFile()).size, want.length);

  // Same length, one changed byte in the second chunk: the client must refuse, not deliver it.
  const fd = openSync(replicaFile(), 'r+');
  writeSync(fd, Buffer.from([want[5 << 20]! ^ 0xff]), 0, 1, 5 << 20);
  closeSync(fd);
  await assert.rejects(shmLoad(), { code: 'TC_ERR_CHECKSUM' });
  // A partial read of the changed chunk is checked too (the whole chunk is read and verified).
  const plan = await client.plan('m', { tp });
  const transfer = await client.openTransfer(plan, { transport: 'shm' });
  // The lease may be handed out while the daemon still writes the file (a progressive lease): a byte changed
  // before the daemon wrote its chunk is overwritten, not a fault. Read it all once (the build is done then).
  const whole = Buffer.alloc(plan.totalBytes);
  await transfer.read(0, plan.totalBytes, whole);
  assert.ok(whole.equals(want));
  const fd2 = openSync(replicaFile(), 'r+');
  writeSync(fd2, Buffer.from([want[(5 << 20) + 10]! ^ 0x0f]), 0, 1, (5 << 20) + 10);
  closeSync(fd2);
  await assert.rejects(transfer.read((5 << 20) + 5, (5 << 20) + 20, Buffer.alloc(15)), { code: 'TC_ERR_CHECKSUM' });
  await transfer.close();
  // The client reported the change: the daemon dropped the replica and the next load rebuilds it.
  assert.ok((await shmLoad()).equals(want), 'after a failed checksum: rebuilt, right bytes');
});
