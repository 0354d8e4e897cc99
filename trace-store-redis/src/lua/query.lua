-- query, count and stats. ARGV: mode ('page' returns {summaries, run_ids whose
-- summary is missing}, 'count' a number), hi and lo (ZREVRANGEBYLEX bounds from
-- until/cursor and since), offset, limit ('-1' = all), min_steps and max_steps
-- ('' = unset), n, then n index suffixes (metadata, status, name) whose sorted sets
-- must all contain a trace.
local mode, hi, lo = ARGV[1], ARGV[2], ARGV[3]
local offset, limit = ARGV[4], ARGV[5]
local min_steps, max_steps = ARGV[6], ARGV[7]
local n = tonumber(ARGV[8])

local now, stale = purge()
local tmp = base .. 'tmp:steps'
local created, steps_key = base .. 'created', base .. 'steps'

-- Reads write nothing, except the purge above and the copy of a narrow step range
-- below, which lives only inside this script run (scripts are atomic).
local copied = false
local function finish(result)
  if copied then redis.call('DEL', tmp) end
  return result
end
local function empty()
  if mode == 'count' then return finish(0) end
  return finish({ {}, {} })
end

-- Every index is a sorted set whose members are "<created_at hex><run_id>", all with
-- score 0, so each is already in list order. The smallest index of the filter is
-- walked; membership in the others is checked a batch at a time.
local driver, others = created, {}
if n > 0 then
  local size = math.huge
  driver = nil
  for i = 1, n do
    local key = base .. ARGV[8 + i]
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

local check_steps = min_steps ~= '' or max_steps ~= ''
local steps_lo = min_steps == '' and -math.huge or tonumber(min_steps)
local steps_hi = max_steps == '' and math.huge or tonumber(max_steps)
if check_steps then
  local smin = min_steps == '' and '-inf' or min_steps
  local smax = max_steps == '' and '+inf' or max_steps
  local in_range = redis.call('ZCOUNT', steps_key, smin, smax)
  if in_range == 0 then return empty() end
  local span = redis.call('ZLEXCOUNT', driver, lo, hi)
  if span == 0 then return empty() end
  -- Walking the driver costs about the members visited before the page is full;
  -- copying the traces in the step range costs their number (about twice as much per
  -- member). Take the cheaper way.
  local visit = span
  if mode ~= 'count' and limit ~= '-1' then
    local share = in_range / redis.call('ZCARD', steps_key)
    visit = math.min(span, (tonumber(offset) + tonumber(limit)) / share)
  end
  if 2 * in_range < visit then
    redis.call('ZRANGESTORE', tmp, steps_key, smin, smax, 'BYSCORE')
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
    driver, others, check_steps = tmp, {}, false
  end
end

local simple = not check_steps and not stale and #others == 0
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
        unindex(id)
      end
    end
  end
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
  local steps = check_steps and redis.call('ZMSCORE', steps_key, unpack(batch))
  local page = {}
  for i, member in ipairs(batch) do
    local keep = true
    for j = 1, #present do
      if not present[j][i] then
        keep = false
        break
      end
    end
    if keep and steps then
      local count = tonumber(steps[i])
      keep = count ~= nil and count >= steps_lo and count <= steps_hi
    end
    if keep and stale then
      local at = redis.call('ZSCORE', exp_key, string.sub(member, 17))
      keep = not at or tonumber(at) >= now
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
  if mode ~= 'count' then fetch(page, out) end
  if #batch < asked then break end
  upper = '(' .. batch[#batch]
end
if mode == 'count' then return finish(taken) end
return finish({ out, damaged })
