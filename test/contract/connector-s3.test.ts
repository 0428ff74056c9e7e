// The connector contract on an S3-compatible server (TENSORCAST_TEST_S3_URL, else s3rver started by the
// harness; a fresh bucket per test); plus what is S3's own: URL forms, multipart uploads, credentials, a
// missing bucket, and how throttling, resets and refusals from a server are translated.

import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { createConnector } from '../../src/connectors/create-connector.js';
import { parseS3ConnectorUrl } from '../../src/connectors/s3/s3-connector-url.js';
import { S3_URL_ENV, s3ConnectorUrl, s3TestServer } from '../harness/services.js';
import { pattern, pieces, read, runConnectorContract } from './connector-contract.js';

const external = (process.env[S3_URL_ENV] ?? '') !== '';

runConnectorContract('s3', {
  freshUrl: s3ConnectorUrl,
  missingContainerUrl: async (t) => {
    const server = await s3TestServer(t);
    return server && `s3://no-such-bucket-tc/m?endpoint=${server.endpoint}&accessKeyId=${server.key}&secretAccessKey=${server.key}`;
  },
  // s3rver writes an object's bytes and then its metadata, in place: a racing reader can see a mix.
  atomicRewrites: external,
});

test('s3 connector: URL forms; a bad one is TC_ERR_INVALID_ARGUMENT that never shows the secret', () => {
  const u = parseS3ConnectorUrl(
    's3://models/llama/8b?endpoint=http://127.0.0.1:9000&region=eu-west-1&accessKeyId=AK&secretAccessKey=s3cr%2Ft',
  );
  assert.deepEqual(
    [u.bucket, u.prefix, u.endpoint, u.region, u.forcePathStyle, u.credentials],
    ['models', 'llama/8b/', 'http://127.0.0.1:9000', 'eu-west-1', true, { accessKeyId: 'AK', secretAccessKey: 's3cr/t' }],
  );
  assert.equal(u.redacted, 's3://models/llama/8b?endpoint=http://127.0.0.1:9000&region=eu-west-1&accessKeyId=AK&secretAccessKey=***');
  const plain = parseS3ConnectorUrl('s3://bucket');
  assert.deepEqual(
    [plain.prefix, plain.endpoint, plain.region, plain.forcePathStyle, plain.credentials],
    ['', undefined, undefined, false, undefined],
  );
  assert.equal(parseS3ConnectorUrl('s3://b-1/p/?forcePathStyle=false&endpoint=https://s3.example').forcePathStyle, false);
  for (const bad of [
    's3:///p?secretAccessKey=hunter22&accessKeyId=a',
    's3://b/p?secretAccessKey=hunter22',
    's3://b/p?secretAccessKey=hunter22&accessKeyId=a&bogus=1',
    's3://b/p?secretAccessKey=hunter22&accessKeyId=a&endpoint=ftp://x',
    's3://b/p?secretAccessKey=hunter22&accessKeyId=a&forcePathStyle=yes',
    's3://b/p?secretAccessKey=hunter22&accessKeyId=a#frag',
  ]) {
    assert.throws(
      () => parseS3ConnectorUrl(bad),
      (e: Error & { code?: string }) => e.code === 'TC_ERR_INVALID_ARGUMENT' && !e.message.includes('hunter22'),
      bad,
    );
  }
});

test('s3 connector: a stream above the part size goes up as a multipart upload and reads back exactly', async (t) => {
  const url = await s3ConnectorUrl(t);
  if (url === undefined) return;
  const c = await createConnector(url, { chunkBytes: 5 * 1024 * 1024, concurrency: 4 });
  t.after(() => c.close());
  const size = 12 * 1024 * 1024 + 5;
  const data = pattern(size, 1);
  const info = await c.write('shard-00001.safetensors', pieces(data, 1_000_003));
  assert.equal(info.size, size);
  assert.deepEqual(await c.stat('shard-00001.safetensors'), info);
  assert.ok((await read(c, 'shard-00001.safetensors', 0, size, info.etag)).equals(data));
  const offset = 5 * 1024 * 1024 - 3;
  assert.ok((await read(c, 'shard-00001.safetensors', offset, 6 * 1024 * 1024)).equals(data.subarray(offset, offset + 6 * 1024 * 1024)));
});

test('s3 connector: an unknown access key is TC_ERR_AUTH; a missing bucket TC_ERR_NOT_FOUND naming it; secrets stay out', async (t) => {
  const server = await s3TestServer(t);
  if (server === undefined) return;
  const good = await s3ConnectorUrl(t);
  if (good === undefined) return;
  const bucket = /^s3:\/\/([^/]+)/.exec(good)![1]!;
  const wrong = await createConnector(`s3://${bucket}/m?endpoint=${server.endpoint}&accessKeyId=NOBODY&secretAccessKey=hunter22`);
  t.after(() => wrong.close());
  assert.ok(!wrong.displayUrl.includes('hunter22') && wrong.displayUrl.includes('secretAccessKey=***'), wrong.displayUrl);
  const noSecret = (e: Error & { code?: string }, code: string): boolean => {
    assert.equal(e.code, code, e.message);
    assert.ok(!e.message.includes('hunter22') && !JSON.stringify(e).includes('hunter22'), e.message);
    return true;
  };
  await assert.rejects(wrong.list(), (e: Error & { code?: string }) => noSecret(e, 'TC_ERR_AUTH'));
  await assert.rejects(wrong.write('x', pattern(3)), (e: Error & { code?: string }) => noSecret(e, 'TC_ERR_AUTH'));
  const missing = await createConnector(
    `s3://tc-missing-bucket/m?endpoint=${server.endpoint}&accessKeyId=${server.key}&secretAccessKey=hunter22`,
  );
  t.after(() => missing.close());
  for (const op of [() => missing.write('x', pattern(3)), () => missing.write('y', pieces(pattern(10), 3)), () => missing.delete('x')]) {
    await assert.rejects(op(), (e: Error & { code?: string }) => noSecret(e, 'TC_ERR_NOT_FOUND') && /tc-missing-bucket/.test(e.message));
  }
});

/** A plain HTTP server answering every request with `respond`; counts the requests. */
async function fakeEndpoint(
  t: TestContext,
  respond: Parameters<typeof createServer>[1],
): Promise<{ endpoint: string; count: () => number }> {
  let count = 0;
  const server: Server = createServer((req, res) => {
    count++;
    req.resume();
    respond!(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, count: () => count };
}

const s3Error = (code: string): string =>
  `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code}</Message></Error>`;

test('s3 connector: throttling and resets are retried a bounded number of times, then a retryable TC_ERR_BACKEND', async (t) => {
  const retry = { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 };
  const slow = await fakeEndpoint(t, (_req, res) => {
    res.writeHead(503, { 'content-type': 'application/xml' }).end(s3Error('SlowDown'));
  });
  const reset = await fakeEndpoint(t, (req) => req.socket.destroy());
  const refused = await fakeEndpoint(t, (_req, res) => {
    res.writeHead(403, { 'content-type': 'application/xml' }).end(s3Error('AccessDenied'));
  });
  for (const [what, server, code, tries] of [
    ['SlowDown', slow, 'TC_ERR_BACKEND', 3],
    ['reset', reset, 'TC_ERR_BACKEND', 3],
    ['AccessDenied', refused, 'TC_ERR_AUTH', 1],
  ] as const) {
    const c = await createConnector(`s3://bucket/p?endpoint=${server.endpoint}&accessKeyId=a&secretAccessKey=hunter22`, { retry });
    t.after(() => c.close());
    const before = server.count();
    await assert.rejects(read(c, 'k', 0, 10), (e: Error & { code?: string; retryable?: boolean }) => {
      assert.equal(e.code, code, `${what}: ${e.message}`);
      if (code === 'TC_ERR_BACKEND') assert.equal(e.retryable, true);
      assert.ok(!e.message.includes('hunter22'));
      return true;
    });
    assert.equal(server.count() - before, tries, what);
  }
});
