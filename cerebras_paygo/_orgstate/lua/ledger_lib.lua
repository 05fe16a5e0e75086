-- The budget ledger of KEYS[1]: b:spent, b:flight (nano-USD), b:seq, h:<id> (a hold's amount);
-- KEYS[2] is a sorted set of hold ids by lease expiry (same hash tag: same cluster slot).
local Z = KEYS[2]

-- Holds whose lease ran out (their process died before settling): their worst case leaves the books.
local function expire(now)
  local ids = redis.call('ZRANGEBYSCORE', Z, '-inf', now)
  for _, id in ipairs(ids) do
    local amount = tonumber(redis.call('HGET', K, 'h:' .. id) or '0')
    redis.call('HINCRBY', K, 'b:flight', -amount)
    redis.call('HDEL', K, 'h:' .. id)
    redis.call('ZREM', Z, id)
  end
  return #ids
end

local function touch(ttl_ms)
  redis.call('PEXPIRE', K, ttl_ms)
  if redis.call('EXISTS', Z) == 1 then redis.call('PEXPIRE', Z, ttl_ms) end
end
