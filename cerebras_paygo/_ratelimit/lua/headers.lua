-- Units: integer microseconds; clock: Redis TIME (+ ARGV[1]). Correct the buckets from one response's x-ratelimit-* headers.
-- ARGV: offset, age (us since the response arrived), in-flight tokens (-1: the waiting ones), idle_ms, base_url, fingerprint,
-- model, limits 1..6 (0: none), header limit 1..6 (0: absent), header remaining 1..6 (-1: absent).
-- Header sync only lowers a bucket; a snapshot older than the newest applied one is ignored.
-- Returns {applied (0/1), effective limit 1..6 (0: none)}.
local now = now_us()
maintain(now)
local received = now - tonumber(ARGV[2])
local limits = {}
for i = 1, 6 do limits[i] = ARGV[7 + i] end
local ls = num('ls')
local applied = 1
if ls and received < ls then
  applied = 0
else
  redis.call('HSET', K, 'ls', received, 'u', ARGV[5], 'f', ARGV[6], 'm', ARGV[7])
  for i = 1, 6 do
    local h = tonumber(ARGV[13 + i])
    if h > 0 then redis.call('HSET', K, 'H' .. i, h) end
  end
  local eff = effective(limits)
  for i = 1, 6 do
    if eff[i] and num('L' .. i) then set_limit(i, eff[i], now) end
  end
  local flight_tokens = tonumber(ARGV[3])
  if flight_tokens < 0 then flight_tokens = num('wt') or 0 end
  local flight_requests = num('wr') or 0
  for i = 1, 6 do
    local remaining = tonumber(ARGV[19 + i])
    if remaining >= 0 and eff[i] then
      local limit = eff[i]
      local tat = bucket(i, limit, now)
      redis.call('HSET', K, 'S' .. i, received)
      local target = remaining - flight_requests
      if TOKENS[i] then target = remaining - flight_tokens end
      if target < limit then
        local floor = received + cost(limit - target, limit, WINDOWS[i])
        if floor > tat then
          -- Pending bookings sit on top of what the server has counted: they move with it.
          local base = tat
          if base < now then base = now end
          tree_add_after(nil, i, floor - base)
          redis.call('HSET', K, 'T' .. i, floor)
        end
      end
    end
  end
  touch(now, tonumber(ARGV[4]))
end
local eff = effective(limits)
local out = {applied}
for i = 1, 6 do out[i + 1] = eff[i] or 0 end
return out
