-- cancel: cancels a job that is not running; with mode 'abort', also asks a running job to stop
-- (flag + notice to its worker). A job it ends is `cancelled` in history, with a result cache of
-- `ttl` ms for abort and none for cancel (getStatus answers null and the id is free at once).
-- KEYS jobs payloads attempts waiters ready held claiming due leases queued delayed
-- KEYS failing completed failed cancelled expires meta groups groupinfo bygroup
-- ARGV[1] id  [2] mode: cancel | abort  [3] ttl of the cancelled record (ms, abort only)
--      [4] reply channel prefix  [5] control channel  [6] inline limit (bytes)  [7] now (ms)
-- Returns cancelled | aborting | processing | completed | not_found
local id, mode = ARGV[1], ARGV[2]
local q = queue_of(tonumber(ARGV[7]))
local m = redis.call('HGET', K.jobs, id)
if not m then return 'not_found' end
local st = st_of(m)
if TERMINAL[st] then
  if expires_of(m) <= q.now then return 'not_found' end
  return 'completed'
end
if st == 'p' then
  if mode ~= 'abort' then return 'processing' end
  if not has(m, F_CANCEL) then redis.call('HSET', K.jobs, id, with_flags(m, bit.bor(flags_of(m), F_CANCEL))) end
  redis.call('PUBLISH', ARGV[5], 'A' .. id)
  return 'aborting'
end
-- Queued, delayed or failing. A queued id may sit in `claiming` (taken by a BLMOVE, not yet
-- activated): removing it there makes that activation find nothing.
if st == 'q' then unlist(id, m) end
local batch = new_batch()
local ttl = 0
if mode == 'abort' then ttl = tonumber(ARGV[3]) end
finish(q, batch, id, m, 'x', NO_OUTCOME, nil, ttl)
apply_moves(q)
flush(q, batch, ARGV[4], tonumber(ARGV[6]))
tidy(q, TIDY_BUDGET)
save(q)
return 'cancelled'
