-- status: a job's record while active, or terminal within its result TTL.
-- KEYS jobs outcomes
-- ARGV[1] id  [2] now (ms)
-- Returns {} when unknown (or its result TTL passed); else { record, result or last error ('' when none) }
local m = redis.call('HGET', K.jobs, ARGV[1])
if not m or (TERMINAL[st_of(m)] and expires_of(m) <= tonumber(ARGV[2])) then return {} end
local body = ''
if has(m, F_OUTCOME) then body = redis.call('HGET', K.outcomes, ARGV[1]) or '' end
return { m, body }
