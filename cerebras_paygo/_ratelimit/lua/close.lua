-- Units: integer microseconds; clock: Redis TIME (+ ARGV[1]). Settle (actual >= 0) or release (actual = -1) one booking.
-- ARGV: offset, seq, reserved tokens, actual tokens (-1: release), started (0/1), mask, idle_ms.
-- Returns 1, or 0 when there was nothing to undo (the scope expired or was reset, or the lease reclaimed it).
if redis.call('EXISTS', K) == 0 then return 0 end
local now = now_us()
local seq = tonumber(ARGV[2])
local reserved = tonumber(ARGV[3])
local actual = tonumber(ARGV[4])
local mask = tonumber(ARGV[6])
if ARGV[5] == '0' then
  local e = entry_get(seq)
  if not e then return 0 end
  entry_del(seq, e)
end
if actual < 0 then
  refund_all(seq, mask, reserved, now)
elseif actual ~= reserved then
  for i = 1, 6 do
    if TOKENS[i] and bit.band(mask, bit.lshift(1, i - 1)) ~= 0 then
      local limit, tat = num('L' .. i), num('T' .. i)
      if limit and tat then
        local delta = cost(actual, limit, WINDOWS[i]) - cost(reserved, limit, WINDOWS[i])
        local t
        if actual > reserved then
          if tat < now then tat = now end
          t = tat + delta
        else
          t = tat + delta
          if t < now then t = now end
        end
        redis.call('HSET', K, 'T' .. i, t)
        tree_add_after(seq, i, delta)
      end
    end
  end
end
touch(now, tonumber(ARGV[7]))
return 1
