-- job: one job's record and what goes with it, or nothing when it is neither active nor in
-- history.
-- KEYS jobs payloads attempts waiters due leases queued delayed failing
-- KEYS completed failed cancelled meta
-- ARGV[1] id  [2] now (ms)
-- Returns {} or { record (its body: result or last error), payload, attempt entries, waiting
--   instances, jobs ahead (-1 unless queued), due time or lease deadline ('' when none) }
local id = ARGV[1]
local q = queue_of(tonumber(ARGV[2]))
local m = redis.call('HGET', K.jobs, id)
if not m then return {} end
local st = st_of(m)
if TERMINAL[st] and not (redis.call('ZSCORE', IK[st], id) and dbl(m, R_STAMP) >= history_floor(q, st)) then return {} end
local history = ''
if has(m, F_HISTORY) then history = redis.call('HGET', K.attempts, id) or '' end
local waiting = 0
if has(m, F_WAITED) then waiting = math.floor(#(redis.call('HGET', K.waiters, id) or '') / TOKEN) end
local ahead = -1
if st == 'q' then ahead = redis.call('ZRANK', K.queued, id) or -1 end
local at = ''
if st == 'd' or st == 'f' then at = redis.call('ZSCORE', K.due, id) or '' end
if st == 'p' then at = redis.call('ZSCORE', K.leases, id) or '' end
return { m, redis.call('HGET', K.payloads, id) or '', history, waiting, ahead, at }
