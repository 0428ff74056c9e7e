// The Lua scripts of the Redis handshake store. Each runs atomically on the server, so a publish, renew or
// remove decides and writes in one step however many listeners share the server; the clock is the server's
// (TIME, in ms). Key layout (under the catalog prefix P):
//   P handshake:engines               zset of engine ids (score 0: ordered by id), the engine index
//   P handshake:ranks:<engine>        set of the engine's rank members `tp/dp`
//   P handshake:rank:<engine>:<tp/dp> hash: incarnation, hash, tpSize, payload, bytes, publishedAt, expiresAt;
//                                      the key itself expires at expiresAt + grace (then it is forgotten)
// Every remembered rank of an engine shares one incarnation and one hash: a publish that changes either
// drops the others first. Scripts reach the rank keys of an engine through the prefix in ARGV (standalone).

import { defineScript, type RedisArgument } from 'redis';

/** Every argument goes to Redis as given (strings, or a Buffer for the payload), in order. */
const parseArgs = (parser: { push(...args: RedisArgument[]): void }, ...args: RedisArgument[]): void => parser.push(...args);
const asIs = (reply: unknown): unknown => reply;

const script = (numberOfKeys: number, lua: string) =>
  defineScript({ SCRIPT: lua, NUMBER_OF_KEYS: numberOfKeys, parseCommand: parseArgs, transformReply: asIs });

/** The server's clock in ms, first line of every script. */
const NOW = `local t = redis.call('TIME')
   local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/**
 * KEYS: engines zset, the engine's ranks set, the rank's hash. ARGV: engine id, rank key prefix of the
 * engine, member `tp/dp`, incarnation, hash, tpSize, payload, ttlMs, graceMs, maxEngineBytes.
 * Reply: {'ok', expiresAt, replaced incarnation or ''} | {'incompatible', live hash} | {'too_large', other bytes}.
 */
const publishRank = script(
  3,
  `${NOW}
   local storedInc, storedHash, liveInc, liveHash = false, false, false, false
   local otherBytes = 0
   local remembered = {}
   for _, m in ipairs(redis.call('SMEMBERS', KEYS[2])) do
     local f = redis.call('HMGET', ARGV[2] .. m, 'incarnation', 'hash', 'expiresAt', 'bytes')
     if f[1] then
       storedInc, storedHash = f[1], f[2]
       remembered[#remembered + 1] = m
       if tonumber(f[3]) > now then
         liveInc, liveHash = f[1], f[2]
         if m ~= ARGV[3] then otherBytes = otherBytes + tonumber(f[4]) end
       end
     else
       redis.call('SREM', KEYS[2], m)
     end
   end
   if liveInc == ARGV[4] and liveHash ~= ARGV[5] then return {'incompatible', liveHash} end
   local keep = storedInc == ARGV[4] and storedHash == ARGV[5]
   if not keep then otherBytes = 0 end
   local bytes = string.len(ARGV[7])
   if otherBytes + bytes > tonumber(ARGV[10]) then return {'too_large', otherBytes} end
   local replaced = ''
   if storedInc and storedInc ~= ARGV[4] then replaced = storedInc end
   if not keep then
     for _, m in ipairs(remembered) do redis.call('DEL', ARGV[2] .. m) end
     redis.call('DEL', KEYS[2])
   end
   local expiresAt = now + tonumber(ARGV[8])
   local forgetAt = expiresAt + tonumber(ARGV[9])
   redis.call('DEL', KEYS[3])
   redis.call('HSET', KEYS[3], 'incarnation', ARGV[4], 'hash', ARGV[5], 'tpSize', ARGV[6], 'payload', ARGV[7],
     'bytes', bytes, 'publishedAt', now, 'expiresAt', expiresAt)
   redis.call('PEXPIREAT', KEYS[3], forgetAt)
   redis.call('SADD', KEYS[2], ARGV[3])
   if redis.call('PTTL', KEYS[2]) >= 0 then redis.call('PEXPIREAT', KEYS[2], forgetAt, 'GT') else redis.call('PEXPIREAT', KEYS[2], forgetAt) end
   redis.call('ZADD', KEYS[1], 0, ARGV[1])
   return {'ok', expiresAt, replaced}`,
);

/**
 * KEYS: the rank's hash. ARGV: graceMs.
 * Reply: {'missing'} | {'expired', incarnation, expiresAt} |
 * {'live', incarnation, hash, tpSize, publishedAt, expiresAt, payload}.
 */
const getRank = script(
  1,
  `${NOW}
   local f = redis.call('HMGET', KEYS[1], 'incarnation', 'hash', 'tpSize', 'publishedAt', 'expiresAt')
   if not f[1] then return {'missing'} end
   local expiresAt = tonumber(f[5])
   if expiresAt + tonumber(ARGV[1]) <= now then return {'missing'} end
   if expiresAt <= now then return {'expired', f[1], f[5]} end
   return {'live', f[1], f[2], f[3], f[4], f[5], redis.call('HGET', KEYS[1], 'payload')}`,
);

/** The remembered ranks of one engine, appended to `out` as member, incarnation, hash, tpSize, bytes, publishedAt, expiresAt. */
const RANK_ROWS = `local function rankRows(set, prefix, out)
     for _, m in ipairs(redis.call('SMEMBERS', set)) do
       local f = redis.call('HMGET', prefix .. m, 'incarnation', 'hash', 'tpSize', 'bytes', 'publishedAt', 'expiresAt')
       if f[1] then
         out[#out + 1] = m
         for i = 1, 6 do out[#out + 1] = f[i] end
       end
     end
   end`;

/** KEYS: the engine's ranks set. ARGV: rank key prefix. Reply: {now, member, 6 fields, member, ...}. */
const engineRanks = script(
  1,
  `${NOW}
   ${RANK_ROWS}
   local out = {now}
   rankRows(KEYS[1], ARGV[1], out)
   return out`,
);

/**
 * KEYS: engines zset. ARGV: ranks set prefix, rank key prefix (each followed by the engine id).
 * Reply: {now, engine id, number of rank rows, rows..., engine id, ...} over every indexed engine, by id.
 */
const allEngineRanks = script(
  1,
  `${NOW}
   ${RANK_ROWS}
   local out = {now}
   for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
     local rows = {}
     rankRows(ARGV[1] .. id, ARGV[2] .. id .. ':', rows)
     out[#out + 1] = id
     out[#out + 1] = #rows / 7
     for _, v in ipairs(rows) do out[#out + 1] = v end
   end
   return out`,
);

/**
 * KEYS: the engine's ranks set. ARGV: rank key prefix, incarnation, ttlMs, graceMs.
 * Reply: {renewed, expiresAt}: every live rank of that incarnation now expires at expiresAt.
 */
const renewRanks = script(
  1,
  `${NOW}
   local expiresAt = now + tonumber(ARGV[3])
   local forgetAt = expiresAt + tonumber(ARGV[4])
   local renewed = 0
   for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
     local key = ARGV[1] .. m
     local f = redis.call('HMGET', key, 'incarnation', 'expiresAt')
     if f[1] == ARGV[2] and tonumber(f[2]) > now then
       redis.call('HSET', key, 'expiresAt', expiresAt)
       redis.call('PEXPIREAT', key, forgetAt)
       renewed = renewed + 1
     end
   end
   if renewed > 0 then redis.call('PEXPIREAT', KEYS[1], forgetAt, 'GT') end
   return {renewed, expiresAt}`,
);

/**
 * KEYS: engines zset, the engine's ranks set. ARGV: engine id, rank key prefix, incarnation ('' for all),
 * graceMs. Reply: how many remembered ranks were removed.
 */
const removeRanks = script(
  2,
  `${NOW}
   local removed = 0
   for _, m in ipairs(redis.call('SMEMBERS', KEYS[2])) do
     local key = ARGV[2] .. m
     local f = redis.call('HMGET', key, 'incarnation', 'expiresAt')
     if not f[1] then
       redis.call('SREM', KEYS[2], m)
     elseif ARGV[3] == '' or f[1] == ARGV[3] then
       redis.call('DEL', key)
       redis.call('SREM', KEYS[2], m)
       if tonumber(f[2]) + tonumber(ARGV[4]) > now then removed = removed + 1 end
     end
   end
   if redis.call('SCARD', KEYS[2]) == 0 then redis.call('ZREM', KEYS[1], ARGV[1]) end
   return removed`,
);

/**
 * KEYS: engines zset. ARGV: ranks set prefix, rank key prefix, graceMs. Forgets ranks past their grace
 * (Redis already expired most of their keys) and engines without ranks. Reply: engines dropped.
 */
const sweepEngines = script(
  1,
  `${NOW}
   local dropped = 0
   for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
     local set = ARGV[1] .. id
     for _, m in ipairs(redis.call('SMEMBERS', set)) do
       local key = ARGV[2] .. id .. ':' .. m
       local expiresAt = redis.call('HGET', key, 'expiresAt')
       if not expiresAt or tonumber(expiresAt) + tonumber(ARGV[3]) <= now then
         redis.call('DEL', key)
         redis.call('SREM', set, m)
       end
     end
     if redis.call('SCARD', set) == 0 then
       redis.call('ZREM', KEYS[1], id)
       dropped = dropped + 1
     end
   end
   return dropped`,
);

/** The scripts, by the name the client exposes them under (`client.publishRank(...)`). */
export const HANDSHAKE_SCRIPTS = { publishRank, getRank, engineRanks, allEngineRanks, renewRanks, removeRanks, sweepEngines };
