-- One completed request into the spend meter (MemorySpendStore.record): fields m:<stat>:<model> of KEYS[1].
-- ARGV: offset, model, requests, input, output, cached, reasoning, cost (nano-USD), ttl_ms.
local stats = {'requests', 'input', 'output', 'cached', 'reasoning', 'cost'}
for i, name in ipairs(stats) do
  local v = tonumber(ARGV[2 + i])
  if v ~= 0 then redis.call('HINCRBY', K, 'm:' .. name .. ':' .. ARGV[2], v) end
end
redis.call('HSETNX', K, 'm:requests:' .. ARGV[2], 0)
redis.call('PEXPIRE', K, tonumber(ARGV[9]))
return 1
