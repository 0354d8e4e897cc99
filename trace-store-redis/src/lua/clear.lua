-- One batch of clear(): removes up to ARGV[1] traces, oldest first. Returns {how
-- many, 1 if some had lost their index record (their entries in the other indexes
-- cannot be found, so the caller sweeps the prefix afterwards), else 0}.
local members = redis.call('ZRANGE', base .. 'created', 0, tonumber(ARGV[1]) - 1)
local damaged = 0
for _, member in ipairs(members) do
  local id = string.sub(member, 17)
  local info = redis.call('HGET', base .. 'ix', id)
  if not info or string.sub(info, 1, 16) ~= string.sub(member, 1, 16) then
    damaged = 1
  end
  unindex(id, '')
  -- Whatever the record said, this member goes, so every batch makes progress.
  drop_member(member)
end
if #members == 0 then
  -- Whatever the walk above cannot reach: entries left by hand edits or evictions.
  redis.call('DEL', base .. 'exp', base .. 'ix', base .. 'steps', base .. 's',
    base .. 'txt', base .. 'ver', base .. 'tmp:range')
end
return { #members, damaged }
