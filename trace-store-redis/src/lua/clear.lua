-- One batch of clear(): removes up to ARGV[1] traces, oldest first; returns how many.
local members = redis.call('ZRANGE', base .. 'created', 0, tonumber(ARGV[1]) - 1)
for _, member in ipairs(members) do
  unindex(string.sub(member, 17))
end
if #members == 0 then
  -- Whatever the walk above cannot reach: entries left by hand edits or evictions.
  redis.call('DEL', base .. 'exp', base .. 'ix', base .. 'steps', base .. 's',
    base .. 'tmp:steps')
end
return #members
