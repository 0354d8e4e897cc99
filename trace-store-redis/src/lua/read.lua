-- The first half of merge. ARGV: run_id. Returns {body or false, version}, read at
-- one instant, for the compare-and-set in merge.lua.
local id = ARGV[1]
local version = version_of(id)
if version == '' then
  return { false, '' }
end
return { redis.call('GET', base .. 'b:' .. id), version }
