-- recover: the reaper's pass. Jobs whose lease expired count a stall and go back to the queue,
-- or end: cancelled when a cancel was requested, failed when out of attempts or past maxStalls.
-- Takes jobs stranded in `claiming` by a worker that died before their activation as that worker's
-- attempts, already expired (the next pass counts the stall), then keeps history within its
-- retention (bounded work).
-- KEYS jobs payloads attempts waiters ready held claiming seen due leases queued delayed
-- KEYS failing completed failed cancelled expires meta groups groupinfo bygroup
-- ARGV[1] now (ms)  [2] maxStalls  [3] claim grace (ms)  [4] reply channel prefix
--      [5] inline limit (bytes)  [6] error of failed jobs  [7] its failure group block (see codec.ts)
--      [8] most history entries to trim or delete
-- Returns { requeued ids, failed ids }
local q = queue_of(tonumber(ARGV[1]))
local now, maxStalls, grace = q.now, tonumber(ARGV[2]), tonumber(ARGV[3])
local err = ARGV[6]
local g, info = parse_group(ARGV[7])
local requeued, failed = {}, {}
local batch = new_batch()

-- In (lease deadline, id) order.
local expired = redis.call('ZRANGEBYSCORE', K.leases, '-inf', now, 'LIMIT', 0, 1000)
if #expired > 0 then
  local metas = redis.call('HMGET', K.jobs, unpack(expired))
  for i = 1, #expired do
    local id, m = expired[i], metas[i]
    if not m or st_of(m) ~= 'p' then
      redis.call('ZREM', K.leases, id) -- a lease left without its job: nothing to recover
    else
      local sl = stalls_of(m) + 1
      m = with_uint(m, R_STALLS, sl)
      count(q, 'stalled', 1)
      if has(m, F_CANCEL) then
        finish(q, batch, id, m, 'x', 's', nil, ttl_of(m))
      elseif attempts_of(m) >= max_of(m) or sl > maxStalls then
        finish(q, batch, id, m, 'e', 's', err, ttl_of(m), g, info)
        failed[#failed + 1] = id
      else
        requeue_running(q, batch, id, m, 's')
        requeued[#requeued + 1] = id
      end
    end
  end
  apply_moves(q)
  flush(q, batch, ARGV[4], tonumber(ARGV[5]))
end

-- An entry in `claiming` is normally activated within a round trip. One seen by an earlier pass
-- at least `grace` ms ago belongs to a dead worker, whose handler may have run (a consumer starts
-- a BLMOVE'd job before its activation is sent, and a handler can kill its process first): it is
-- taken as that worker's attempt with a lease already expired, so the next pass counts the stall
-- and requeues or fails it like any other, and a job that kills every worker runs out of
-- attempts. claim.lua's LREM makes a late activation find nothing.
local stuck = redis.call('LRANGE', K.claiming, 0, -1)
local present = {}
for i = 1, #stuck do
  local e = stuck[i]
  local id = element_id(e)
  present[id] = true
  local seenAt = redis.call('HGET', K.seen, id)
  if not seenAt then
    redis.call('HSET', K.seen, id, now)
  elseif now - tonumber(seenAt) >= grace then
    redis.call('LREM', K.claiming, 1, e)
    redis.call('HDEL', K.seen, id)
    take(q, { e }, 0, '', {})
  end
end
local marks = redis.call('HKEYS', K.seen)
for i = 1, #marks do
  if not present[marks[i]] then redis.call('HDEL', K.seen, marks[i]) end
end

-- ZSET leases left with its pin only (see LEASE_PIN in _lib.lua): the pin goes, so the key of an
-- idle queue goes too (the next lease puts it back).
if redis.call('ZCARD', K.leases) == 1 then redis.call('ZREM', K.leases, LEASE_PIN) end

tidy(q, tonumber(ARGV[8]), true)
save(q)
return { requeued, failed }
