/**
 * The Lua scripts of the Redis transport. Each runs atomically inside Redis, so a channel's meta hash, stream,
 * live announcement and idempotency records can never disagree. Redis.ts runs them by EVALSHA (falling back to
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
 * `ensureMeta` returns the channel's epoch, top and `oldest`, creating the meta when missing. A missing meta means
 * a new epoch: the stream is deleted too, since its ids would otherwise collide with the restarted offsets.
 *
 * `expire` deletes the entries stored before `cutoff` from the head of the stream (a stored entry's header starts
 * with its storage time), scanning at most `batches` batches of 128 (0: until done). Storage times come from
 * several nodes' clocks, so it stops at the first unexpired entry and keeps everything after it. The meta's
 * `oldest` is a lower bound of the oldest entry's storage time (up to clock differences between nodes: only
 * head trims change the oldest entry), so the stream is not even looked at until an entry may have expired.
 */
const helpers = `
local function ensureMeta(meta, stream, candidate, metaTtl)
  local current = redis.call('HMGET', meta, 'epoch', 'top', 'oldest')
  if current[1] then return current[1], tonumber(current[2]) or 0, tonumber(current[3]) end
  redis.call('DEL', stream)
  redis.call('HSET', meta, 'epoch', candidate, 'top', 0)
  if metaTtl > 0 then redis.call('PEXPIRE', meta, metaTtl) end
  return candidate, 0, nil
end
local function storedAt(header)
  return tonumber(string.match(header, '^%d+'))
end
local function trimExpired(stream, cutoff, batches)
  local scanned = 0
  while true do
    local batch = redis.call('XRANGE', stream, '-', '+', 'COUNT', scanned == 0 and 1 or 128)
    if #batch == 0 then return nil end
    for i = 1, #batch do
      local stored = storedAt(batch[i][2][1])
      if stored >= cutoff then
        if i > 1 then redis.call('XTRIM', stream, 'MINID', batch[i][1]) end
        return stored
      end
    end
    if scanned > 0 then
      local last = tonumber(string.match(batch[#batch][1], '^(%d+)'))
      redis.call('XTRIM', stream, 'MINID', string.format('%d', last + 1) .. '-0')
      if #batch < 128 or scanned == batches then return nil end
    end
    scanned = scanned + 1
  end
end
local function expire(meta, stream, oldest, cutoff, batches)
  if oldest and cutoff <= oldest then return end
  local first = trimExpired(stream, cutoff, batches)
  if first then redis.call('HSET', meta, 'oldest', string.format('%d', first)) end
end
`

/**
 * Appends a batch of entries to one channel, in order. Per entry: idempotency check (a remembered key returns
 * the first append's announcement) → next offset → XADD `<offset>-0` with exact MAXLEN → idempotency record.
 * Once per call: the new top, an age trim when an entry may have expired (one batch of 128 at most: a channel
 * idle for long catches up over its next appends, and reads trim the rest), key TTLs, and ONE PUBLISH announcing
 * all new entries (consecutive offsets: the remembered ones are not new).
 *
 * KEYS: meta, stream, idempotency records of the entries that have a key
 * ARGV: candidate epoch, live channel, maxEntries (-1: none), maxAgeMs (-1: none), stream TTL ms (0: none),
 *       meta TTL ms (0: none), idempotency window ms, idempotency record TTL ms, then per entry:
 *       header (starting with now, the storage time), data, index of its idempotency record in KEYS (0: none)
 * Returns {epoch, result per entry}: the new offset (an integer), or the remembered announcement (a string).
 */
export const append = script(`${helpers}
local meta, stream = KEYS[1], KEYS[2]
local epoch, top, oldest = ensureMeta(meta, stream, ARGV[1], 0)
local maxEntries = tonumber(ARGV[3])
local window = tonumber(ARGV[7])
local recordTtl = math.max(tonumber(ARGV[8]), 1)
local reply = {epoch}
local run = {}
local latest = nil
for i = 9, #ARGV, 3 do
  local header, data, idem = ARGV[i], ARGV[i + 1], KEYS[tonumber(ARGV[i + 2])]
  local remembered = nil
  if idem then
    local previous = redis.call('GET', idem)
    if previous then
      local nl = string.find(previous, '\\n', 1, true)
      if nl and tonumber(string.sub(previous, 1, nl - 1)) > storedAt(header) then
        remembered = string.sub(previous, nl + 1)
      end
    end
  end
  if remembered then
    reply[#reply + 1] = remembered
  else
    top = top + 1
    local offset = string.format('%d', top)
    if maxEntries >= 0 then
      redis.call('XADD', stream, 'MAXLEN', maxEntries, offset .. '-0', header, data)
    else
      redis.call('XADD', stream, offset .. '-0', header, data)
    end
    run[#run + 1] = header
    run[#run + 1] = data
    if idem then
      local expiresAt = string.format('%d', storedAt(header) + window)
      redis.call('SET', idem, expiresAt .. '\\n' .. epoch .. '\\n' .. offset .. '\\n' .. header .. data, 'PX', recordTtl)
    end
    reply[#reply + 1] = top
    latest = header
  end
end
if latest then
  redis.call('HSET', meta, 'top', string.format('%d', top))
  local maxAge = tonumber(ARGV[4])
  if maxAge >= 0 then expire(meta, stream, oldest, storedAt(latest) - maxAge, 1) end
  local streamTtl = tonumber(ARGV[5])
  if streamTtl > 0 then redis.call('PEXPIRE', stream, streamTtl) end
  local metaTtl = tonumber(ARGV[6])
  if metaTtl > 0 then redis.call('PEXPIRE', meta, metaTtl) end
  local first = string.format('%d', top - #run / 2 + 1)
  redis.call('PUBLISH', ARGV[2], epoch .. '\\n' .. first .. '\\n' .. table.concat(run))
end
return reply
`)

/**
 * Reads a channel's top and, unless the mode is 'top', entries after a position, as ONE string (codec.ts): the
 * stream fields are concatenated as they are. Decoding an XRANGE reply (two arrays and three strings per entry)
 * cost the node about 3 µs of CPU per entry, garbage collection included; building the string costs Redis about
 * 2 µs and the node well under 1, and the node's CPU is the one the server needs. Creates the meta (a new epoch)
 * when missing, as `top` promises. Given a cutoff, entries stored before it are trimmed first, so reads never see expired entries and a
 * position is covered exactly when its successor is the first retained entry.
 *
 * KEYS: meta, stream
 * ARGV: candidate epoch, meta TTL ms (0: none), mode ('top' | 'since' | 'oldest'), since epoch, since offset,
 *       limit, cutoff ('': no age limit)
 * Returns {epoch, top} for 'top', else {epoch, top, status, first offset, run} with status 'ok' | 'trimmed' |
 * 'epoch' (the run is empty unless 'ok'). 'since' is covered when the position is in the channel's epoch, not
 * ahead of its top, and its successor is the first retained entry (or the position is the top itself).
 */
export const read = script(`${helpers}
local meta, stream = KEYS[1], KEYS[2]
local epoch, top, oldest = ensureMeta(meta, stream, ARGV[1], tonumber(ARGV[2]))
local topText = string.format('%d', top)
local mode = ARGV[3]
if mode == 'top' then return {epoch, topText} end
if ARGV[7] ~= '' then expire(meta, stream, oldest, tonumber(ARGV[7]), 0) end
local count = math.max(tonumber(ARGV[6]), 1)
local start = '-'
if mode == 'since' then
  local since = tonumber(ARGV[5])
  if ARGV[4] ~= epoch or since > top then return {epoch, topText, 'epoch', '0', ''} end
  if since == top then return {epoch, topText, 'ok', '0', ''} end
  start = '(' .. ARGV[5] .. '-0'
end
local entries = redis.call('XRANGE', stream, start, '+', 'COUNT', count)
if #entries == 0 then
  if mode == 'since' then return {epoch, topText, 'trimmed', '0', ''} end
  return {epoch, topText, 'ok', '0', ''}
end
local first = string.match(entries[1][1], '^%d+')
if mode == 'since' and tonumber(first) ~= tonumber(ARGV[5]) + 1 then return {epoch, topText, 'trimmed', '0', ''} end
-- The client numbers the entries from the first: only a foreign writer could break this.
if tonumber(string.match(entries[#entries][1], '^%d+')) ~= tonumber(first) + #entries - 1 then
  return redis.error_reply('ERR stream ids of ' .. stream .. ' are not consecutive offsets')
end
local run = {}
for i = 1, #entries do
  local fields = entries[i][2]
  run[2 * i - 1] = fields[1]
  run[2 * i] = fields[2]
end
return {epoch, topText, 'ok', first, table.concat(run)}
`)
