// The Redis catalog, on node-redis (the official `redis` package). Every change that reads before it writes
// is one Lua script (redis-scripts.ts), atomic on the server; the key layout is in redis-keys.ts. The client
// never queues commands while disconnected and reconnects by itself with capped backoff, so during an outage
// every call fails fast with TC_ERR_BACKEND and the same object works again once the server is back.

import { tcError } from '../../core/errors.js';
import { validateKey } from '../../core/keys.js';
import type {
  ArtifactRecord,
  Catalog,
  DaemonRecord,
  KeyBinding,
  ListedReplica,
  ReplicaKey,
  ReplicaRecord,
  ReplicaState,
  ReplicaTier,
} from '../catalog.js';
import { checkFetchDelta } from '../catalog-checks.js';
import { DEFAULT_CALL_TIMEOUT_MS, type OpenCatalogOptions } from '../catalog-options.js';
import { parseReplicaRowId, RedisKeys, REDIS_LAYOUT_VERSION, replicaRange, replicaRowId } from './redis-keys.js';
import { CATALOG_SCRIPTS } from './redis-scripts.js';
import { closeRedisConnection, openRedisConnection, redisCall, type RedisConnectionClient } from './redis-connection.js';
import { parseRedisCatalogUrl, type RedisCatalogUrl } from './redis-url.js';

type CatalogClient = RedisConnectionClient<typeof CATALOG_SCRIPTS>;

const text = (v: unknown): string => (typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString('utf8') : String(v));
const strings = (reply: unknown): string[] => (Array.isArray(reply) ? reply.map(text) : []);

const toArtifact = (json: string): ArtifactRecord => {
  const a = JSON.parse(json) as ArtifactRecord;
  return {
    artifactId: a.artifactId,
    indexHash: a.indexHash,
    dataHash: a.dataHash,
    totalBytes: a.totalBytes,
    tensorCount: a.tensorCount,
    indexJson: a.indexJson,
    files: a.files,
    createdAt: a.createdAt,
  };
};
const toDaemon = (json: string): DaemonRecord => {
  const d = JSON.parse(json) as DaemonRecord;
  return {
    daemonId: d.daemonId,
    controlUrl: d.controlUrl,
    dataAddress: d.dataAddress,
    advertiseHost: d.advertiseHost,
    state: d.state,
    heartbeatAt: d.heartbeatAt,
  };
};
const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

/**
 * A catalog in Redis (standalone server; one logical database, keys under a prefix).
 *
 * @example const catalog = await RedisCatalog.open('redis://:secret@10.0.0.5:6379/0?prefix=prod:tc:');
 */
export class RedisCatalog implements Catalog {
  private constructor(
    private readonly client: CatalogClient,
    private readonly url: RedisCatalogUrl,
    private readonly k: RedisKeys,
    private readonly callTimeoutMs: number,
  ) {}

  /**
   * Connects to the server named by `url` and checks the key layout's version. The first connection must
   * succeed within the call timeout; after that, a lost connection is re-established in the background.
   *
   * @throws TC_ERR_CONFIG for a bad URL; TC_ERR_BACKEND when the server cannot be reached, refuses the
   * credentials, or holds a newer layout under the prefix.
   */
  static async open(url: string, options: OpenCatalogOptions = {}): Promise<RedisCatalog> {
    const parsed = parseRedisCatalogUrl(url);
    const callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    const k = new RedisKeys(parsed.prefix);
    // Connection events are logged once open has succeeded.
    let opened = false;
    const client = await openRedisConnection({
      url: parsed,
      callTimeoutMs,
      scripts: CATALOG_SCRIPTS,
      names: { field: 'catalog', what: 'catalog', log: () => (opened ? options.log : undefined) },
      check: (c) => checkLayout(c, k, parsed),
    });
    opened = true;
    return new RedisCatalog(client, parsed, k, callTimeoutMs);
  }

  /** Runs one call: any failure, or no answer within the call timeout, becomes TC_ERR_BACKEND. */
  private call<T>(op: string, fn: () => Promise<T>): Promise<T> {
    return redisCall(op, this.url, this.callTimeoutMs, fn);
  }

  upsertDaemon(d: DaemonRecord): Promise<void> {
    const record: DaemonRecord = {
      daemonId: d.daemonId,
      controlUrl: d.controlUrl,
      dataAddress: d.dataAddress,
      advertiseHost: d.advertiseHost,
      state: d.state,
      heartbeatAt: d.heartbeatAt,
    };
    return this.call('upsertDaemon', async () => void (await this.client.hSet(this.k.daemons, d.daemonId, JSON.stringify(record))));
  }

  listDaemons(): Promise<DaemonRecord[]> {
    return this.call('listDaemons', async () =>
      (await this.client.hVals(this.k.daemons)).map((v) => toDaemon(text(v))).sort((a, b) => byteOrder(a.daemonId, b.daemonId)),
    );
  }

  putArtifact(a: ArtifactRecord): Promise<boolean> {
    const record: ArtifactRecord = {
      artifactId: a.artifactId,
      indexHash: a.indexHash,
      dataHash: a.dataHash,
      totalBytes: a.totalBytes,
      tensorCount: a.tensorCount,
      indexJson: a.indexJson,
      files: [...a.files],
      createdAt: a.createdAt,
    };
    return this.call(
      'putArtifact',
      async () =>
        Number(
          await this.client.putArtifact(
            this.k.artifacts,
            this.k.artifactsByCreated,
            a.artifactId,
            JSON.stringify(record),
            String(a.createdAt),
          ),
        ) === 1,
    );
  }

  getArtifact(artifactId: string): Promise<ArtifactRecord | undefined> {
    return this.call('getArtifact', async () => {
      const json = await this.client.hGet(this.k.artifacts, artifactId);
      return json === null || json === undefined ? undefined : toArtifact(text(json));
    });
  }

  listArtifacts(): Promise<ArtifactRecord[]> {
    return this.call('listArtifacts', async () =>
      strings(await this.client.listArtifacts(this.k.artifacts, this.k.artifactsByCreated)).map(toArtifact),
    );
  }

  async bindKey(key: string, artifactId: string, expectedVersion?: number | null): Promise<KeyBinding> {
    validateKey(key);
    const mode = expectedVersion === undefined ? 'any' : expectedVersion === null ? 'create' : 'version';
    const now = Date.now();
    const reply = await this.call('bindKey', async () =>
      strings(
        await this.client.bindKey(
          this.k.artifacts,
          this.k.key(key),
          this.k.keys,
          artifactId,
          mode,
          String(expectedVersion ?? ''),
          String(now),
          key,
        ),
      ),
    );
    const [outcome, version] = reply;
    if (outcome === 'ok') return { key, artifactId, version: Number(version), updatedAt: now };
    if (outcome === 'not_found') throw tcError('TC_ERR_NOT_FOUND', `no artifact ${artifactId}`, { details: { artifactId } });
    const why =
      version === undefined
        ? `expected version ${expectedVersion} but the key does not exist`
        : expectedVersion === null
          ? `already bound (version ${version})`
          : `expected version ${expectedVersion} but it is at ${version}`;
    throw tcError('TC_ERR_CONFLICT', `key '${key}': ${why}`, { details: { key } });
  }

  resolveKey(key: string): Promise<KeyBinding | undefined> {
    return this.call('resolveKey', async () => {
      const [artifactId, version, updatedAt] = await this.client.hmGet(this.k.key(key), ['artifactId', 'version', 'updatedAt']);
      if (artifactId === null || artifactId === undefined) return undefined;
      return { key, artifactId: text(artifactId), version: Number(version), updatedAt: Number(updatedAt) };
    });
  }

  listKeys(): Promise<KeyBinding[]> {
    return this.call('listKeys', async () => {
      const flat = strings(await this.client.listKeys(this.k.keys, this.k.keyPrefix));
      const out: KeyBinding[] = [];
      for (let i = 0; i + 3 < flat.length; i += 4) {
        out.push({ key: flat[i]!, artifactId: flat[i + 1]!, version: Number(flat[i + 2]), updatedAt: Number(flat[i + 3]) });
      }
      return out;
    });
  }

  async deleteKey(key: string, expectedVersion?: number): Promise<boolean> {
    const [outcome, version] = await this.call('deleteKey', async () =>
      strings(await this.client.deleteKey(this.k.key(key), this.k.keys, key, expectedVersion === undefined ? '' : String(expectedVersion))),
    );
    if (outcome === 'conflict') {
      throw tcError('TC_ERR_CONFLICT', `key '${key}': expected version ${expectedVersion} but it is at ${version}`, { details: { key } });
    }
    return outcome === 'deleted';
  }

  putReplica(r: ReplicaRecord): Promise<void> {
    return this.call('putReplica', async () => {
      const row = replicaRowId(r);
      await this.client.putReplica(
        this.k.replicas,
        this.k.replica(row),
        this.k.daemonReplicas(r.daemonId),
        row,
        String(r.bytes),
        r.state ?? 'published',
      );
    });
  }

  setReplicaState(r: ReplicaKey, state: ReplicaState): Promise<boolean> {
    return this.call(
      'setReplicaState',
      async () => Number(await this.client.setReplicaState(this.k.replica(replicaRowId(r)), state)) === 1,
    );
  }

  adjustReplicaFetches(r: ReplicaKey, delta: number): Promise<number | undefined> {
    return this.call('adjustReplicaFetches', async () => {
      checkFetchDelta(delta);
      const n = await this.client.adjustReplicaFetches(this.k.replica(replicaRowId(r)), String(delta));
      return n === null || n === undefined ? undefined : Number(n);
    });
  }

  removeReplica(r: ReplicaKey): Promise<void> {
    return this.call('removeReplica', async () => {
      const row = replicaRowId(r);
      await this.client.removeReplica(this.k.replicas, this.k.replica(row), this.k.daemonReplicas(r.daemonId), row);
    });
  }

  listReplicas(artifactId?: string): Promise<ListedReplica[]> {
    return this.call('listReplicas', async () => {
      const [min, max] = replicaRange(artifactId);
      const flat = strings(await this.client.listReplicas(this.k.replicas, this.k.replicaPrefix, min, max));
      const out: ListedReplica[] = [];
      for (let i = 0; i + 3 < flat.length; i += 4) {
        out.push({
          ...parseReplicaRowId(flat[i]!),
          bytes: Number(flat[i + 1]),
          state: flat[i + 2] as ReplicaState,
          activeFetches: Number(flat[i + 3]),
        });
      }
      return out;
    });
  }

  removeDaemonReplicas(daemonId: string, tiers: readonly ReplicaTier[]): Promise<number> {
    return this.call('removeDaemonReplicas', async () =>
      tiers.length === 0
        ? 0
        : Number(await this.client.removeDaemonReplicas(this.k.replicas, this.k.daemonReplicas(daemonId), this.k.replicaPrefix, ...tiers)),
    );
  }

  /** Closes the connection; calls in flight finish first when the server answers (bounded by the call timeout). */
  close(): Promise<void> {
    return closeRedisConnection(this.client, this.callTimeoutMs);
  }
}

/** Writes the key layout's version under the prefix if absent, and refuses another version. */
async function checkLayout(client: CatalogClient, k: RedisKeys, url: RedisCatalogUrl): Promise<void> {
  await client.set(k.schema, String(REDIS_LAYOUT_VERSION), { condition: 'NX' });
  const version = Number(await client.get(k.schema));
  if (version !== REDIS_LAYOUT_VERSION) {
    throw tcError(
      'TC_ERR_BACKEND',
      `catalog ${url.redacted}: key layout version ${version} under prefix '${url.prefix}' is not the one this tensorcast uses (${REDIS_LAYOUT_VERSION})`,
    );
  }
}
