-- save and one batch of save_many, all or nothing. ARGV: ttl_ms (0 = none), the
-- version token of this write, then six arguments per trace: run_id, body JSON,
-- summary JSON, step count, index record, searchable text.
local ttl = tonumber(ARGV[1])
local version = ARGV[2]
local now = purge()
local expire_at
if ttl > 0 then
  expire_at = (now or now_ms()) + ttl
end
local saved = 0
for i = 3, #ARGV, 6 do
  store(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5],
    version, expire_at)
  saved = saved + 1
end
return saved
