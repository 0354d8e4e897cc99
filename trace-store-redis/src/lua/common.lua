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

-- Removes a trace and every index entry it has, using the index record kept for it
-- in "ix": "<16 hex digits of created_at> <suffix> <suffix> ...". Returns 1 if the
-- trace body was there.
local function unindex(id)
  redis.call('ZREM', base .. 'exp', id)
  local info = redis.call('HGET', base .. 'ix', id)
  if info then
    local member = string.sub(info, 1, 16) .. id
    redis.call('ZREM', base .. 'created', member)
    redis.call('ZREM', base .. 'steps', member)
    redis.call('HDEL', base .. 's', member)
    for suffix in string.gmatch(string.sub(info, 18), '%S+') do
      redis.call('ZREM', base .. suffix, member)
    end
    redis.call('HDEL', base .. 'ix', id)
  end
  return redis.call('DEL', base .. 'b:' .. id)
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
    unindex(id)
  end
  local stale = #ids == PURGE_MAX and redis.call('ZCOUNT', exp, '-inf', below) > 0
  return now, stale
end
