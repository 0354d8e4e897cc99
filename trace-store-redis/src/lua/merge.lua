-- The second half of merge (and of reindex): a compare-and-set. ARGV: ttl_ms (0 =
-- none, -1 = keep the trace's current expiry), the version read.lua returned, this
-- write's new version token, then the six save arguments of the folded trace. Writes
-- only if the trace is still at the version read, so no write between the read and
-- this script is lost; the caller reads again and folds again otherwise. Returns 1 if
-- written (or already written by an earlier run of this very call, whose answer a
-- dropped connection lost: its token is in place), 0 on conflict.
local ttl, expected, version = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local id = ARGV[4]
local now = purge()
local current = version_of(id)
if current == version then
  return 1
end
if current ~= expected then
  return 0
end
local expire_at
if ttl > 0 then
  expire_at = (now or now_ms()) + ttl
elseif ttl < 0 then
  local at = redis.call('ZSCORE', base .. 'exp', id)
  expire_at = at and tonumber(at)
end
store(id, ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], version, expire_at)
return 1
