/**
 * The Lua scripts of the Redis transport. Each runs atomically inside Redis, so a channel's meta hash, stream,
 * live announcement and idempotency record can never disagree. Redis.ts runs them by EVALSHA (falling back to
 * EVAL when the script cache was flushed); codec.ts documents the keys and the text forms they read and write.
 *
 * Times (`now`, storage times, cutoffs, idempotency expiry) come from the calling node's Clock, not from Redis,
 * so retention and windows follow the same clock as the other transports (and `TestClock` in tests). Key TTLs
 * (PEXPIRE/PX) are Redis-time garbage collection on top: abandoned channels and records disappear by themselves.
 */
import { createHash } from "node:crypto"

export interface Script {
  readonly lua: string
  readonly sha: string
}

const script = (lua: string): Script => ({ lua, sha: createHash("sha1").update(lua).digest("hex") })

/**
 * Creates the channel's meta when missing. A missing meta means a new epoch: the stream is deleted too, since its
 * ids would otherwise collide with the restarted offsets.
 */
const ensureMeta = `
local function ensureMeta(meta, stream, candidate, metaTtl)
  local epoch = redis.call('HGET', meta, 'epoch')
  if epoch then return epoch, false end
  redis.call('DEL', stream)
  redis.call('HSET', meta, 'epoch', candidate, 'top', 0)
  if metaTtl > 0 then redis.call('PEXPIRE', meta, metaTtl) end
  return candidate, true
end
`

/**
 * Appends one entry. In order: idempotency check → meta (create epoch if missing) → HINCRBY top → XADD with id
 * `<offset>-0` and exact MAXLEN → age trim by MINID (bounded work per append) → key TTLs → PUBLISH the
 * announcement → idempotency record.
 *
 * KEYS: meta, stream, [idempotency record]
 * ARGV: candidate epoch, now, body, maxEntries (-1: none), maxAgeMs (-1: none), stream TTL ms (0: none),
 *       meta TTL ms (0: none), live channel, idempotency window ms, idempotency record TTL ms
 * Returns {0, epoch, offset} for a new entry, {1, announcement} for a remembered idempotency key.
 */
export const append = script(`${ensureMeta}
local meta, stream, idem = KEYS[1], KEYS[2], KEYS[3]
local now = tonumber(ARGV[2])
if idem then
  local previous = redis.call('GET', idem)
  if previous then
    local nl = string.find(previous, '\\n', 1, true)
    if nl and tonumber(string.sub(previous, 1, nl - 1)) > now then
      return {1, string.sub(previous, nl + 1)}
    end
  end
end
local epoch = ensureMeta(meta, stream, ARGV[1], 0)
local offset = string.format('%d', redis.call('HINCRBY', meta, 'top', 1))
local maxEntries = tonumber(ARGV[4])
if maxEntries >= 0 then
  redis.call('XADD', stream, 'MAXLEN', maxEntries, offset .. '-0', 's', ARGV[2], 'b', ARGV[3])
else
  redis.call('XADD', stream, offset .. '-0', 's', ARGV[2], 'b', ARGV[3])
end
local maxAge = tonumber(ARGV[5])
if maxAge >= 0 then
  local cutoff = now - maxAge
  local oldest = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)
  if #oldest > 0 and tonumber(oldest[1][2][2]) < cutoff then
    -- Trim at most a batch per append: a channel idle for long catches up over its next appends, and reads
    -- skip whatever is expired but not yet trimmed.
    local batch = redis.call('XRANGE', stream, '-', '+', 'COUNT', 128)
    local keep = nil
    for i = 1, #batch do
      if tonumber(batch[i][2][2]) >= cutoff then keep = batch[i][1] break end
    end
    if not keep then
      keep = string.format('%d', tonumber(string.match(batch[#batch][1], '^(%d+)')) + 1) .. '-0'
    end
    redis.call('XTRIM', stream, 'MINID', keep)
  end
end
local streamTtl = tonumber(ARGV[6])
if streamTtl > 0 then redis.call('PEXPIRE', stream, streamTtl) end
local metaTtl = tonumber(ARGV[7])
if metaTtl > 0 then redis.call('PEXPIRE', meta, metaTtl) end
local announcement = epoch .. '\\n' .. offset .. '\\n' .. ARGV[3]
redis.call('PUBLISH', ARGV[8], announcement)
if idem then
  local window = tonumber(ARGV[9])
  redis.call('SET', idem, string.format('%d', now + window) .. '\\n' .. announcement, 'PX', math.max(tonumber(ARGV[10]), 1))
end
return {0, epoch, offset}
`)

/**
 * Reads a channel's top and, unless the mode is 'top', entries after a position. Creates the meta (a new epoch)
 * when missing, as `top` promises.
 *
 * KEYS: meta, stream
 * ARGV: candidate epoch, meta TTL ms (0: none), mode ('top' | 'since' | 'oldest'), since epoch, since offset,
 *       limit, cutoff (entries stored before it are expired)
 * Returns {epoch, top} for 'top', else {epoch, top, status, entries} with status 'ok' | 'trimmed' | 'epoch'
 * and entries as XRANGE returns them ({id, {'s', storedAt, 'b', body}}).
 * 'since' is covered ('ok') when the position is in the channel's epoch, not ahead of its top, and its successor
 * is the first retained unexpired entry (or the position is the top itself).
 */
export const read = script(`${ensureMeta}
local meta, stream = KEYS[1], KEYS[2]
local epoch, created = ensureMeta(meta, stream, ARGV[1], tonumber(ARGV[2]))
local top = '0'
if not created then top = redis.call('HGET', meta, 'top') or '0' end
local mode = ARGV[3]
if mode == 'top' then return {epoch, top} end
local limit = tonumber(ARGV[6])
local count = math.max(limit, 1)
local cutoff = tonumber(ARGV[7])
if mode == 'since' then
  if ARGV[4] ~= epoch then return {epoch, top, 'epoch', {}} end
  local since = tonumber(ARGV[5])
  local topOffset = tonumber(top)
  if since > topOffset then return {epoch, top, 'epoch', {}} end
  if since == topOffset then return {epoch, top, 'ok', {}} end
  local entries = redis.call('XRANGE', stream, '(' .. ARGV[5] .. '-0', '+', 'COUNT', count)
  if #entries == 0 then return {epoch, top, 'trimmed', {}} end
  local first = entries[1]
  if first[1] ~= string.format('%d', since + 1) .. '-0' or tonumber(first[2][2]) < cutoff then
    return {epoch, top, 'trimmed', {}}
  end
  return {epoch, top, 'ok', entries}
end
local out = {}
local start = '-'
while #out < limit do
  local batch = redis.call('XRANGE', stream, start, '+', 'COUNT', count)
  for i = 1, #batch do
    if #out > 0 or tonumber(batch[i][2][2]) >= cutoff then
      out[#out + 1] = batch[i]
      if #out >= limit then break end
    end
  end
  if #batch < count then break end
  start = '(' .. batch[#batch][1]
end
return {epoch, top, 'ok', out}
`)
