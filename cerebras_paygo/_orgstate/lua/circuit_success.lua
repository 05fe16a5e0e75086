-- A 2xx on the key (MemoryCircuitStore.success). ARGV: offset, probe (0/1), token, sent age (-1: unknown), ttl_ms.
-- Returns the outage's length when this success closed the circuit, else -1.
local now = now_us()
local probe = ARGV[2] == '1'
if probe and num('ps') and redis.call('HGET', K, 'pt') == ARGV[3] then redis.call('HDEL', K, 'ps') end
redis.call('HSET', K, 'known', 1)
redis.call('PEXPIRE', K, tonumber(ARGV[5]))
if num('open') ~= 1 then return -1 end
local started = num('os') or now
local age = tonumber(ARGV[4])
if not probe and (age < 0 or now - age < started) then return -1 end
redis.call('HSET', K, 'open', 0, 'ca', now)
redis.call('HDEL', K, 'os', 'ps', 'np')
return now - started
