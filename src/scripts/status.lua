-- status: a job's record while active, or terminal within its result TTL.
-- KEYS jobs
-- ARGV[1] id  [2] now (ms)
-- Returns {} when unknown (or its result TTL passed); else { record } (its body: result or last error)
local m = redis.call('HGET', K.jobs, ARGV[1])
if not m or (TERMINAL[st_of(m)] and expires_of(m) <= tonumber(ARGV[2])) then return {} end
return { m }
