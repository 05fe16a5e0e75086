-- Units: integer microseconds and nano-USD; clock: Redis TIME (+ ARGV[1], a test offset, normally 0).
-- Shared helpers, prepended to every script of cerebras_paygo/_orgstate. The readable references are
-- MemoryCircuitStore (cerebras_paygo/_payment.py) and MemoryLedger / MemorySpendStore (_billing.py).
local K = KEYS[1]

local function int(x) return string.format('%d', x) end

local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2]) + tonumber(ARGV[1])
end

local function num(field)
  local v = redis.call('HGET', K, field)
  if v then return tonumber(v) end
  return nil
end
