-- lock: takes a lock, or renews it when `owner` already holds it.
-- KEYS lock
-- ARGV[1] owner  [2] ttl (ms)
-- Returns 1 when `owner` holds the lock now, else 0.
if redis.call('SET', K.lock, ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', K.lock) == ARGV[1] then
  redis.call('PEXPIRE', K.lock, ARGV[2])
  return 1
end
return 0
