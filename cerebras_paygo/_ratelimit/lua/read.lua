-- Units: integer microseconds; clock: Redis TIME (+ ARGV[1]). The scope's state for stats and pause_remaining.
-- ARGV: offset. Returns {exists (0/1), now, blocked_until, waiting requests, base_url, fingerprint, model,
-- then per bucket 1..6: limit, tat, synced_at ("" when absent)}.
if redis.call('EXISTS', K) == 0 then return {0} end
local now = now_us()
maintain(now)
local out = {1, now, num('bu') or 0, num('wr') or 0,
  redis.call('HGET', K, 'u') or '', redis.call('HGET', K, 'f') or '', redis.call('HGET', K, 'm') or ''}
for i = 1, 6 do
  out[#out + 1] = redis.call('HGET', K, 'L' .. i) or ''
  out[#out + 1] = redis.call('HGET', K, 'T' .. i) or ''
  out[#out + 1] = redis.call('HGET', K, 'S' .. i) or ''
end
return out
