-- delete. ARGV: base, run_id. Returns 1 if a live trace was removed.
local base = ARGV[1]
purge(base)
return unindex(base, ARGV[2])
