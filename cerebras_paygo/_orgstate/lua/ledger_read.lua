-- The ledger and the meter for views and `cerebras-paygo status`. ARGV: offset.
-- Returns {exists, spent, in flight, holds, then field, value pairs of the meter (m:<stat>:<model>)}.
if redis.call('EXISTS', K) == 0 then return {0} end
local now = now_us()
expire(now)
local flight = num('b:flight') or 0
if flight < 0 then flight = 0 end
local out = {1, num('b:spent') or 0, flight, redis.call('ZCARD', Z)}
local all = redis.call('HGETALL', K)
for i = 1, #all, 2 do
  if string.sub(all[i], 1, 2) == 'm:' then
    out[#out + 1] = all[i]
    out[#out + 1] = all[i + 1]
  end
end
return out
