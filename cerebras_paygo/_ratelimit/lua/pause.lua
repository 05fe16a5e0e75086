-- Units: integer microseconds; clock: Redis TIME (+ ARGV[1]). A 429: nothing on the scope starts before now + duration.
-- ARGV: offset, duration, jitter window, idle_ms, base_url, fingerprint, model. A pause is never shortened.
local now = now_us()
local until_ = now + tonumber(ARGV[2])
if until_ > (num('bu') or 0) then
  redis.call('HSET', K, 'bu', until_, 'pj', tonumber(ARGV[3]), 'u', ARGV[5], 'f', ARGV[6], 'm', ARGV[7])
end
touch(now, tonumber(ARGV[4]))
return 1
