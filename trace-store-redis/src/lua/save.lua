-- save and save_many, all or nothing. ARGV: base, ttl_ms (0 = none), then five
-- arguments per trace: run_id, body JSON, summary JSON, step count, index record.
local base = ARGV[1]
local ttl = tonumber(ARGV[2])
local now = purge(base)
if ttl > 0 and not now then
  now = now_ms()
end
local created, steps, ix, sums = base .. 'created', base .. 'steps', base .. 'ix', base .. 's'
local saved = 0
for i = 3, #ARGV, 5 do
  local id, info = ARGV[i], ARGV[i + 4]
  -- An upsert first drops every entry of the old version (its index record says
  -- which), so a changed created_at, status, name or metadata leaves nothing behind.
  unindex(base, id)
  local body = base .. 'b:' .. id
  if ttl > 0 then
    local at = string.format('%d', now + ttl)
    redis.call('SET', body, ARGV[i + 1], 'PXAT', at)
    redis.call('ZADD', base .. 'exp', at, id)
  else
    redis.call('SET', body, ARGV[i + 1])
  end
  local member = string.sub(info, 1, 16) .. id
  redis.call('HSET', sums, member, ARGV[i + 2])
  redis.call('ZADD', created, 0, member)
  redis.call('ZADD', steps, ARGV[i + 3], member)
  for suffix in string.gmatch(string.sub(info, 18), '%S+') do
    redis.call('ZADD', base .. suffix, 0, member)
  end
  redis.call('HSET', ix, id, info)
  saved = saved + 1
end
return saved
