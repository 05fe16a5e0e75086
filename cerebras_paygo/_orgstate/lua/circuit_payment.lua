-- A 402 on the key (MemoryCircuitStore.payment_required).
-- ARGV: offset, probe (0/1), token, sent age (-1: unknown), probe_interval, ttl_ms.
-- Returns {opened (0/1), open (0/1), outage id (its start in Redis time, 0: none)}.
local now = now_us()
local probe = ARGV[2] == '1'
if probe and num('ps') and redis.call('HGET', K, 'pt') == ARGV[3] then redis.call('HDEL', K, 'ps') end
redis.call('HSET', K, 'known', 1)
redis.call('PEXPIRE', K, tonumber(ARGV[6]))
if num('open') == 1 then
  if probe then redis.call('HSET', K, 'np', now + tonumber(ARGV[5])) end
  return {0, 1, num('os') or 0}
end
local age = tonumber(ARGV[4])
if age >= 0 and now - age < (num('ca') or -1) then return {0, 0, 0} end
-- The outage id is its start: it only grows, even across the key's expiry.
redis.call('HSET', K, 'open', 1, 'os', now, 'np', now + tonumber(ARGV[5]))
redis.call('HDEL', K, 'ps')
redis.call('HINCRBY', K, 'n', 1)
return {1, 1, now}
