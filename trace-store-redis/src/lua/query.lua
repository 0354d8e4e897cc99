-- query, count, stats and delete_where. ARGV: mode ('page' returns {summaries, run_ids
-- whose summary is missing}, 'ids' {run_ids, {}}, 'count' a number), hi and lo
-- (ZREVRANGEBYLEX bounds from until/cursor and since), offset, limit ('-1' = all), the
-- lower-cased text query ('' = none), n, then n index suffixes (metadata, status, name,
-- session, parent) whose sorted sets must all contain a trace, then r, then r ranges
-- as (suffix, min, max) ('' = open) of sorted sets that must contain a trace with a
-- score in the range (the step count, a trace-level score).
local mode, hi, lo = ARGV[1], ARGV[2], ARGV[3]
local offset, limit = ARGV[4], ARGV[5]
local text = ARGV[6]
local n = tonumber(ARGV[7])

local now, stale = purge()
local tmp = base .. 'tmp:range'
local created = base .. 'created'

-- Reads write nothing, except the purge above and the copy of a narrow range below,
-- which lives only inside this script run (scripts are atomic).
local copied = false
local function finish(result)
  if copied then redis.call('DEL', tmp) end
  return result
end
local function empty()
  if mode == 'count' then return finish(0) end
  return finish({ {}, {} })
end

-- Every equality index is a sorted set whose members are "<created_at hex><run_id>",
-- all with score 0, so each is already in list order. The smallest index of the
-- filter is walked; membership in the others is checked a batch at a time.
local driver, others = created, {}
if n > 0 then
  local size = math.huge
  driver = nil
  for i = 1, n do
    local key = base .. ARGV[7 + i]
    local card = redis.call('ZCARD', key)
    if card == 0 then return empty() end
    if card < size then
      if driver then others[#others + 1] = driver end
      driver, size = key, card
    else
      others[#others + 1] = key
    end
  end
end

-- Range criteria: each names a sorted set scored by the value checked.
local ranges = {}
local at = 8 + n
for i = 1, tonumber(ARGV[at]) do
  local min, max = ARGV[at + 3 * i - 1], ARGV[at + 3 * i]
  ranges[i] = {
    key = base .. ARGV[at + 3 * i - 2],
    smin = min == '' and '-inf' or min,
    smax = max == '' and '+inf' or max,
    lo = min == '' and -math.huge or tonumber(min),
    hi = max == '' and math.huge or tonumber(max),
  }
end

if #ranges > 0 then
  local narrowest
  for _, range in ipairs(ranges) do
    range.count = redis.call('ZCOUNT', range.key, range.smin, range.smax)
    if range.count == 0 then return empty() end
    if not narrowest or range.count < narrowest.count then narrowest = range end
  end
  local span = redis.call('ZLEXCOUNT', driver, lo, hi)
  if span == 0 then return empty() end
  -- Walking the driver costs about the members visited before the page is full;
  -- copying the traces in the narrowest range costs their number (about twice as much
  -- per member). Take the cheaper way.
  local visit = span
  if mode ~= 'count' and limit ~= '-1' then
    local share = narrowest.count / redis.call('ZCARD', narrowest.key)
    visit = math.min(span, (tonumber(offset) + tonumber(limit)) / share)
  end
  if 2 * narrowest.count < visit then
    redis.call('ZRANGESTORE', tmp, narrowest.key, narrowest.smin, narrowest.smax, 'BYSCORE')
    copied = true
    -- Intersect with every index of the filter; scores become 0, for lex walking.
    local sets = { tmp }
    if driver ~= created then sets[#sets + 1] = driver end
    for _, key in ipairs(others) do sets[#sets + 1] = key end
    -- (unpack only spreads in last position, so build the whole argument list.)
    local args = { tmp, #sets }
    for _, key in ipairs(sets) do args[#args + 1] = key end
    args[#args + 1] = 'WEIGHTS'
    for _ = 1, #sets do args[#args + 1] = 0 end
    redis.call('ZINTERSTORE', unpack(args))
    driver, others = tmp, {}
    local rest = {}
    for _, range in ipairs(ranges) do
      if range ~= narrowest then rest[#rest + 1] = range end
    end
    ranges = rest
  end
end

local simple = #ranges == 0 and text == '' and not stale and #others == 0
if simple and mode == 'count' then
  local count = redis.call('ZLEXCOUNT', driver, lo, hi) - tonumber(offset)
  if count < 0 then count = 0 end
  if limit ~= '-1' and count > tonumber(limit) then count = tonumber(limit) end
  return finish(count)
end

-- Summaries are stored by index member, so a page is fetched straight from the members
-- in one HMGET, without building key names member by member.
local sums = base .. 's'
local damaged = {}
local function fetch(page, out)
  if #page == 0 then return end
  for i, summary in ipairs(redis.call('HMGET', sums, unpack(page))) do
    if summary then
      out[#out + 1] = summary
    else
      -- Only eviction or a hand edit separates an index entry from its summary. If the
      -- trace itself is gone too, drop what is left of it; if its body is still there,
      -- a read must not delete it: report it instead.
      local id = string.sub(page[i], 17)
      if redis.call('EXISTS', base .. 'b:' .. id) == 1 then
        damaged[#damaged + 1] = id
      else
        unindex(id, '')
        drop_member(page[i])
      end
    end
  end
end

-- The text predicate is core's `text_contains`: the stored text is
-- `Trace::search_text` (already lower-cased by core) and the query arrives
-- lower-cased by `str::to_lowercase` in Rust, so what remains is Rust's
-- `str::contains` of one UTF-8 string in another, which is a plain byte-substring
-- test: exactly `string.find(..., 1, true)` (plain: no pattern characters). A trace
-- without stored text (written before this index existed) has none to match.
local texts = base .. 'txt'
local function has_text(member)
  local stored = redis.call('HGET', texts, member)
  return stored and string.find(stored, text, 1, true) ~= nil
end

-- Newest first, in batches that resume after the last member seen. Without checks the
-- server skips the offset itself; with checks each batch is filtered here.
local BATCH = 1000
local exp_key = base .. 'exp'
local skip = tonumber(offset)
local want = limit == '-1' and math.huge or tonumber(limit)
local out, taken, upper = {}, 0, hi
while taken < want do
  local batch, asked
  if simple and upper == hi then
    asked = math.min(BATCH, want)
    batch = redis.call('ZREVRANGEBYLEX', driver, upper, lo, 'LIMIT', offset, asked)
    skip = 0
  else
    asked = BATCH
    batch = redis.call('ZREVRANGEBYLEX', driver, upper, lo, 'LIMIT', 0, asked)
  end
  if #batch == 0 then break end
  local present = {}
  for j, key in ipairs(others) do
    present[j] = redis.call('ZMSCORE', key, unpack(batch))
  end
  local scores = {}
  for j, range in ipairs(ranges) do
    scores[j] = redis.call('ZMSCORE', range.key, unpack(batch))
  end
  local page = {}
  for i, member in ipairs(batch) do
    local keep = true
    for j = 1, #present do
      if not present[j][i] then
        keep = false
        break
      end
    end
    for j = 1, #scores do
      if not keep then break end
      local value = tonumber(scores[j][i])
      keep = value ~= nil and value >= ranges[j].lo and value <= ranges[j].hi
    end
    if keep and stale then
      local expiry = redis.call('ZSCORE', exp_key, string.sub(member, 17))
      keep = not expiry or tonumber(expiry) >= now
    end
    if keep and text ~= '' then
      keep = has_text(member)
    end
    if keep then
      if skip > 0 then
        skip = skip - 1
      elseif taken < want then
        taken = taken + 1
        page[#page + 1] = member
      end
    end
  end
  if mode == 'page' then
    fetch(page, out)
  elseif mode == 'ids' then
    for _, member in ipairs(page) do out[#out + 1] = string.sub(member, 17) end
  end
  if #batch < asked then break end
  upper = '(' .. batch[#batch]
end
if mode == 'count' then return finish(taken) end
return finish({ out, damaged })
