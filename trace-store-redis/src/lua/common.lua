-- Shared by every script of trace-store-redis. KEYS[1] is always the namespace base
-- "{<encoded prefix>}:"; every key is built from it, so all keys of a store share
-- one hash tag (one Cluster slot). It is declared as a key, although no value is
-- stored under that exact name, so that a Cluster client routes the call to that
-- slot. The layout is documented in the crate README.
local base = KEYS[1]

-- Milliseconds now, from the server's clock.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Removes an index member from the indexes every trace is in (list order, step
-- counts, summaries, texts), for a member whose index record is gone.
local function drop_member(member)
  redis.call('ZREM', base .. 'created', member)
  redis.call('ZREM', base .. 'steps', member)
  redis.call('HDEL', base .. 's', member)
  redis.call('HDEL', base .. 'txt', member)
end

-- Removes a trace and every index entry it has, using the index record kept for it
-- in "ix": "<16 hex digits of created_at> <entry> <entry> ...", an entry being an
-- index suffix, or "<suffix>=<score>" for a score's set. Returns 1 if the trace body
-- was there.
--
-- The record can be gone while the body is there (a hand edit, or an allkeys-*
-- eviction). Then `fallback`, a record the caller rebuilt from the body, is used;
-- '' means none can be built (the body is damaged): only the body and what is keyed
-- by run_id go. Without a fallback nothing is removed and -1 returned, so the caller
-- can rebuild the record from the body and call again.
local function unindex(id, fallback)
  local info = redis.call('HGET', base .. 'ix', id) or fallback
  if not info and redis.call('EXISTS', base .. 'b:' .. id) == 1 then
    return -1
  end
  redis.call('ZREM', base .. 'exp', id)
  redis.call('HDEL', base .. 'ver', id)
  if info and info ~= '' then
    local member = string.sub(info, 1, 16) .. id
    drop_member(member)
    for entry in string.gmatch(string.sub(info, 18), '%S+') do
      redis.call('ZREM', base .. string.match(entry, '^[^=]*'), member)
    end
    redis.call('HDEL', base .. 'ix', id)
  end
  return redis.call('DEL', base .. 'b:' .. id)
end

-- Writes one trace and its index entries, after removing whatever an earlier version
-- left (its index record says which), so a changed created_at, status, name, session,
-- parent, metadata or score leaves nothing behind. `expire_at` is the expiry in ms
-- since the epoch, or nil for none; `version` is the token merge's compare-and-set
-- reads.
local function store(id, body, summary, steps, info, text, version, expire_at)
  unindex(id)
  -- The index record goes first. Redis does not undo a script that fails halfway,
  -- and the one way these writes can fail is a key under the prefix that something
  -- else gave another type (WRONGTYPE); then the record already lists every entry
  -- written so far, and the next save or delete of this run_id removes them all.
  redis.call('HSET', base .. 'ix', id, info)
  local key = base .. 'b:' .. id
  if expire_at then
    local at = string.format('%d', expire_at)
    redis.call('SET', key, body, 'PXAT', at)
    redis.call('ZADD', base .. 'exp', at, id)
  else
    redis.call('SET', key, body)
  end
  redis.call('HSET', base .. 'ver', id, version)
  local member = string.sub(info, 1, 16) .. id
  redis.call('HSET', base .. 's', member, summary)
  redis.call('HSET', base .. 'txt', member, text)
  redis.call('ZADD', base .. 'created', 0, member)
  redis.call('ZADD', base .. 'steps', steps, member)
  for entry in string.gmatch(string.sub(info, 18), '%S+') do
    local suffix, score = string.match(entry, '^([^=]*)=(.*)$')
    if suffix then
      redis.call('ZADD', base .. suffix, score, member)
    else
      redis.call('ZADD', base .. entry, 0, member)
    end
  end
end

-- The version merge compares: the token of the last write, '0' for a trace written
-- before versions existed, '' for no (live) trace. Tokens are never '' or '0'.
local function version_of(id)
  if redis.call('EXISTS', base .. 'b:' .. id) == 0 then
    return ''
  end
  return redis.call('HGET', base .. 'ver', id) or '0'
end

-- Expired traces leave the indexes here, before any script reads them. Bounded, so a
-- mass expiry never blocks the server for long; `stale` tells the caller that expired
-- entries remain and must be skipped one by one.
local PURGE_MAX = 1000
local function purge()
  local exp = base .. 'exp'
  if redis.call('EXISTS', exp) == 0 then
    return nil, false
  end
  local now = now_ms()
  local below = string.format('(%d', now)
  local ids = redis.call('ZRANGEBYSCORE', exp, '-inf', below, 'LIMIT', 0, PURGE_MAX)
  for _, id in ipairs(ids) do
    -- An expired body is gone, so this never waits for a rebuilt record; the ZREM
    -- makes sure the loop over expired ids always moves on.
    unindex(id, '')
    redis.call('ZREM', exp, id)
  end
  local stale = #ids == PURGE_MAX and redis.call('ZCOUNT', exp, '-inf', below) > 0
  return now, stale
end
