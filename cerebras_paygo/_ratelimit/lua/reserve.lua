-- Units: integer microseconds; clock: Redis TIME (+ ARGV[1]). Book 1 request + tokens on every bucket, all or nothing, FIFO.
-- ARGV: offset, tokens, max_wait (-1: none), jitter [0,1), lease, idle_ms, base_url, fingerprint, model, limits 1..6 (0: none),
-- margin (us of headroom on request buckets no header has reported: gcra.request_margin).
-- Returns {0, seq, wait, binding (0 none, 1..6 bucket, 7 pause), mask} | {1, bucket, units, capacity} | {2, binding, wait}.
local now = now_us()
local tokens = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local jitter = tonumber(ARGV[4])
local margin = tonumber(ARGV[16] or '0')
maintain(now)
local limits = {}
for i = 1, 6 do limits[i] = ARGV[9 + i] end
local eff = effective(limits)
local start, binding, mask = now, 0, 0
local plan, allowed = {}, {}
for i = 1, 6 do
  if eff[i] then
    local limit = eff[i]
    local tat = bucket(i, limit, now)
    local units = 1
    if TOKENS[i] then units = tokens end
    if units > limit then return {1, i, units, limit} end
    if tat < now then tat = now end
    local c = cost(units, limit, WINDOWS[i])
    local new_tat = tat + c
    local at = new_tat - WINDOWS[i]
    if margin > 0 and not TOKENS[i] and not redis.call('HGET', K, 'S' .. i) then
      at = at + math.max(0, math.min(margin, WINDOWS[i] - c))
    end
    allowed[i] = at
    if at > start then start, binding = at, i end
    plan[i] = new_tat
    mask = mask + bit.lshift(1, i - 1)
  end
end
local bu = num('bu') or 0
if bu > now then
  local resume = bu + math.floor(jitter * (num('pj') or 0))
  if resume > start then start, binding = resume, 7 end
end
if max_wait >= 0 and start - now > max_wait then return {2, binding, start - now} end
for i = 1, 6 do
  if plan[i] then redis.call('HSET', K, 'T' .. i, plan[i]) end
end
local seq = num('seq') or 0
redis.call('HSET', K, 'seq', seq + 1, 'u', ARGV[7], 'f', ARGV[8], 'm', ARGV[9])
if start > now then
  make_room(seq)
  local lease_exp = start + tonumber(ARGV[5])
  local e = {int(lease_exp), int(tokens), '1', '1'}
  for i = 1, 6 do
    if allowed[i] then e[4 + i] = int(allowed[i] - tree_value(seq, i)) else e[4 + i] = 'x' end
  end
  e[11] = ARGV[5]
  entry_put(seq, e)
  redis.call('HINCRBY', K, 'np', 1)
  redis.call('HINCRBY', K, 'wt', tokens)
  redis.call('HINCRBY', K, 'wr', 1)
  if lease_exp > (num('lx') or 0) then redis.call('HSET', K, 'lx', lease_exp) end
end
touch(now, tonumber(ARGV[6]))
return {0, seq, start - now, binding, mask}
