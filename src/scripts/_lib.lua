-- relayq: helpers shared by every script. src/storage/redis/scripts.ts prepends this file to each script, so
-- the record formats below have one definition. Functions here touch only keys a script was
-- given in KEYS and read time only from ARGV.
--
-- Active job (HASH `jobs`, field = job id): a binary record, so scripts read and write fields by
-- offset with no number <-> text conversion (string.format and string.match dominated the
-- scripts' cost). Numbers are big-endian doubles (exact for integers below 2^53).
--   byte 1 state      q queued, d delayed, p processing, f failing (waits out its retry backoff)
--   2-9 attempts  10-17 maxAttempts  18-25 resultTTL  26-33 createdAt  34-41 stalls
--   42 flags          1 cancel requested, 2 someone waits (HASH `waiters`), 4 an error is kept (HASH `errors`)
--   43... worker id   (processing jobs)
-- Terminal job (STRING `done:<id>`, expiring after its TTL): state, then bytes 2-17 and 26-33 of
-- the active record (attempts, maxAttempts, createdAt), then the body (result or error).
--   state: c completed, e failed, x cancelled
-- Element (HASH `elements`, field = job id): the job as the client built it at enqueue, so a
-- claim needs no further round trip and a consumer woken by BLMOVE can start the handler at once.
--   byte 1 'E' (payload small enough to travel in the ready list) or 'R' (larger: it stays in
--   `elements` only)   2-9 the attempt the next run will be   10-33 maxAttempts, resultTTL,
--   createdAt (as bytes 10-33 of the record)   34-37 id length (uint32)   38... id, then payload
-- The ready list (LIST `ready`, and `claiming` once a BLMOVE took a job) holds the job's ready
-- element: the stored element with the attempt of its next run, without the payload for 'R'.
-- It is derived from the stored element and the record by `ready_element` only, so a cancel
-- can rebuild the exact bytes to remove.
-- Waiters (HASH `waiters`, field = job id): 36-character tokens of the storage instances that
-- wait, concatenated; each listens on channel <reply prefix><token>.
-- Notices: on a reply channel, 'D' then one record per ended job (see `flush`); on the queue's
-- control channel, 'A' id (abort a running job) and 'W' dueAt (a delayed job became the earliest).

local TOKEN = 36
local function new_meta (st, maxAttempts, resultTTL, createdAt, flags)
  return struct.pack('>c1dddddB', st, 0, maxAttempts, resultTTL, createdAt, 0, flags)
end

local function attempts_of (m) return (struct.unpack('>d', m, 2)) end
local function max_of (m) return (struct.unpack('>d', m, 10)) end
local function ttl_of (m) return (struct.unpack('>d', m, 18)) end
local function stalls_of (m) return (struct.unpack('>d', m, 34)) end
local function flags_of (m) return string.byte(m, 42) end
local function worker_of (m) return string.sub(m, 43) end

-- The record with another state, attempts changed by `delta`, and no worker.
local function moved (m, st, delta)
  if delta == 0 then return st .. string.sub(m, 2, 42) end
  return st .. struct.pack('>d', attempts_of(m) + delta) .. string.sub(m, 10, 42)
end

-- The ready element of a job, from its stored element and its record `m` (see above).
local function ready_element (stored, m)
  local e = string.sub(stored, 1, 1) .. struct.pack('>d', attempts_of(m) + 1) .. string.sub(stored, 10)
  if string.sub(e, 1, 1) == 'R' then return string.sub(e, 1, 37 + struct.unpack('>I4', e, 34)) end
  return e
end

local function element_id (e)
  return string.sub(e, 38, 37 + struct.unpack('>I4', e, 34))
end

local function with_flags (m, fl) return string.sub(m, 1, 41) .. string.char(fl) .. string.sub(m, 43) end
local function with_stalls (m, sl) return string.sub(m, 1, 33) .. struct.pack('>d', sl) .. string.sub(m, 42) end

-- The score of the earliest delayed job, or math.huge.
local function delayed_head (kDelayed)
  local h = redis.call('ZRANGE', kDelayed, 0, 0, 'WITHSCORES')
  if h[2] then return tonumber(h[2]) end
  return math.huge
end

-- Moves delayed and failing jobs that are due to the tail of the ready list.
local function promote (kReady, kJobs, kElements, kDelayed, now)
  local due = redis.call('ZRANGEBYSCORE', kDelayed, '-inf', now, 'LIMIT', 0, 1000)
  if #due == 0 then return end
  redis.call('ZREM', kDelayed, unpack(due))
  local metas = redis.call('HMGET', kJobs, unpack(due))
  local stored = redis.call('HMGET', kElements, unpack(due))
  local fields, elements = {}, {}
  for i = 1, #due do
    local m = metas[i]
    if m then
      local st = string.sub(m, 1, 1)
      if st == 'd' or st == 'f' then
        m = 'q' .. string.sub(m, 2)
        fields[#fields + 1] = due[i]
        fields[#fields + 1] = m
        elements[#elements + 1] = ready_element(stored[i], m)
      end
    end
  end
  if #elements > 0 then
    redis.call('HSET', kJobs, unpack(fields))
    redis.call('RPUSH', kReady, unpack(elements))
  end
end

-- Claims the queued jobs of `elements` (already taken off the ready or claiming list) for
-- `worker` and appends them to `out`, 3 fields each: id, payload, record (attempts, maxAttempts,
-- resultTTL, createdAt are read from it by the client). An element whose job is gone, not
-- queued, or in another attempt (cancelled or requeued meanwhile) is dropped.
local function take (kJobs, kElements, kLeases, elements, now, leaseMs, worker, out)
  if #elements == 0 then return end
  local ids = {}
  for i = 1, #elements do ids[i] = element_id(elements[i]) end
  local metas = redis.call('HMGET', kJobs, unpack(ids))
  local fields, leases, refs = {}, {}, {}
  local deadline = now + leaseMs
  for i = 1, #ids do
    local m, e, id = metas[i], elements[i], ids[i]
    if m and string.sub(m, 1, 1) == 'q' and attempts_of(m) + 1 == struct.unpack('>d', e, 2) then
      m = 'p' .. string.sub(e, 2, 9) .. string.sub(m, 10, 42) .. worker
      fields[#fields + 1] = id
      fields[#fields + 1] = m
      leases[#leases + 1] = deadline
      leases[#leases + 1] = id
      out[#out + 1] = id
      if string.sub(e, 1, 1) == 'E' then
        out[#out + 1] = string.sub(e, 38 + #id)
      else
        out[#out + 1] = ''
        refs[#refs + 1] = #out
      end
      out[#out + 1] = m
    end
  end
  if #fields > 0 then
    redis.call('HSET', kJobs, unpack(fields))
    redis.call('ZADD', kLeases, unpack(leases))
  end
  if #refs > 0 then
    local wanted = {}
    for i = 1, #refs do wanted[i] = out[refs[i] - 1] end
    local stored = redis.call('HMGET', kElements, unpack(wanted))
    for i = 1, #refs do out[refs[i]] = string.sub(stored[i] or '', 38 + #wanted[i]) end
  end
end

-- The jobs one script ends: their active data is removed and their waiters told by `flush`, once
-- per script: one command per key, and one message per waiting instance however many of its
-- jobs ended (a message per job cost Redis a PUBLISH and the waiter an event each).
local function new_batch ()
  return { gone = {}, errors = {}, told = {} }
end

-- Notes that the waiters of job `id` must hear that it ended in state `st` with `body`.
local function tell (batch, id, st, body)
  local t = batch.told
  t[#t + 1] = id
  t[#t + 1] = st
  t[#t + 1] = body
end

-- Writes a job's terminal record (state and body in one value, so it is never seen without its
-- result). Its active data goes and its waiters are told when the batch is flushed; the caller
-- must not finish the same id twice in one batch.
local function finish (kDone, id, m, st, body, ttl, batch)
  redis.call('SET', kDone, st .. string.sub(m, 2, 17) .. string.sub(m, 26, 33) .. body, 'PX', ttl)
  batch.gone[#batch.gone + 1] = id
  local fl = flags_of(m)
  if bit.band(fl, 4) ~= 0 then batch.errors[#batch.errors + 1] = id end
  if bit.band(fl, 2) ~= 0 then tell(batch, id, st, body) end
end

-- Applies a batch: removes the active data of its jobs, then publishes to each waiting instance
-- one message 'D' followed by a record per job: state (upper case when the body is left out,
-- over the inline limit), #id ':' id, #body ':' body.
local function flush (k, batch, replyPrefix, inline)
  local gone = batch.gone
  if #gone > 0 then
    redis.call('HDEL', k.jobs, unpack(gone))
    redis.call('HDEL', k.elements, unpack(gone))
    redis.call('ZREM', k.leases, unpack(gone))
  end
  if #batch.errors > 0 then redis.call('HDEL', k.errors, unpack(batch.errors)) end
  local t = batch.told
  if #t == 0 then return end
  local ids = {}
  for i = 1, #t, 3 do ids[#ids + 1] = t[i] end
  local waiting = redis.call('HMGET', k.waiters, unpack(ids))
  redis.call('HDEL', k.waiters, unpack(ids))
  local messages, order = {}, {}
  for j = 1, #ids do
    local tokens = waiting[j]
    if tokens then
      local id, st, body = ids[j], t[3 * j - 1], t[3 * j]
      if #body > inline then
        st = string.upper(st)
        body = ''
      end
      local record = st .. #id .. ':' .. id .. #body .. ':' .. body
      for i = 1, #tokens, TOKEN do
        local token = string.sub(tokens, i, i + TOKEN - 1)
        local list = messages[token]
        if not list then
          list = {}
          messages[token] = list
          order[#order + 1] = token
        end
        list[#list + 1] = record
      end
    end
  end
  for i = 1, #order do redis.call('PUBLISH', replyPrefix .. order[i], 'D' .. table.concat(messages[order[i]])) end
end

-- Adds `token` to the waiters of an active job (a second enqueueAndWait on a running id).
local function add_waiter (kJobs, kWaiters, id, m, token)
  local tokens = redis.call('HGET', kWaiters, id) or ''
  if string.find(tokens, token, 1, true) then return end
  redis.call('HSET', kWaiters, id, tokens .. token)
  local fl = flags_of(m)
  if bit.band(fl, 2) == 0 then redis.call('HSET', kJobs, id, with_flags(m, bit.bor(fl, 2))) end
end
