// The Lua scripts of the Redis catalog. Each runs atomically on the server (EVALSHA, EVAL once after a
// NOSCRIPT), so every check-then-write happens in one step: no read-modify-write from the client. The keys
// they touch are described in redis-keys.ts; KEYS holds the fixed ones, ARGV the values and key prefixes.

import { defineScript } from 'redis';

/** Every argument goes to Redis as a string, in order. */
const parseArgs = (parser: { push(...args: string[]): void }, ...args: string[]): void => parser.push(...args);
const asIs = (reply: unknown): unknown => reply;

interface ScriptConfig {
  SCRIPT: string;
  NUMBER_OF_KEYS: number;
  parseCommand: typeof parseArgs;
  transformReply: typeof asIs;
}
/** One script: its Lua text and SHA1; the client sends the first NUMBER_OF_KEYS arguments as KEYS. */
export type CatalogScript = ScriptConfig & { readonly SHA1: string };

const script = (numberOfKeys: number, lua: string): CatalogScript =>
  defineScript({ SCRIPT: lua, NUMBER_OF_KEYS: numberOfKeys, parseCommand: parseArgs, transformReply: asIs });

/**
 * KEYS: artifacts hash, artifacts-by-creation zset. ARGV: id, JSON, createdAt.
 * Reply 1 when stored, 0 when the artifact existed (nothing changes).
 */
const putArtifact = script(
  2,
  `if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
   redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
   return 1`,
);

/** KEYS: artifacts hash, artifacts-by-creation zset. Reply: the JSON records by createdAt, then id. */
const listArtifacts = script(
  2,
  `local out = {}
   for i, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do out[i] = redis.call('HGET', KEYS[1], id) end
   return out`,
);

/**
 * KEYS: artifacts hash, the key's hash, keys zset. ARGV: artifactId, mode (any | create | version),
 * expected version, now, key.
 * Reply: {'ok', version} | {'conflict', current version or nothing} | {'not_found'}.
 */
const bindKey = script(
  3,
  `if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return {'not_found'} end
   local current = redis.call('HGET', KEYS[2], 'version')
   if not current then
     if ARGV[2] == 'version' then return {'conflict'} end
     redis.call('HSET', KEYS[2], 'artifactId', ARGV[1], 'version', 1, 'updatedAt', ARGV[4])
     redis.call('ZADD', KEYS[3], 0, ARGV[5])
     return {'ok', '1'}
   end
   if ARGV[2] == 'create' or (ARGV[2] == 'version' and current ~= ARGV[3]) then return {'conflict', current} end
   local version = redis.call('HINCRBY', KEYS[2], 'version', 1)
   redis.call('HSET', KEYS[2], 'artifactId', ARGV[1], 'updatedAt', ARGV[4])
   return {'ok', tostring(version)}`,
);

/**
 * KEYS: the key's hash, keys zset. ARGV: key, expected version ('' for any).
 * Reply: {'deleted'} | {'missing'} | {'conflict', current version}.
 */
const deleteKey = script(
  2,
  `local current = redis.call('HGET', KEYS[1], 'version')
   if not current then return {'missing'} end
   if ARGV[2] ~= '' and current ~= ARGV[2] then return {'conflict', current} end
   redis.call('DEL', KEYS[1])
   redis.call('ZREM', KEYS[2], ARGV[1])
   return {'deleted'}`,
);

/** KEYS: keys zset. ARGV: prefix of a key's hash. Reply: flat [key, artifactId, version, updatedAt, ...] by key. */
const listKeys = script(
  1,
  `local out = {}
   for _, name in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
     local f = redis.call('HMGET', ARGV[1] .. name, 'artifactId', 'version', 'updatedAt')
     out[#out + 1] = name
     out[#out + 1] = f[1]
     out[#out + 1] = f[2]
     out[#out + 1] = f[3]
   end
   return out`,
);

/**
 * KEYS: replicas zset, the row's hash, the daemon's row set. ARGV: row id, bytes, state.
 * Creates the row with no active fetches, or updates bytes and state and keeps its counter.
 */
const putReplica = script(
  3,
  `redis.call('HSET', KEYS[2], 'bytes', ARGV[2], 'state', ARGV[3])
   redis.call('HSETNX', KEYS[2], 'fetches', 0)
   redis.call('ZADD', KEYS[1], 0, ARGV[1])
   redis.call('SADD', KEYS[3], ARGV[1])
   return 1`,
);

/** KEYS: the row's hash. ARGV: state. Reply 1, or 0 when there is no such row (nothing is created). */
const setReplicaState = script(
  1,
  `if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
   redis.call('HSET', KEYS[1], 'state', ARGV[1])
   return 1`,
);

/** KEYS: the row's hash. ARGV: delta. Reply: the new counter (never below 0), or nil when there is no such row. */
const adjustReplicaFetches = script(
  1,
  `if redis.call('EXISTS', KEYS[1]) == 0 then return false end
   local n = redis.call('HINCRBY', KEYS[1], 'fetches', ARGV[1])
   if n < 0 then
     redis.call('HSET', KEYS[1], 'fetches', 0)
     n = 0
   end
   return n`,
);

/** KEYS: replicas zset, the row's hash, the daemon's row set. ARGV: row id. */
const removeReplica = script(
  3,
  `redis.call('DEL', KEYS[2])
   redis.call('ZREM', KEYS[1], ARGV[1])
   redis.call('SREM', KEYS[3], ARGV[1])
   return 1`,
);

/**
 * KEYS: replicas zset, the daemon's row set. ARGV: prefix of a row's hash, then the tiers.
 * Removes the daemon's rows of those tiers (the tier is a row id's last part, after a NUL); reply: how many.
 */
const removeDaemonReplicas = script(
  2,
  `local tiers = {}
   for i = 2, #ARGV do tiers[ARGV[i]] = true end
   local removed = 0
   for _, row in ipairs(redis.call('SMEMBERS', KEYS[2])) do
     if tiers[string.match(row, '%z([^%z]*)$')] then
       redis.call('DEL', ARGV[1] .. row)
       redis.call('ZREM', KEYS[1], row)
       redis.call('SREM', KEYS[2], row)
       removed = removed + 1
     end
   end
   return removed`,
);

/**
 * KEYS: replicas zset. ARGV: prefix of a row's hash, lexicographic range (min, max) of row ids.
 * Reply: flat [row id, bytes, state, fetches, ...] in row-id order.
 */
const listReplicas = script(
  1,
  `local out = {}
   for _, row in ipairs(redis.call('ZRANGEBYLEX', KEYS[1], ARGV[2], ARGV[3])) do
     local f = redis.call('HMGET', ARGV[1] .. row, 'bytes', 'state', 'fetches')
     out[#out + 1] = row
     out[#out + 1] = f[1]
     out[#out + 1] = f[2]
     out[#out + 1] = f[3]
   end
   return out`,
);

/** The scripts, by the name the client exposes them under (`client.bindKey(...)`). */
export const CATALOG_SCRIPTS = {
  putArtifact,
  listArtifacts,
  bindKey,
  deleteKey,
  listKeys,
  putReplica,
  setReplicaState,
  adjustReplicaFetches,
  removeReplica,
  removeDaemonReplicas,
  listReplicas,
};
