-- The probe ended saying nothing about credit (MemoryCircuitStore.probe_done): free its slot. ARGV: offset, token.
if redis.call('HGET', K, 'pt') == ARGV[2] then redis.call('HDEL', K, 'ps') end
return 1
