import assert from 'node:assert/strict';
import { appendFileSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { compactJournal, replayJournal } from './journal.js';
import { LATER, openStore, pattern, putBytes, readBytes } from './test-helpers.js';

test('object restart: disk objects survive with their bytes, memory ones are lost, pending files go, versions keep increasing', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tc-objects-'));
  try {
    const first = await openStore({ memoryBytes: 100, spillDir: dir });
    const vMem = await putBytes(first, 'r/mem', pattern(50, 1));
    const vDisk = await putBytes(first, 'r/disk', pattern(200, 2), {}, 64);
    assert.equal(first.stat('r/disk', undefined).tier, 'disk', 'did not fit in memory: spilled');
    first.configureNamespace('sec', { token: 'tok', maxBytes: 10_000 }, undefined);
    await putBytes(first, 'sec/big', pattern(300, 3), { storeToken: 'tok' });
    await putBytes(first, 'r/gone', pattern(150, 4));
    first.delete(['r/gone'], undefined);
    await putBytes(first, 'r/tx', pattern(120, 5), { txn: 'never-committed' });
    const pending = await first.beginPut({ key: 'r/pending', size: 400, deadline: LATER });
    await pending.write(0, pattern(100, 6));
    assert.equal(pending.tier, 'disk');
    const maxBefore = Math.max(...first.list('', { storeToken: 'tok' }).objects.map((o) => o.version), vMem, vDisk);
    // A crash: the first store is never closed; the journal's last line is cut short.
    appendFileSync(join(dir, 'journal'), '{"t":"put","o":[{"key":"r/half","vers');

    const second = await openStore({ memoryBytes: 100, spillDir: dir, now: () => 0 });
    assert.deepEqual(await readBytes(second, 'r/disk'), pattern(200, 2));
    assert.equal(second.stat('r/disk', undefined).version, vDisk);
    assert.throws(() => second.stat('r/mem', undefined), { code: 'TC_ERR_OBJECT_LOST' });
    assert.throws(() => second.openRead('r/mem', undefined, LATER), { code: 'TC_ERR_OBJECT_LOST' });
    assert.deepEqual(
      second.list('r/', {}).objects.map((o) => [o.key, o.lost ?? false]),
      [
        ['r/disk', false],
        ['r/mem', true],
      ],
      'deleted, uncommitted and cut-short objects are not there; the lost one is listed as lost',
    );
    assert.throws(() => second.stat('sec/big', undefined), { code: 'TC_ERR_AUTH' }, 'the namespace token survives');
    assert.deepEqual(await readBytes(second, 'sec/big', 'tok'), pattern(300, 3));
    assert.equal(second.namespaceInfo('sec', 'tok').maxBytes, 10_000);
    assert.equal(second.namespaceInfo('r', undefined).lost, 1);
    const files = readdirSync(dir).sort();
    assert.equal(files.length, 3, `journal + two object files, not ${files.join(', ')}`);
    assert.ok(files.includes('journal'));
    const vNew = await putBytes(second, 'r/new', pattern(10, 7));
    assert.ok(vNew > maxBefore, 'a version is never handed out twice, even with a clock that went back');
    assert.deepEqual(second.delete(['r/mem'], undefined), [{ key: 'r/mem', ok: true, existed: true }]);
    assert.throws(() => second.stat('r/mem', undefined), { code: 'TC_ERR_NOT_FOUND' });
    await second.close();
    await first.close();

    // A damaged object file (same size) is found by its first read and reported lost.
    const diskFile = readdirSync(dir).find((f) => f !== 'journal' && readFileSync(join(dir, f)).length === 200)!;
    const damaged = readFileSync(join(dir, diskFile));
    damaged[7] = damaged[7]! ^ 0xff;
    writeFileSync(join(dir, diskFile), damaged);
    const third = await openStore({ memoryBytes: 100, spillDir: dir, now: () => 0 });
    assert.equal(third.stat('r/disk', undefined).size, 200, 'the CRC is checked lazily');
    await assert.rejects(readBytes(third, 'r/disk'), { code: 'TC_ERR_OBJECT_LOST' });
    assert.throws(() => third.stat('r/disk', undefined), { code: 'TC_ERR_OBJECT_LOST' });
    assert.equal(third.list('r/new', {}).objects[0]?.lost, true, 'a memory object of the second run');
    assert.throws(() => third.stat('r/mem', undefined), { code: 'TC_ERR_NOT_FOUND' }, 'its delete was journaled');
    assert.ok((await putBytes(third, 'r/newer', pattern(1, 0))) > vNew);
    await third.close();
    assert.ok(!existsSync(join(dir, diskFile)), 'the damaged file is removed');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('object restart: without spill nothing is written and a restart starts empty', async () => {
  const store = await openStore({ memoryBytes: 100 });
  await assert.rejects(putBytes(store, 'x/big', pattern(200, 1)), { code: 'TC_ERR_BUDGET' });
  await store.close();
});

test('object journal: replay keeps the last line per key, honours deletes by version, drops a torn or garbled line', () => {
  const o = (key: string, version: number) => ({
    key,
    version,
    size: 1,
    crc: 0,
    tier: 'disk',
    createdAt: 1,
    expiresAt: null,
    file: `o-${version}.bin`,
  });
  const lines = [
    JSON.stringify({ t: 'ver', v: 5 }),
    JSON.stringify({ t: 'put', o: [o('a/x', 6), o('a/y', 7)] }),
    JSON.stringify({ t: 'put', o: [o('a/x', 8)] }),
    JSON.stringify({ t: 'del', k: [['a/x', 6]] }),
    JSON.stringify({ t: 'del', k: [['a/y', 7]] }),
    'not json',
    JSON.stringify({ t: 'put', o: [{ ...o('a/z', 9), file: '../etc/passwd' }] }),
    JSON.stringify({ t: 'ns', ns: 'a', tokenHash: null, maxBytes: 10 }),
  ];
  const state = replayJournal(`${lines.join('\n')}\n{"t":"put","o":[`);
  assert.deepEqual([...state.objects.keys()], ['a/x']);
  assert.equal(state.objects.get('a/x')!.version, 8);
  assert.equal(state.maxVersion, 8);
  assert.equal(state.dropped, 3);
  assert.deepEqual(state.namespaces.get('a'), { ns: 'a', tokenHash: null, maxBytes: 10 });
  const again = replayJournal(compactJournal(state));
  assert.deepEqual([...again.objects.values()], [...state.objects.values()]);
  assert.equal(again.maxVersion, 8);
  assert.equal(again.dropped, 0);
  assert.equal(replayJournal('').maxVersion, 0);
});

test('object journal: a long-running store rewrites its journal near the size of its live state', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tc-objects-compact-'));
  try {
    const store = await openStore({ memoryBytes: 100, spillDir: dir });
    let last = 0;
    for (let i = 0; i < 10_100; i++) last = await putBytes(store, 'c/k', new Uint8Array(0));
    const lines = readFileSync(join(dir, 'journal'), 'utf8').split('\n').length;
    assert.ok(lines < 1000, `the journal was compacted (${lines} lines)`);
    await store.close();
    const again = await openStore({ memoryBytes: 100, spillDir: dir });
    assert.deepEqual(
      again.list('c/', {}).objects.map((o) => [o.version, o.lost]),
      [[last, true]],
    );
    await again.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
