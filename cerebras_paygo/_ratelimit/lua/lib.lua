-- Units: integer microseconds; clock: Redis TIME (+ ARGV[1], a test offset, normally 0). Shared helpers, prepended to every script.
-- The readable reference is cerebras_paygo/_ratelimit/gcra.py; field names of the scope hash KEYS[1]:
--   L<i> limit, T<i> tat, S<i> synced at, H<i> header limit (i = 1..6 in LIMIT_WINDOWS order);
--   seq next sequence number, hd wait head, lh lease head, np pending count, wt/wr waiting tokens/requests,
--   base/cap the Fenwick trees' span, F<i> tree flag, F<i>:<pos> tree cells, P<seq> a pending booking,
--   bu blocked until, pj pause jitter window, ls newest snapshot time, lx latest lease expiry, u/m/f the scope.
local K = KEYS[1]
local WINDOWS = {60000000, 60000000, 3600000000, 3600000000, 86400000000, 86400000000}
local TOKENS = {false, true, false, true, false, true}
local MIN_CAP = 64

-- Integers as exact decimal strings (tostring would round to 14 digits).
local function int(x) return string.format('%d', x) end

local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2]) + tonumber(ARGV[1])
end

local function num(field)
  local v = redis.call('HGET', K, field)
  if v then return tonumber(v) end
  return nil
end

local function cost(units, limit, window)
  -- ceil(units * window / limit), split so the product stays exact for usual limits.
  local q = math.floor(window / limit)
  local r = window - q * limit
  return units * q + math.ceil(units * r / limit)
end

local function set_limit(i, limit, now)
  local old = num('L' .. i)
  if old == limit then return end
  local tat = num('T' .. i)
  if old and tat and tat > now then
    redis.call('HSET', K, 'T' .. i, now + math.ceil((tat - now) * old / limit))
  end
  redis.call('HSET', K, 'L' .. i, limit)
end

-- Make bucket i exist with capacity limit; returns its tat.
local function bucket(i, limit, now)
  local tat = num('T' .. i)
  if not tat then
    redis.call('HSET', K, 'L' .. i, limit, 'T' .. i, now)
    return now
  end
  set_limit(i, limit, now)
  return num('T' .. i)
end

-- Fenwick trees: "move every pending booking after seq on bucket i by delta" (see gcra.Shifts).
local function tree_value(seq, i)
  if not redis.call('HGET', K, 'F' .. i) then return 0 end
  local pos = seq - (num('base') or 0) + 1
  local total = 0
  while pos > 0 do
    total = total + (num('F' .. i .. ':' .. pos) or 0)
    pos = pos - bit.band(pos, -pos)
  end
  return total
end

local function tree_add_after(seq, i, delta)
  if delta == 0 or (num('np') or 0) == 0 then return end
  local cap = num('cap') or MIN_CAP
  local pos = 1
  if seq then pos = math.max(1, seq - (num('base') or 0) + 2) end
  if pos > cap then return end
  redis.call('HSET', K, 'F' .. i, 1)
  while pos <= cap do
    redis.call('HINCRBY', K, 'F' .. i .. ':' .. pos, delta)
    pos = pos + bit.band(pos, -pos)
  end
end

-- A pending booking: "lease_exp tokens requests waiting r1 .. r6 lease" (raw starts, "x" = not booked;
-- lease_exp is a lower bound, moved on when the start moved: see lease_expiry).
local function entry_get(seq)
  local v = redis.call('HGET', K, 'P' .. seq)
  if not v then return nil end
  local e = {}
  for w in string.gmatch(v, '%S+') do e[#e + 1] = w end
  return e
end

local function entry_put(seq, e)
  redis.call('HSET', K, 'P' .. seq, table.concat(e, ' '))
end

local function entry_start(seq, e)
  local start = 0
  for i = 1, 6 do
    local raw = e[4 + i]
    if raw ~= 'x' then
      local at = tonumber(raw) + tree_value(seq, i)
      if at > start then start = at end
    end
  end
  return start
end

local function unwait(e)
  if e[4] == '1' then
    redis.call('HINCRBY', K, 'wt', -tonumber(e[2]))
    redis.call('HINCRBY', K, 'wr', -tonumber(e[3]))
    e[4] = '0'
  end
end

local function entry_del(seq, e)
  unwait(e)
  redis.call('HDEL', K, 'P' .. seq)
  redis.call('HINCRBY', K, 'np', -1)
end

-- Undo a booking: its request and tokens return (the gcra.release step).
local function refund_all(seq, mask, tokens, now)
  for i = 1, 6 do
    if bit.band(mask, bit.lshift(1, i - 1)) ~= 0 then
      local limit, tat = num('L' .. i), num('T' .. i)
      if limit and tat then
        local units = 1
        if TOKENS[i] then units = tokens end
        local c = cost(units, limit, WINDOWS[i])
        local t = tat - c
        if t < now then t = now end
        redis.call('HSET', K, 'T' .. i, t)
        tree_add_after(seq, i, -c)
      end
    end
  end
end

-- A lease runs from the booking's start as it is NOW: header syncs and 429 pauses move a start
-- later after booking, and a holder still waiting its turn is alive. Returns the expiry, stored.
local function lease_expiry(seq, e)
  local lease = tonumber(e[11] or '')
  if not lease then return tonumber(e[1]) end  -- booked by a script that stored the expiry only
  local start = entry_start(seq, e)
  local bu = num('bu') or 0
  if bu > 0 then
    local resume = bu + (num('pj') or 0)
    if resume > start then start = resume end
  end
  local exp = math.max(tonumber(e[1]), start + lease)
  if exp ~= tonumber(e[1]) then
    e[1] = int(exp)
    entry_put(seq, e)
    if exp > (num('lx') or 0) then redis.call('HSET', K, 'lx', exp) end
  end
  return exp
end

-- Maintenance, amortized O(1): reclaim pending bookings whose lease expired (their holder never
-- came back to send them: released), then stop counting as waiting those whose start has come.
local function maintain(now)
  local nxt = num('seq') or 0
  local lh = num('lh') or 0
  while lh < nxt do
    local e = entry_get(lh)
    if e then
      if tonumber(e[1]) > now or lease_expiry(lh, e) > now then break end
      local mask = 0
      for i = 1, 6 do if e[4 + i] ~= 'x' then mask = mask + bit.lshift(1, i - 1) end end
      entry_del(lh, e)
      refund_all(lh, mask, tonumber(e[2]), now)
    end
    lh = lh + 1
  end
  redis.call('HSET', K, 'lh', lh)
  local hd = math.max(num('hd') or 0, lh)
  while hd < nxt do
    local e = entry_get(hd)
    if e then
      if e[4] == '1' then
        if entry_start(hd, e) > now then break end
        unwait(e)
        entry_put(hd, e)
      end
    end
    hd = hd + 1
  end
  redis.call('HSET', K, 'hd', hd)
end

-- Give seq a tree position; rebase (fold the moves into the raw starts) when it has none.
local function make_room(seq)
  local base = num('base') or 0
  local cap = num('cap') or MIN_CAP
  if seq - base < cap then return end
  local lh = num('lh') or 0
  local newbase = seq
  for s = math.max(lh, base), seq - 1 do
    local e = entry_get(s)
    if e then
      if s < newbase then newbase = s end
      for i = 1, 6 do
        if e[4 + i] ~= 'x' then e[4 + i] = int(tonumber(e[4 + i]) + tree_value(s, i)) end
      end
      entry_put(s, e)
    end
  end
  for i = 1, 6 do
    if redis.call('HGET', K, 'F' .. i) then
      for pos = 1, cap do redis.call('HDEL', K, 'F' .. i .. ':' .. pos) end
      redis.call('HDEL', K, 'F' .. i)
    end
  end
  local span = seq - newbase + 1
  local newcap = MIN_CAP
  while newcap < 2 * span do newcap = newcap * 2 end
  redis.call('HSET', K, 'base', newbase, 'cap', newcap)
end

-- Idle expiry: keep the key while any state matters (a bucket not yet full, a pause, a lease),
-- plus idle_ms so learned header limits survive short gaps.
local function touch(now, idle_ms)
  local horizon = now
  for i = 1, 6 do
    local tat = num('T' .. i)
    if tat and tat > horizon then horizon = tat end
  end
  local bu, lx = num('bu') or 0, num('lx') or 0
  if bu > horizon then horizon = bu end
  if lx > horizon then horizon = lx end
  redis.call('PEXPIRE', K, math.ceil((horizon - now) / 1000) + idle_ms)
end

local function effective(limits)
  local eff = {}
  for i = 1, 6 do
    local h = num('H' .. i)
    local u = tonumber(limits[i])
    if h and h > 0 then eff[i] = h elseif u and u > 0 then eff[i] = u else eff[i] = false end
  end
  return eff
end
