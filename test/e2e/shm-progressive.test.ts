// Progressive shm leases and reused segments, over a real daemon: the lease opens before the file is all
// written and announces every chunk once, in order, with the CRC32C of the bytes the file then holds; a
// client gone mid-build leaves no lease behind; a segment reused for a smaller view holds that view's bytes
// and nothing past them.

import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { crc32c } from '../../src/bytes/crc32c.js';
import { connect } from '../../src/client/tensorcast-client.js';
import { writeSyntheticModel } from '../../src/format/synthetic-model.js';
import type { ShmLeaseLine, ShmLeaseResponse } from '../../src/protocol/http/loads.js';
import { startDaemon } from '../harness/daemon.js';
import { tempDir } from '../helpers/tmp.js';

/** About 15 MB: several 4 MiB checksum chunks. */
const MODEL = { hiddenSize: 512, intermediateSize: 1024, numLayers: 2, numHeads: 8, numKvHeads: 2, vocabSize: 4096, shards: 1 };

/** Reads an NDJSON answer line by line. */
async function* lines(res: Response): AsyncGenerator<ShmLeaseLine> {
  const decoder = new TextDecoder();
  let pending = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    pending += decoder.decode(chunk, { stream: true });
    for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
      const text = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (text.trim() !== '') yield JSON.parse(text) as ShmLeaseLine;
    }
  }
}

test(
  'a progressive lease opens early, announces every chunk once and in order, and its client may go mid-build',
  { timeout: 120_000 },
  async (t) => {
    const dir = tempDir(t);
    await writeSyntheticModel(join(dir, 'model'), MODEL);
    const d = await startDaemon(t, { extraArgs: ['--import-root', dir] });
    const client = await connect({ url: d.controlUrl, token: d.token });
    t.after(() => client.close());
    await client.importModel(join(dir, 'model'), { key: 'm' });
    const headers = { authorization: `Bearer ${d.token}`, 'content-type': 'application/json', accept: 'application/x-ndjson' };
    const lease = async (rank: number, signal?: AbortSignal): Promise<Response> => {
      const plan = await client.plan('m', { tp: { size: 2, rank } });
      const body = JSON.stringify({ artifactId: plan.artifactId, view: plan.view ?? null, viewId: plan.viewId ?? null });
      return fetch(`${d.controlUrl}/v1/shm-leases`, { method: 'POST', headers, body, ...(signal === undefined ? {} : { signal }) });
    };
    const readers = async (): Promise<number> =>
      ((await (await fetch(`${d.controlUrl}/v1/replicas`, { headers })).json()) as { replicas: { readers: number }[] }).replicas.reduce(
        (n, r) => n + r.readers,
        0,
      );

    const res = await lease(0);
    assert.equal(res.headers.get('content-type'), 'application/x-ndjson');
    const seen: ShmLeaseLine[] = [];
    for await (const line of lines(res)) seen.push(line);
    const opened = seen[0]!;
    assert.ok('opened' in opened, 'the first line opens the lease');
    const result = seen.at(-1)!;
    assert.ok('result' in result, 'the last line is the whole lease');
    const announced: number[] = [];
    for (const line of seen.slice(1, -1)) {
      assert.ok('ready' in line);
      assert.equal(line.ready.firstChunk, announced.length, 'chunks come in order, each once');
      announced.push(...line.ready.crcs);
    }
    const file = readFileSync(opened.opened.path);
    const chunk = opened.opened.chunkBytes;
    assert.equal(file.length, opened.opened.bytes);
    assert.deepEqual(result.result.checksums.crcs.slice(0, announced.length), announced, 'announced sums are the final ones');
    assert.deepEqual(
      result.result.checksums.crcs,
      Array.from({ length: Math.ceil(file.length / chunk) }, (_, i) => crc32c(file.subarray(i * chunk, (i + 1) * chunk))),
      'every sum is the CRC32C of the bytes in the file',
    );
    assert.equal(result.result.leaseId, opened.opened.leaseId);
    assert.equal(await readers(), 1, 'the lease pins its replica');
    const del = await fetch(`${d.controlUrl}/v1/shm-leases/${opened.opened.leaseId}`, { method: 'DELETE', headers });
    assert.equal(del.status, 200);
    assert.equal(await readers(), 0);

    // A client that goes after the lease opened: the build finishes (the replica stays for the next client),
    // the lease does not outlive the connection.
    const abort = new AbortController();
    const gone = await lease(1, abort.signal);
    const first = await lines(gone).next();
    assert.ok(first.value !== undefined && 'opened' in first.value);
    abort.abort();
    // The lease went with the connection (404: released already), unless the whole answer reached the
    // socket before the abort reached the daemon (200: a delivered lease is its client's until DELETE or
    // expiry, like any other; seen once in CI). The build the client left may still hold the replica while
    // it finishes: wait for that too.
    const leaseId = (first.value as Extract<ShmLeaseLine, { opened: unknown }>).opened.leaseId;
    for (let i = 0; i < 100 && (await readers()) > 0; i++) await new Promise((r) => setTimeout(r, 50));
    if ((await readers()) > 0) {
      const release = await fetch(`${d.controlUrl}/v1/shm-leases/${leaseId}`, { method: 'DELETE', headers });
      assert.ok([200, 404].includes(release.status), `DELETE of the gone client's lease: ${release.status}`);
      t.diagnostic(release.status === 200 ? 'the answer completed before the client went' : 'the left build still held the replica');
      for (let i = 0; i < 600 && (await readers()) > 0; i++) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(await readers(), 0, 'no lease left by the client that went');
    // The build the client left may still be finishing: this load joins it (materialized) or hits the replica.
    const joined = await client.load('m', { tp: { size: 2, rank: 1 }, transport: 'shm' });
    assert.ok(['replica_hit', 'materialized'].includes(joined.stats.source), joined.stats.source);
    const again = await client.load('m', { tp: { size: 2, rank: 1 }, transport: 'shm' });
    assert.equal(again.stats.source, 'replica_hit');
    assert.ok(
      Buffer.from(again.buffer).equals(Buffer.from((await client.load('m', { tp: { size: 2, rank: 1 }, transport: 'tcp' })).buffer)),
    );
  },
);

test('a segment reused for a smaller view holds that view and nothing past it', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  await writeSyntheticModel(join(dir, 'model'), MODEL);
  // Room for a replica of the whole model, not for it and a TP=2 view beside it; no reserve: the smaller
  // view's build can only reuse the segment the evicted replica gave back.
  const d = await startDaemon(t, { extraArgs: ['--import-root', dir, '--memory-budget', '20MB', '--shm-reserve', '0'] });
  const client = await connect({ url: d.controlUrl, token: d.token });
  t.after(() => client.close());
  await client.importModel(join(dir, 'model'), { key: 'm' });
  const tp = { size: 2, rank: 0 };
  const want = Buffer.from((await client.load('m', { tp, transport: 'tcp' })).buffer);
  const headers = { authorization: `Bearer ${d.token}`, 'content-type': 'application/json' };
  const lease = async (selection: { tp?: typeof tp }): Promise<ShmLeaseResponse> => {
    const plan = await client.plan('m', selection);
    const body = JSON.stringify({ artifactId: plan.artifactId, view: plan.view ?? null, viewId: plan.viewId ?? null });
    const res = await fetch(`${d.controlUrl}/v1/shm-leases`, { method: 'POST', headers, body });
    assert.equal(res.status, 200);
    const answer = (await res.json()) as ShmLeaseResponse;
    assert.equal((await fetch(`${d.controlUrl}/v1/shm-leases/${answer.leaseId}`, { method: 'DELETE', headers })).status, 200);
    return answer;
  };
  const whole = await lease({});
  const first = statSync(whole.path);
  assert.ok(first.size > want.length);
  const half = await lease({ tp });
  assert.notEqual(half.path, whole.path, 'a fresh name per build');
  const second = statSync(half.path);
  assert.equal(second.ino, first.ino, "the smaller view reused the evicted replica's segment (same file)");
  assert.equal(second.size, want.length, 'cut to the view: nothing of the former content past its end');
  assert.ok(readFileSync(half.path).equals(want), "the view's bytes, all of them overwritten");
  assert.ok(Buffer.from((await client.load('m', { tp, transport: 'shm' })).buffer).equals(want));
});
