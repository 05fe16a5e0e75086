-- Book a request's worst case (MemoryLedger.hold).
-- ARGV: offset, amount, limit (-1: none), lease, ttl_ms, unsynced spend to add first.
-- Returns {status (1 held, 2 wait for in-flight requests, 3 refused), id, spent, in flight, holds reclaimed}.
local now = now_us()
local reclaimed = expire(now)
local amount, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
if tonumber(ARGV[6]) ~= 0 then redis.call('HINCRBY', K, 'b:spent', tonumber(ARGV[6])) end
local spent, flight = num('b:spent') or 0, num('b:flight') or 0
if flight < 0 then flight = 0 end
local status, id = 3, 0
if limit < 0 or spent + flight + amount <= limit then
  id = redis.call('HINCRBY', K, 'b:seq', 1)
  redis.call('HSET', K, 'h:' .. id, amount)
  redis.call('ZADD', Z, now + tonumber(ARGV[4]), id)
  flight = redis.call('HINCRBY', K, 'b:flight', amount)
  status = 1
elseif flight > 0 and spent + amount <= limit then
  status = 2
end
touch(tonumber(ARGV[5]))
return {status, id, spent, flight, reclaimed}
