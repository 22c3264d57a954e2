-- ttl: sets how long a terminal record answers getStatus and dedup, from now. History retention
-- is unaffected.
-- KEYS jobs expires completed failed cancelled
-- ARGV[1] id  [2] ttl (ms)  [3] now (ms)
-- Returns updated | not_terminal | not_found
local id, now = ARGV[1], tonumber(ARGV[3])
local m = redis.call('HGET', K.jobs, id)
if not m then return 'not_found' end
if not TERMINAL[st_of(m)] then return 'not_terminal' end
if expires_of(m) <= now then return 'not_found' end
local ex = now + tonumber(ARGV[2])
redis.call('HSET', K.jobs, id, with_dbl(m, R_EXPIRES_AT, ex))
-- Out of history, ZSET `expires` says when it goes.
if not redis.call('ZSCORE', IK[st_of(m)], id) then redis.call('ZADD', K.expires, ex, id) end
return 'updated'
