-- cancel: cancels a job that is not running; with mode 'abort', also asks a running job to stop
-- (flag + notice to its worker) and keeps a `cancelled` record for jobs it ends.
-- KEYS[1] ready  [2] jobs  [3] elements  [4] delayed  [5] leases  [6] waiters  [7] errors
--      [8] claiming  [9] done:<id>
-- ARGV[1] id  [2] mode: cancel | abort  [3] ttl of the cancelled record (ms, abort only)
--      [4] reply channel prefix  [5] control channel  [6] inline limit (bytes)
-- Returns cancelled | aborting | processing | completed | not_found
local k = { ready = KEYS[1], jobs = KEYS[2], elements = KEYS[3], delayed = KEYS[4], leases = KEYS[5], waiters = KEYS[6], errors = KEYS[7] }
local id, mode = ARGV[1], ARGV[2]
local m = redis.call('HGET', k.jobs, id)
if not m then
  if redis.call('EXISTS', KEYS[9]) == 1 then return 'completed' end
  return 'not_found'
end
local st, fl = string.sub(m, 1, 1), flags_of(m)
if st == 'p' then
  if mode ~= 'abort' then return 'processing' end
  if bit.band(fl, 1) == 0 then redis.call('HSET', k.jobs, id, with_flags(m, bit.bor(fl, 1))) end
  redis.call('PUBLISH', ARGV[5], 'A' .. id)
  return 'aborting'
end
-- Queued, delayed or failing. A queued id may sit in `claiming` (taken by a BLMOVE, not yet
-- activated): removing it there makes that activation find nothing.
if st == 'q' then
  local e = ready_element(redis.call('HGET', k.elements, id), m)
  if redis.call('LREM', k.ready, 1, e) == 0 then redis.call('LREM', KEYS[8], 1, e) end
else
  redis.call('ZREM', k.delayed, id)
end
local batch = new_batch()
if mode == 'abort' then
  finish(KEYS[9], id, m, 'x', '', tonumber(ARGV[3]), batch)
else
  batch.gone[1] = id
  if bit.band(fl, 4) ~= 0 then batch.errors[1] = id end
  if bit.band(fl, 2) ~= 0 then tell(batch, id, 'x', '') end
end
flush(k, batch, ARGV[4], tonumber(ARGV[6]))
return 'cancelled'
