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
import { SEGMENT_ENTRIES } from "./codec.ts"

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
 * head trims change the oldest entry), so the stream is not even looked at until an entry may have expired. It
 * returns whether it looked.
 *
 * Segments (codec.ts): segment k holds the run of offsets k × SEGMENT + 1 to (k + 1) × SEGMENT, written by the
 * append script beside the stream. It is created only at its first offset and appended to only while it exists,
 * so a segment that exists holds exactly its offsets up to the top; one that is missing (a channel from before
 * segments, an evicted key) makes a read fall back to XRANGE. `dropSegments` deletes the segments wholly before
 * the stream's first entry after trims (at most 64 per call; later calls go on); the meta's `segs` is the lowest
 * segment that may still exist (absent on a channel from before segments: none exist below its head then).
 */
const helpers = `
local SEGMENT = ${SEGMENT_ENTRIES}
local function ensureMeta(meta, stream, candidate, metaTtl)
  local current = redis.call('HMGET', meta, 'epoch', 'top', 'oldest')
  if current[1] then return current[1], tonumber(current[2]) or 0, tonumber(current[3]) end
  redis.call('DEL', stream)
  redis.call('HSET', meta, 'epoch', candidate, 'top', 0, 'segs', 0)
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
  if oldest and cutoff <= oldest then return false end
  local first = trimExpired(stream, cutoff, batches)
  if first then redis.call('HSET', meta, 'oldest', string.format('%d', first)) end
  return true
end
local function blockOf(offset)
  return math.floor((offset - 1) / SEGMENT)
end
local function segmentKey(base, epoch, block)
  return base .. epoch .. ':' .. string.format('%d', block)
end
local function writeSegments(base, epoch, first, run, ttl)
  local i, offset = 1, first
  while i <= #run do
    local block = blockOf(offset)
    local count = math.min((#run - i + 1) / 2, (block + 1) * SEGMENT - offset + 1)
    local key = segmentKey(base, epoch, block)
    local text = table.concat(run, '', i, i + 2 * count - 1)
    local written = true
    if offset == block * SEGMENT + 1 then
      redis.call('SET', key, text)
    elseif redis.call('EXISTS', key) == 1 then
      redis.call('APPEND', key, text)
    else
      written = false
    end
    if written and ttl > 0 then redis.call('PEXPIRE', key, ttl) end
    i = i + 2 * count
    offset = offset + count
  end
end
local function dropSegments(meta, stream, base, epoch, top)
  local head = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)
  local keep = blockOf(top + 1)
  if #head > 0 then keep = blockOf(tonumber(string.match(head[1][1], '^%d+'))) end
  local recorded = tonumber(redis.call('HGET', meta, 'segs'))
  local low = recorded or keep
  local stop = math.min(keep, low + 64)
  for block = low, stop - 1 do redis.call('DEL', segmentKey(base, epoch, block)) end
  if stop ~= recorded then redis.call('HSET', meta, 'segs', string.format('%d', stop)) end
end
`

/**
 * Appends a batch of entries to one channel, in order. Per entry: idempotency check (a remembered key returns
 * the first append's announcement) → next offset → XADD `<offset>-0` with exact MAXLEN → idempotency record.
 * Once per call: the new top, an age trim when an entry may have expired (one batch of 128 at most: a channel
 * idle for long catches up over its next appends, and reads trim the rest), the new entries' segments, segments
 * before the head dropped (with a retention limit), key TTLs, and ONE PUBLISH announcing all new entries
 * (consecutive offsets: the remembered ones are not new).
 *
 * KEYS: meta, stream, segment key prefix, idempotency records of the entries that have a key
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
  writeSegments(KEYS[3], epoch, top - #run / 2 + 1, run, streamTtl)
  if maxEntries >= 0 or maxAge >= 0 then dropSegments(meta, stream, KEYS[3], epoch, top) end
  local first = string.format('%d', top - #run / 2 + 1)
  redis.call('PUBLISH', ARGV[2], epoch .. '\\n' .. first .. '\\n' .. table.concat(run))
end
return reply
`)

/**
 * Reads a channel's top and, unless the mode is 'top', entries after a position, as ONE string (codec.ts).
 * Decoding an XRANGE reply (two arrays and three strings per entry) cost the node about 3 µs of CPU per entry,
 * garbage collection included, so the page comes as a run. Where the page's segments all exist, the run is
 * their concatenation — it starts at the first segment's first offset and may go on past the page; the caller
 * cuts the page out — else the stream fields of an XRANGE, concatenated as they are: from Lua tables, about
 * 1.5 ms of Redis's time per page of 1,000 against well under 0.1 ms for the strings
 * (bench/micro/redis-page.ts). Creates the meta (a new epoch) when missing, as `top` promises. Given a cutoff,
 * entries stored before it are trimmed first, so reads never see expired entries and a position is covered
 * exactly when its successor is the first retained entry.
 *
 * KEYS: meta, stream, segment key prefix
 * ARGV: candidate epoch, meta TTL ms (0: none), mode ('top' | 'since' | 'oldest'), since epoch, since offset,
 *       limit, cutoff ('': no age limit), segments ('1': use them, '0': XRANGE only)
 * Returns {epoch, top} for 'top', else {epoch, top, status, run's first offset, run, page's first offset} with
 * status 'segments' | 'ok' | 'trimmed' | 'epoch' (the run is empty unless 'segments' or 'ok'). 'since' is
 * covered when the position is in the channel's epoch, not ahead of its top, and its successor is the first
 * retained entry (or the position is the top itself).
 */
export const read = script(`${helpers}
local meta, stream = KEYS[1], KEYS[2]
local epoch, top, oldest = ensureMeta(meta, stream, ARGV[1], tonumber(ARGV[2]))
local topText = string.format('%d', top)
local mode = ARGV[3]
if mode == 'top' then return {epoch, topText} end
if ARGV[7] ~= '' and expire(meta, stream, oldest, tonumber(ARGV[7]), 0) then
  dropSegments(meta, stream, KEYS[3], epoch, top)
end
local count = math.max(tonumber(ARGV[6]), 1)
local start = '-'
if mode == 'since' then
  local since = tonumber(ARGV[5])
  if ARGV[4] ~= epoch or since > top then return {epoch, topText, 'epoch', '0', '', '0'} end
  if since == top then return {epoch, topText, 'ok', '0', '', '0'} end
  start = '(' .. ARGV[5] .. '-0'
end
local head = redis.call('XRANGE', stream, start, '+', 'COUNT', 1)
if #head == 0 then
  if mode == 'since' then return {epoch, topText, 'trimmed', '0', '', '0'} end
  return {epoch, topText, 'ok', '0', '', '0'}
end
local firstText = string.match(head[1][1], '^%d+')
local first = tonumber(firstText)
if mode == 'since' and first ~= tonumber(ARGV[5]) + 1 then return {epoch, topText, 'trimmed', '0', '', '0'} end
if ARGV[8] == '1' then
  local parts = {}
  for block = blockOf(first), blockOf(math.min(top, first + count - 1)) do
    local segment = redis.call('GET', segmentKey(KEYS[3], epoch, block))
    if not segment then
      parts = nil
      break
    end
    parts[#parts + 1] = segment
  end
  if parts then
    local runFirst = string.format('%d', blockOf(first) * SEGMENT + 1)
    return {epoch, topText, 'segments', runFirst, table.concat(parts), firstText}
  end
end
local entries = redis.call('XRANGE', stream, start, '+', 'COUNT', count)
-- The client numbers the entries from the first: only a foreign writer could break this.
if tonumber(string.match(entries[#entries][1], '^%d+')) ~= first + #entries - 1 then
  return redis.error_reply('ERR stream ids of ' .. stream .. ' are not consecutive offsets')
end
local run = {}
for i = 1, #entries do
  local fields = entries[i][2]
  run[2 * i - 1] = fields[1]
  run[2 * i] = fields[2]
end
return {epoch, topText, 'ok', firstText, table.concat(run), firstText}
`)
