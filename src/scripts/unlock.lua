-- unlock: releases a lock if `owner` holds it.
-- KEYS lock
-- ARGV[1] owner
-- Returns 1 when released, else 0.
if redis.call('GET', K.lock) == ARGV[1] then return redis.call('DEL', K.lock) end
return 0
