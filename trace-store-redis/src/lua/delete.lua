-- delete. ARGV: run_id, and (on a second call) the index record rebuilt from the
-- body. Returns 1 if a live trace was removed, -1 if its index record is gone and
-- the caller must rebuild it (see unindex).
purge()
return unindex(ARGV[1], ARGV[2])
