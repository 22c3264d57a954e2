-- settle: ends a batch of attempts (each atomically with its notice), then leases up to `max`
-- ready jobs to the same worker: a busy consumer spends one round trip per batch.
-- KEYS[1] ready  [2] jobs  [3] elements  [4] delayed  [5] leases  [6] waiters  [7] errors
--      [8] claiming  [8 + i] done:<id of settlement i>
-- ARGV[1] now (ms)  [2] lease (ms)  [3] max  [4] worker id  [5] reply channel prefix
--      [6] control channel  [7] inline limit (bytes)  [8] length of the done:<id> keys' prefix
--      [9] a: how many activations follow  [10 .. 9 + a] elements this worker took with BLMOVE
--      and whose activation (claim.lua) it has not seen answered: activated here first if still
--      in `claiming`, so a settlement can never overtake its job's activation (an activation
--      retried after NOSCRIPT reaches Redis after commands sent later)
--      then 1 per settlement: a type byte, attempt and n as big-endian doubles, then the body
--      type c complete (n: ttl, body: result) | e fail (n: ttl, body: error) | x cancel (n: ttl)
--         | r retry (n: delay, body: error) | l release (hand back unrun)
-- A settlement applies only while the job is processing in that very attempt, held by this very
-- worker (fencing). A job whose cancel was requested ends cancelled whatever the settlement says.
-- Returns: due time of the earliest delayed job when fewer than `max` jobs were claimed (-1: none
--   or not looked up), then 3 fields per claimed job: id, payload, record (see _lib.lua)
local k = { ready = KEYS[1], jobs = KEYS[2], elements = KEYS[3], delayed = KEYS[4], leases = KEYS[5], waiters = KEYS[6], errors = KEYS[7] }
local now, leaseMs, max, worker = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local replyPrefix, inline, idFrom = ARGV[5], tonumber(ARGV[7]), tonumber(ARGV[8]) + 1
local a = tonumber(ARGV[9])
local first = 9 + a -- settlement i is ARGV[first + i], its done key KEYS[8 + i]
local n = #ARGV - first
local head, wakeAt
local batch, seen = new_batch(), {}

if a > 0 then
  local late = {}
  for i = 10, 9 + a do
    if redis.call('LREM', KEYS[8], 1, ARGV[i]) == 1 then late[#late + 1] = ARGV[i] end
  end
  take(k.jobs, k.elements, k.leases, late, now, leaseMs, worker, {})
end

if n > 0 then
  local ids = {}
  for i = 1, n do ids[i] = string.sub(KEYS[8 + i], idFrom) end
  local metas = redis.call('HMGET', k.jobs, unpack(ids))
  for i = 1, n do
    local s = ARGV[first + i]
    local typ, attempt, num = struct.unpack('>c1dd', s)
    local id, m = ids[i], metas[i]
    -- The worker too: an id handed back from `claiming` is claimed again in the same attempt,
    -- and the worker that BLMOVE'd it may have run the handler although its activation came late.
    if m and not seen[id] and string.sub(m, 1, 1) == 'p' and attempts_of(m) == attempt and worker_of(m) == worker then
      seen[id] = true
      local kDone = KEYS[8 + i]
      if bit.band(flags_of(m), 1) ~= 0 then
        if typ == 'r' or typ == 'l' then num = ttl_of(m) end
        finish(kDone, id, m, 'x', '', num, batch)
      elseif typ == 'c' then
        finish(kDone, id, m, 'c', string.sub(s, 18), num, batch)
      elseif typ == 'e' then
        finish(kDone, id, m, 'e', string.sub(s, 18), num, batch)
      elseif typ == 'x' then
        finish(kDone, id, m, 'x', '', num, batch)
      elseif typ == 'r' then
        redis.call('HSET', k.errors, id, string.sub(s, 18))
        redis.call('ZREM', k.leases, id)
        m = with_flags(m, bit.bor(flags_of(m), 4))
        if num > 0 then
          local due = now + num
          if not head then head = delayed_head(k.delayed) end
          if due < head then
            head = due
            wakeAt = due
          end
          redis.call('HSET', k.jobs, id, moved(m, 'f', 0))
          redis.call('ZADD', k.delayed, due, id)
        else
          m = moved(m, 'q', 0)
          redis.call('HSET', k.jobs, id, m)
          redis.call('RPUSH', k.ready, ready_element(redis.call('HGET', k.elements, id), m))
        end
      elseif typ == 'l' then
        -- Handed back unrun: the attempt does not count, and the job goes first in line.
        m = moved(m, 'q', -1)
        redis.call('ZREM', k.leases, id)
        redis.call('HSET', k.jobs, id, m)
        redis.call('LPUSH', k.ready, ready_element(redis.call('HGET', k.elements, id), m))
      end
    end
  end
  flush(k, batch, replyPrefix, inline)
end
if wakeAt then redis.call('PUBLISH', ARGV[6], 'W' .. string.format('%.0f', wakeAt)) end

local out = { -1 }
if max > 0 then
  promote(k.ready, k.jobs, k.elements, k.delayed, now)
  local elements = redis.call('LPOP', k.ready, max)
  if elements then take(k.jobs, k.elements, k.leases, elements, now, leaseMs, worker, out) end
  -- Fewer than asked: the queue is drained, and the worker will block next. Tell it when the
  -- earliest delayed job is due, so it can block at once without probing first.
  if #out - 1 < 3 * max then
    local h = delayed_head(k.delayed)
    if h ~= math.huge then out[1] = h end
  end
end
return out
