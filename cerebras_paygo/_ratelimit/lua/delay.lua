-- Units: integer microseconds; clock: Redis TIME (+ ARGV[1]). Microseconds until a booking may be sent (its start or a pause).
-- ARGV: offset, seq, jitter, started (0/1). Returns {delay, state}: state 0 waiting or sent, 1 reclaimed (its lease expired).
-- A delay of 0 marks the booking started: it no longer waits, no longer moves with refunds, and has no lease any more.
if redis.call('EXISTS', K) == 0 then return {0, 0} end
local now = now_us()
local seq = tonumber(ARGV[2])
local target, state = 0, 0
local e = nil
if ARGV[4] == '0' then
  e = entry_get(seq)
  if e then target = entry_start(seq, e) else state = 1 end
end
local bu = num('bu') or 0
if bu > now then
  local resume = bu + math.floor(tonumber(ARGV[3]) * (num('pj') or 0))
  if resume > target then target = resume end
end
if target <= now then
  if e then entry_del(seq, e) end
  return {0, state}
end
return {target - now, state}
