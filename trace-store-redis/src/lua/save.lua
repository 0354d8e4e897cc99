-- save and one batch of save_many, all or nothing. ARGV: ttl_ms (0 = none), then
-- five arguments per trace: run_id, body JSON, summary JSON, step count, index record.
local ttl = tonumber(ARGV[1])
local now = purge()
if ttl > 0 and not now then
  now = now_ms()
end
local created, steps, ix, sums = base .. 'created', base .. 'steps', base .. 'ix', base .. 's'
local saved = 0
for i = 2, #ARGV, 5 do
  local id, info = ARGV[i], ARGV[i + 4]
  -- An upsert first drops every entry of the old version (its index record says
  -- which), so a changed created_at, status, name or metadata leaves nothing behind.
  unindex(id)
  -- The index record goes first. Redis does not undo a script that fails halfway,
  -- and the one way these writes can fail is a key under the prefix that something
  -- else gave another type (WRONGTYPE); then the record already lists every entry
  -- written so far, and the next save or delete of this run_id removes them all.
  redis.call('HSET', ix, id, info)
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
  saved = saved + 1
end
return saved
