-- One batch of delete_where. ARGV: run_ids. Returns {how many live traces were
-- removed, the run_ids left alone because their index record is gone}.
purge()
local removed, orphans = 0, {}
for _, id in ipairs(ARGV) do
  local result = unindex(id)
  if result < 0 then
    orphans[#orphans + 1] = id
  else
    removed = removed + result
  end
end
return { removed, orphans }
