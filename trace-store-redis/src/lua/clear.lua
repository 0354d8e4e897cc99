-- One batch of clear(): removes up to ARGV[2] traces, oldest first; returns how many.
local base = ARGV[1]
local members = redis.call('ZRANGE', base .. 'created', 0, tonumber(ARGV[2]) - 1)
for _, member in ipairs(members) do
  unindex(base, string.sub(member, 17))
end
if #members == 0 then
  -- Whatever no index points at any more: expiry entries, tables left by a crash.
  redis.call('DEL', base .. 'exp', base .. 'ix', base .. 'steps', base .. 's',
    base .. 'tmp:steps')
end
return #members
