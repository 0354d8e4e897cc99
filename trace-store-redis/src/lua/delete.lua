-- delete. ARGV: run_id. Returns 1 if a live trace was removed.
purge()
return unindex(ARGV[1])
