// The catalog contract on a real Redis (harness: TENSORCAST_TEST_REDIS_URL, else redis-server from PATH),
// each test under its own key prefix; plus what is Redis's own: URL forms, prefixes, the layout version, TLS.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { createClient } from 'redis';
import { openCatalog } from '../../src/catalog/open-catalog.js';
import { parseRedisCatalogUrl } from '../../src/catalog/redis/redis-url.js';
import { privateRedis, redisCatalogUrl } from '../harness/services.js';
import { runCatalogContract } from './catalog-contract.js';

runCatalogContract(
  'redis',
  async (t) => {
    const url = await redisCatalogUrl(t);
    return url === undefined ? undefined : openCatalog(url);
  },
  { sharedUrl: redisCatalogUrl },
);

const run = promisify(execFile);

const artifact = {
  artifactId: 'tc1:a',
  indexHash: 'i',
  dataHash: 'd',
  totalBytes: 1,
  tensorCount: 1,
  indexJson: '{}',
  files: [],
  createdAt: 1,
};

test('redis catalog: URL forms; a bad one is a config error that never shows the password', () => {
  assert.deepEqual(parseRedisCatalogUrl('redis://u:p%40ss@10.0.0.5:6380/3?prefix=prod:tc:'), {
    host: '10.0.0.5',
    port: 6380,
    tls: false,
    username: 'u',
    password: 'p@ss',
    database: 3,
    prefix: 'prod:tc:',
    redacted: 'redis://u:***@10.0.0.5:6380/3?prefix=prod:tc:',
  });
  const tls = parseRedisCatalogUrl('rediss://:secret@[::1]');
  assert.deepEqual(
    [tls.host, tls.port, tls.tls, tls.username, tls.password, tls.database, tls.prefix],
    ['::1', 6379, true, undefined, 'secret', 0, 'tensorcast:'],
  );
  for (const bad of [
    'redis://:hunter22@h/x',
    'redis://:hunter22@h:6379?prefx=a',
    'redis://:hunter22@h?prefix=',
    'redis://:hunter22@:6379',
  ]) {
    assert.throws(
      () => parseRedisCatalogUrl(bad),
      (e: Error & { code?: string }) => e.code === 'TC_ERR_CONFIG' && !e.message.includes('hunter22'),
      bad,
    );
  }
});

test('redis catalog: every key lives under the prefix; two prefixes do not see each other', async (t) => {
  const urlA = await redisCatalogUrl(t);
  const urlB = await redisCatalogUrl(t);
  if (urlA === undefined || urlB === undefined) return;
  const a = await openCatalog(urlA);
  const b = await openCatalog(urlB);
  t.after(() => Promise.all([a.close(), b.close()]));
  await a.putArtifact(artifact);
  await a.bindKey('k', artifact.artifactId);
  await a.putReplica({ artifactId: artifact.artifactId, viewId: 'v', daemonId: 'd', tier: 'memory', bytes: 1 });
  await a.upsertDaemon({ daemonId: 'd', controlUrl: 'http://h:1', dataAddress: 'h:2', advertiseHost: 'h', state: 'up', heartbeatAt: 1 });
  assert.deepEqual([await b.listArtifacts(), await b.listKeys(), await b.listReplicas(), await b.listDaemons()], [[], [], [], []]);
  const prefix = new URL(urlA).searchParams.get('prefix')!;
  const raw = createClient({ url: urlA.split('?')[0]! });
  raw.on('error', () => undefined);
  await raw.connect();
  t.after(() => raw.destroy());
  const keys: string[] = [];
  for await (const batch of raw.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) keys.push(...batch);
  assert.deepEqual(keys.map((k) => k.slice(prefix.length).split(':')[0]).sort(), [
    'artifacts',
    'artifacts',
    'daemon-replicas',
    'daemons',
    'key',
    'keys',
    'replica',
    'replicas',
    'schema',
  ]);
});

test('redis catalog: a prefix holding another key layout version is refused', async (t) => {
  const url = await redisCatalogUrl(t);
  if (url === undefined) return;
  const raw = createClient({ url: url.split('?')[0]! });
  raw.on('error', () => undefined);
  await raw.connect();
  t.after(() => raw.destroy());
  await raw.set(`${new URL(url).searchParams.get('prefix')}schema`, '99');
  await assert.rejects(
    openCatalog(url),
    (e: Error & { code?: string }) => e.code === 'TC_ERR_BACKEND' && /layout version 99/.test(e.message),
  );
});

test('redis catalog: rediss:// speaks TLS and checks the server certificate', async (t) => {
  const server = await privateRedis(t, { tls: true, password: 'tls-pass-1' });
  if (server === undefined) return;
  const tls = server.tls!;
  // This process does not trust the self-signed certificate: the open fails, coded, without the password.
  await assert.rejects(
    openCatalog(`${tls.url}?prefix=tls:`),
    (e: Error & { code?: string }) => e.code === 'TC_ERR_BACKEND' && !e.message.includes('tls-pass-1'),
  );
  // A process that trusts it opens the catalog over TLS and writes to it.
  const script = `import { openCatalog } from ${JSON.stringify(new URL('../../src/catalog/open-catalog.js', import.meta.url).href)};
    const c = await openCatalog(process.argv[1]);
    await c.putArtifact(${JSON.stringify(artifact)});
    process.stdout.write(JSON.stringify((await c.listArtifacts()).map((a) => a.artifactId)));
    await c.close();`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script, `${tls.url}?prefix=tls:`], {
    env: { ...process.env, NODE_EXTRA_CA_CERTS: tls.caFile },
  });
  assert.deepEqual(JSON.parse(stdout), [artifact.artifactId]);
  // The same data, read over the plain port.
  const plain = await openCatalog(`${server.url}?prefix=tls:`);
  t.after(() => plain.close());
  assert.equal((await plain.getArtifact(artifact.artifactId))?.artifactId, artifact.artifactId);
});
