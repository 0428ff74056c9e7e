// Redis, PostgreSQL and S3 for tests. The server named by TENSORCAST_TEST_REDIS_URL / _POSTGRES_URL / _S3_URL
// when set; else one the harness starts for this test process (redis-server and postgres from PATH, s3rver
// from the npm dev dependencies; stopped when it exits); else a loud skip (a failure with
// TENSORCAST_REQUIRE_SERVICES=1). Each catalog or connector URL has a fresh namespace (?prefix=, ?schema=,
// a key prefix, a bucket), removed after the test. privateRedis/privatePostgres start a server of the test's
// own, to stop and start again (fault tests).

import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import type { TestContext } from 'node:test';
import pg from 'pg';
import { createClient } from 'redis';
import { createConnector } from '../../src/connectors/create-connector.js';
import { skipOrFail } from '../helpers/require.js';
import { postgresServerMissing, startPostgresServer, type PostgresServer } from './postgres-server.js';
import { findOnPath } from './server-process.js';
import { redisServerMissing, startRedisServer, type RedisServer, type RedisServerOptions } from './redis-server.js';
import { S3RVER_KEY, startS3Server } from './s3-server.js';

export type { PostgresServer } from './postgres-server.js';
export type { RedisServer } from './redis-server.js';

/** Environment variable naming a Redis server for tests (`redis://127.0.0.1:6379`). */
export const REDIS_URL_ENV = 'TENSORCAST_TEST_REDIS_URL';
/** Environment variable naming a PostgreSQL database for tests (`postgres://postgres@127.0.0.1:5432/test`). */
export const POSTGRES_URL_ENV = 'TENSORCAST_TEST_POSTGRES_URL';
/**
 * Environment variable naming an S3 connector URL of an existing bucket on an outside server
 * (`s3://bucket/prefix?endpoint=...&accessKeyId=...&secretAccessKey=...`); each test writes under a fresh
 * prefix below it. Unset: the harness runs s3rver and gives each test a fresh bucket.
 */
export const S3_URL_ENV = 'TENSORCAST_TEST_S3_URL';

type Started = { url: string } | { missing: string };
let sharedRedis: Promise<Started> | undefined;
let sharedPostgres: Promise<Started> | undefined;
let sharedS3: Promise<{ endpoint: string } | { failed: string }> | undefined;

/** Starts one server of a kind for the whole test process: it stops, and removes its directory, when the process exits. */
async function startShared(missing: string | undefined, start: () => Promise<RedisServer | PostgresServer>): Promise<Started> {
  if (missing !== undefined) return { missing };
  return { url: (await start()).url };
}

const token = (): string => randomBytes(6).toString('hex');

/** The base URL of Redis for this test, or undefined after skipping `t`. */
async function redisBase(t: TestContext): Promise<string | undefined> {
  const fromEnv = process.env[REDIS_URL_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  sharedRedis ??= startShared(redisServerMissing(), () => startRedisServer({ removeWhenDone: true }));
  const started = await sharedRedis;
  if ('url' in started) return started.url;
  skipOrFail(t, `SKIPPED: no Redis: ${REDIS_URL_ENV} is not set and ${started.missing} (install redis-server or set ${REDIS_URL_ENV})`);
  return undefined;
}

/** The base URL of PostgreSQL for this test, or undefined after skipping `t`. */
async function postgresBase(t: TestContext): Promise<string | undefined> {
  const fromEnv = process.env[POSTGRES_URL_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  sharedPostgres ??= startShared(postgresServerMissing(), () => startPostgresServer({ removeWhenDone: true }));
  const started = await sharedPostgres;
  if ('url' in started) return started.url;
  skipOrFail(
    t,
    `SKIPPED: no PostgreSQL: ${POSTGRES_URL_ENV} is not set and ${started.missing} (install PostgreSQL or set ${POSTGRES_URL_ENV})`,
  );
  return undefined;
}

/** `base` with query parameter `name` set to `value`. */
function withParam(base: string, name: string, value: string): string {
  const url = new URL(base);
  url.searchParams.set(name, value);
  return url.toString();
}

/** Deletes every key under `prefix` (SCAN + UNLINK). */
async function dropRedisPrefix(base: string, prefix: string): Promise<void> {
  const url = new URL(base);
  url.search = '';
  const client = createClient({ url: url.toString() });
  client.on('error', () => undefined);
  await client.connect();
  try {
    for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
      if (keys.length > 0) await client.unlink(keys);
    }
  } finally {
    client.destroy();
  }
}

/** Drops `schema` and everything in it. */
async function dropPostgresSchema(base: string, schema: string): Promise<void> {
  const url = new URL(base);
  url.searchParams.delete('schema');
  const client = new pg.Client({ connectionString: url.toString() });
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

/**
 * A Redis catalog URL with a fresh key prefix, whose keys are deleted after `t`; undefined after skipping
 * `t` when there is no Redis.
 *
 * @example
 * const url = await redisCatalogUrl(t);
 * if (url === undefined) return;
 */
export async function redisCatalogUrl(t: TestContext): Promise<string | undefined> {
  const base = await redisBase(t);
  if (base === undefined) return undefined;
  const prefix = `tctest:${token()}:`;
  t.after(() => dropRedisPrefix(base, prefix));
  return withParam(base, 'prefix', prefix);
}

/**
 * A PostgreSQL catalog URL with a fresh schema, dropped after `t`; undefined after skipping `t` when there is
 * no PostgreSQL.
 */
export async function postgresCatalogUrl(t: TestContext): Promise<string | undefined> {
  const base = await postgresBase(t);
  if (base === undefined) return undefined;
  const schema = `tctest_${token()}`;
  t.after(() => dropPostgresSchema(base, schema));
  return withParam(base, 'schema', schema);
}

/**
 * A redis-server of this test alone (always started here, whatever the environment says), stopped and
 * removed after `t`; undefined after skipping `t` when redis-server is not on PATH.
 *
 * @example
 * const server = await privateRedis(t, { password: 's3cret', persistent: true });
 * await server.stop(); ... await server.start();
 */
export async function privateRedis(t: TestContext, options: RedisServerOptions = {}): Promise<RedisServer | undefined> {
  const missing =
    redisServerMissing() ?? (options.tls === true && findOnPath('openssl') === undefined ? 'openssl is not on PATH' : undefined);
  if (missing !== undefined) {
    skipOrFail(t, `SKIPPED: this test runs its own Redis, and ${missing}`);
    return undefined;
  }
  const server = await startRedisServer(options);
  t.after(async () => {
    await server.stop();
    rmSync(server.dir, { recursive: true, force: true });
  });
  return server;
}

/**
 * A PostgreSQL cluster of this test alone, stopped and removed after `t`; undefined after skipping `t` when
 * none can be started here.
 */
export async function privatePostgres(t: TestContext): Promise<PostgresServer | undefined> {
  const missing = postgresServerMissing();
  if (missing !== undefined) {
    skipOrFail(t, `SKIPPED: this test runs its own PostgreSQL, and ${missing}`);
    return undefined;
  }
  const server = await startPostgresServer();
  t.after(async () => {
    await server.stop();
    rmSync(server.dir, { recursive: true, force: true });
  });
  return server;
}

/**
 * A Redis connector URL (`redis://host:port/<fresh prefix>[?db=N]`) whose keys are deleted after `t`;
 * undefined after skipping `t` when there is no Redis.
 *
 * @example
 * const url = await redisConnectorUrl(t);
 * if (url === undefined) return;
 * const c = await createConnector(url, { chunkBytes: 64 * 1024 });
 */
export async function redisConnectorUrl(t: TestContext): Promise<string | undefined> {
  const base = await redisBase(t);
  if (base === undefined) return undefined;
  const prefix = `tctest-${token()}`;
  t.after(() => dropRedisPrefix(base, `${prefix}/`));
  const url = new URL(base);
  const db = url.pathname.replace(/^\//, '');
  url.pathname = `/${prefix}`;
  url.search = '';
  if (/^\d+$/.test(db)) url.searchParams.set('db', db);
  return url.toString();
}

/** The endpoint of the s3rver of this test process (started on first use), or why it did not start. */
function sharedS3Server(): Promise<{ endpoint: string } | { failed: string }> {
  sharedS3 ??= startS3Server({ removeWhenDone: true }).then(
    (server) => ({ endpoint: server.endpoint }),
    (error: unknown) => ({ failed: error instanceof Error ? error.message : String(error) }),
  );
  return sharedS3;
}

/** `url` (an s3:// connector URL) with `segment` appended to its key prefix. */
function s3UrlBelow(url: string, segment: string): string {
  const match = /^(s3:\/\/[^/?#]+)([^?#]*)(\?.*)?$/i.exec(url);
  if (match === null) throw new Error(`${S3_URL_ENV} is not an s3:// URL`);
  const path = (match[2] ?? '').replace(/\/+$/, '');
  return `${match[1]}${path}/${segment}${match[3] ?? ''}`;
}

/**
 * The s3rver endpoint and its default key, or undefined after skipping `t` when it could not start (fault
 * tests build URLs of missing buckets and wrong keys from it).
 */
export async function s3TestServer(t: TestContext): Promise<{ endpoint: string; key: string } | undefined> {
  const started = await sharedS3Server();
  if ('endpoint' in started) return { endpoint: started.endpoint, key: S3RVER_KEY };
  skipOrFail(t, `SKIPPED: the S3-compatible test server (s3rver) did not start: ${started.failed}`);
  return undefined;
}

/**
 * An S3 connector URL under a fresh namespace: with ${S3_URL_ENV}, a fresh prefix in that bucket (emptied
 * after `t`); else a fresh bucket on the harness's s3rver, with the prefix `model`. Undefined after skipping
 * `t` when s3rver did not start.
 *
 * @example
 * const url = await s3ConnectorUrl(t);
 * if (url === undefined) return;
 */
export async function s3ConnectorUrl(t: TestContext): Promise<string | undefined> {
  const fromEnv = process.env[S3_URL_ENV];
  if (fromEnv !== undefined && fromEnv !== '') {
    const url = s3UrlBelow(fromEnv, `tctest-${token()}`);
    t.after(async () => {
      const c = await createConnector(url);
      try {
        for (const o of await c.list('')) await c.delete(o.key);
      } finally {
        await c.close();
      }
    });
    return url;
  }
  const server = await s3TestServer(t);
  if (server === undefined) return undefined;
  const bucket = `tctest-${token()}`;
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  // Loaded here, not at the top: most tests that use this file never touch S3.
  const { CreateBucketCommand, S3Client } = await import('@aws-sdk/client-s3');
  const client = new S3Client({
    endpoint: server.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: server.key, secretAccessKey: server.key },
  });
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
  // The bucket goes with the server's directory when the test process exits.
  return `s3://${bucket}/model?endpoint=${server.endpoint}&region=us-east-1&accessKeyId=${server.key}&secretAccessKey=${server.key}`;
}
