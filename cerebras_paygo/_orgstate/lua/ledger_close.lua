-- Settle (actual >= 0) or release (actual = -1) a hold (MemoryLedger.close). A hold whose lease ran
-- out is gone: its actual cost is still counted. ARGV: offset, id, actual, ttl_ms, unsynced spend to add.
-- Returns {spent, in flight, found (0/1)}.
local now = now_us()
expire(now)
local found = 0
local amount = redis.call('HGET', K, 'h:' .. ARGV[2])
if amount then
  redis.call('HDEL', K, 'h:' .. ARGV[2])
  redis.call('ZREM', Z, ARGV[2])
  redis.call('HINCRBY', K, 'b:flight', -tonumber(amount))
  found = 1
end
local add = tonumber(ARGV[5])
local actual = tonumber(ARGV[3])
if actual > 0 then add = add + actual end
if add ~= 0 then redis.call('HINCRBY', K, 'b:spent', add) end
touch(tonumber(ARGV[4]))
local flight = num('b:flight') or 0
if flight < 0 then flight = 0 end
return {num('b:spent') or 0, flight, found}
