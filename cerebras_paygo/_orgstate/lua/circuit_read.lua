-- The circuit for views and `cerebras-paygo status`. ARGV: offset.
-- Returns {exists, now, open, known, outage start, next probe, probe started, closed at, outages} ('' when unset).
if redis.call('EXISTS', K) == 0 then return {0} end
local out = {1, now_us()}
for _, f in ipairs({'open', 'known', 'os', 'np', 'ps', 'ca', 'n'}) do
  out[#out + 1] = redis.call('HGET', K, f) or ''
end
return out
