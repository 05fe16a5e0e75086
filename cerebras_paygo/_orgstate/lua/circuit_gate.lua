-- May a caller send now? (MemoryCircuitStore.gate) Fields of the circuit hash KEYS[1]: open, known,
-- os outage start, np next probe at, ps probe started, pt probe token, tk token counter, ca closed at, n outages.
-- ARGV: offset, max_wait, probe_interval, probe_lease, first_answer_poll, probe_poll, min_wait, ttl_ms.
-- Returns {kind (1 send, 2 probe, 3 wait, 4 fail), wait, outage age (-1: none), token, reclaimed (0/1)}.
local now = now_us()
local max_wait, interval, lease = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local first_poll, probe_poll, min_wait = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local open = num('open') == 1
local ps = num('ps')
local reclaimed = 0
local function take_probe()
  local token = redis.call('HINCRBY', K, 'tk', 1)
  redis.call('HSET', K, 'ps', now, 'pt', token)
  redis.call('PEXPIRE', K, tonumber(ARGV[8]))
  return token
end
if ps and now - ps >= lease then
  redis.call('HDEL', K, 'ps')
  ps = nil
  if open then reclaimed = 1 end
end
if not open then
  if num('known') == 1 then return {1, 0, -1, 0, 0} end
  if not ps then return {2, 0, -1, take_probe(), 0} end
  return {3, first_poll, -1, 0, 0}
end
local started = num('os') or now
local np = num('np') or 0
if not ps and now >= np then return {2, 0, now - started, take_probe(), reclaimed} end
local waited = now - started
if waited >= max_wait then return {4, 0, waited, 0, reclaimed} end
local slot
if not ps then slot = np - now else slot = math.min(interval, probe_poll) end
local wait = math.min(slot, interval, max_wait - waited)
if wait < min_wait then wait = min_wait end
return {3, wait, waited, 0, reclaimed}
