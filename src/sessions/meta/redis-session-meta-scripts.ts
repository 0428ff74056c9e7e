// The Lua scripts of the Redis session metadata store. Each runs atomically on the server, so a lease or an
// update is decided and written in one step however many servers share the sessions; the clock is the server's
// (TIME, in ms). Key layout (under the URL's prefix P):
//   P sessions:ids        zset of session ids (score 0: ordered by id), the index `list` pages through
//   P sessions:s:<id>     hash: the record's fields, named as the SQL columns (session-meta-rows.ts)
// The rules are session-meta-rules.ts's: a lease is current when its owner and fence are the hash's; an acquire
// by another owner while the lease is live is refused; fences only grow (HINCRBY).

import { defineScript, type RedisArgument } from 'redis';

const parseArgs = (parser: { push(...args: RedisArgument[]): void }, ...args: RedisArgument[]): void => parser.push(...args);
const asIs = (reply: unknown): unknown => reply;
const script = (numberOfKeys: number, lua: string) =>
  defineScript({ SCRIPT: lua, NUMBER_OF_KEYS: numberOfKeys, parseCommand: parseArgs, transformReply: asIs });

/** The server's clock in ms, first line of every script. */
const NOW = `local t = redis.call('TIME')
   local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** `current(owner, fence)`: whether the lease named is the hash's (KEYS[1]) current lease. */
const CURRENT = `local function current(owner, fence)
     local f = redis.call('HMGET', KEYS[1], 'lease_owner', 'lease_fence')
     return f[1] == owner and f[2] == fence
   end`;

/** KEYS: ids zset, the session's hash. ARGV: id, geometry json, geometry hash. Reply: {'exists'} | {'ok', now}. */
const createSession = script(
  2,
  `${NOW}
   if redis.call('EXISTS', KEYS[2]) == 1 then return {'exists'} end
   redis.call('HSET', KEYS[2], 'session_id', ARGV[1], 'geometry_json', ARGV[2], 'geometry_hash', ARGV[3], 'tokens', 0,
     'entries_json', '[]', 'version', 0, 'fence', 0, 'created_at', now, 'updated_at', now)
   redis.call('ZADD', KEYS[1], 0, ARGV[1])
   return {'ok', now}`,
);

/** KEYS: ids zset. ARGV: lex min ('-' or '(' .. after), limit, hash key prefix. Reply: a flat HGETALL per session. */
const listSessions = script(
  1,
  `local out = {}
   for _, id in ipairs(redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], '+', 'LIMIT', 0, tonumber(ARGV[2]))) do
     local h = redis.call('HGETALL', ARGV[3] .. id)
     if #h > 0 then out[#out + 1] = h end
   end
   return out`,
);

/**
 * KEYS: the session's hash. ARGV: owner, ttlMs.
 * Reply: {'missing'} | {'held', holder, expiresAt} | {'ok', fence, expiresAt}.
 */
const acquireLease = script(
  1,
  `${NOW}
   if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
   local f = redis.call('HMGET', KEYS[1], 'lease_owner', 'lease_expires_at')
   if f[1] and f[1] ~= ARGV[1] and tonumber(f[2]) > now then return {'held', f[1], f[2]} end
   local fence = redis.call('HINCRBY', KEYS[1], 'fence', 1)
   local expiresAt = now + tonumber(ARGV[2])
   redis.call('HSET', KEYS[1], 'lease_owner', ARGV[1], 'lease_fence', fence, 'lease_expires_at', expiresAt)
   return {'ok', fence, expiresAt}`,
);

/** KEYS: the session's hash. ARGV: owner, fence, ttlMs. Reply: {'missing'} | {'stale', fence} | {'ok', expiresAt}. */
const renewLease = script(
  1,
  `${NOW}
   ${CURRENT}
   if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
   if not current(ARGV[1], ARGV[2]) then return {'stale', redis.call('HGET', KEYS[1], 'fence')} end
   local expiresAt = now + tonumber(ARGV[3])
   redis.call('HSET', KEYS[1], 'lease_expires_at', expiresAt)
   return {'ok', expiresAt}`,
);

/** KEYS: the session's hash. ARGV: owner, fence. Reply: 1 when released, 0 when the lease was not current. */
const releaseLease = script(
  1,
  `${CURRENT}
   if redis.call('EXISTS', KEYS[1]) == 0 or not current(ARGV[1], ARGV[2]) then return 0 end
   redis.call('HDEL', KEYS[1], 'lease_owner', 'lease_fence', 'lease_expires_at')
   return 1`,
);

/**
 * KEYS: the session's hash. ARGV: owner, fence, expected version, entries json, tokens.
 * Reply: {'missing'} | {'stale', fence} | {'version', version} | {'ok', HGETALL...}.
 */
const updateSession = script(
  1,
  `${NOW}
   ${CURRENT}
   if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
   if not current(ARGV[1], ARGV[2]) then return {'stale', redis.call('HGET', KEYS[1], 'fence')} end
   local version = redis.call('HGET', KEYS[1], 'version')
   if version ~= ARGV[3] then return {'version', version} end
   redis.call('HSET', KEYS[1], 'entries_json', ARGV[4], 'tokens', ARGV[5], 'version', tonumber(version) + 1, 'updated_at', now)
   return {'ok', redis.call('HGETALL', KEYS[1])}`,
);

/**
 * KEYS: ids zset, the session's hash. ARGV: id, owner ('' without a lease), fence.
 * Reply: {'missing'} | {'stale', fence} | {'held', holder, expiresAt} | {'ok', HGETALL...}.
 */
const removeSession = script(
  2,
  `${NOW}
   if redis.call('EXISTS', KEYS[2]) == 0 then return {'missing'} end
   local f = redis.call('HMGET', KEYS[2], 'lease_owner', 'lease_fence', 'lease_expires_at', 'fence')
   if ARGV[2] ~= '' then
     if f[1] ~= ARGV[2] or f[2] ~= ARGV[3] then return {'stale', f[4]} end
   elseif f[1] and tonumber(f[3]) > now then
     return {'held', f[1], f[3]}
   end
   local h = redis.call('HGETALL', KEYS[2])
   redis.call('DEL', KEYS[2])
   redis.call('ZREM', KEYS[1], ARGV[1])
   return {'ok', h}`,
);

/** The scripts, for the client's `scripts` option. */
export const SESSION_SCRIPTS = { createSession, listSessions, acquireLease, renewLease, releaseLease, updateSession, removeSession };
