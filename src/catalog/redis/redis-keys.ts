// The Redis catalog's key layout, all under one prefix (default `tensorcast:`):
//   <p>schema                 string  layout version
//   <p>daemons                hash    daemonId -> DaemonRecord JSON
//   <p>artifacts              hash    artifactId -> ArtifactRecord JSON (written once)
//   <p>artifacts:by-created   zset    artifactId scored by createdAt (equal scores list by id)
//   <p>keys                   zset    key names, score 0 (lexicographic order)
//   <p>key:<key>              hash    artifactId, version, updatedAt
//   <p>replicas               zset    replica row ids, score 0 (lexicographic order = listing order)
//   <p>replica:<row>          hash    bytes, state, fetches (the active-fetch counter)
//   <p>daemon-replicas:<id>   set     row ids of one daemon (removeDaemonReplicas)
// A row id is `artifactId NUL viewId NUL daemonId NUL tier` (viewId '' for the canonical bytes), so byte
// order of row ids is the order of (artifact, view, daemon, tier) and one artifact's rows are one range.

import { tcError } from '../../core/errors.js';
import type { ReplicaKey, ReplicaTier } from '../catalog.js';

/** The version of the layout above, kept in `<p>schema`. */
export const REDIS_LAYOUT_VERSION = 1;

const SEP = '\0';

/** Key names of one catalog namespace. */
export class RedisKeys {
  readonly schema: string;
  readonly daemons: string;
  readonly artifacts: string;
  readonly artifactsByCreated: string;
  readonly keys: string;
  /** Prefix of `key:<key>` hashes (Lua scripts append the key). */
  readonly keyPrefix: string;
  readonly replicas: string;
  /** Prefix of `replica:<row>` hashes (Lua scripts append the row id). */
  readonly replicaPrefix: string;

  constructor(readonly prefix: string) {
    this.schema = `${prefix}schema`;
    this.daemons = `${prefix}daemons`;
    this.artifacts = `${prefix}artifacts`;
    this.artifactsByCreated = `${prefix}artifacts:by-created`;
    this.keys = `${prefix}keys`;
    this.keyPrefix = `${prefix}key:`;
    this.replicas = `${prefix}replicas`;
    this.replicaPrefix = `${prefix}replica:`;
  }

  key(name: string): string {
    return this.keyPrefix + name;
  }

  replica(row: string): string {
    return this.replicaPrefix + row;
  }

  daemonReplicas(daemonId: string): string {
    return `${this.prefix}daemon-replicas:${daemonId}`;
  }
}

/**
 * The row id of a replica.
 *
 * @throws TC_ERR_INVALID_ARGUMENT when an id holds a NUL character (it separates the parts).
 */
export function replicaRowId(r: ReplicaKey): string {
  const parts = [r.artifactId, r.viewId ?? '', r.daemonId, r.tier];
  if (parts.some((p) => p.includes(SEP))) {
    throw tcError('TC_ERR_INVALID_ARGUMENT', 'a replica id part holds a NUL character', { details: { artifactId: r.artifactId } });
  }
  return parts.join(SEP);
}

/** The parts of a row id made by {@link replicaRowId}. */
export function parseReplicaRowId(row: string): ReplicaKey {
  const [artifactId = '', viewId = '', daemonId = '', tier = ''] = row.split(SEP);
  return { artifactId, viewId: viewId === '' ? undefined : viewId, daemonId, tier: tier as ReplicaTier };
}

/** The ZRANGEBYLEX range of one artifact's rows (every row id when `artifactId` is undefined). */
export function replicaRange(artifactId: string | undefined): [string, string] {
  if (artifactId === undefined) return ['-', '+'];
  if (artifactId.includes(SEP)) return ['[\x01', '(\x01']; // an empty range: no id holds a NUL
  return [`[${artifactId}${SEP}`, `(${artifactId}\x01`];
}
