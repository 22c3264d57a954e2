-- relayq: helpers shared by every script. redis-scripts.ts prepends this file to each script, so
-- the record formats below have one definition. Functions here touch only keys a script was
-- given in KEYS and read time only from ARGV.
--
-- Active job (HASH `jobs`, field = job id), one string:
--   state|attempts|maxAttempts|resultTTL|createdAt|stalls|flags|worker
--   state: q queued, d delayed, p processing, f failing (waits out its retry backoff)
--   flags: 1 cancel requested, 2 someone waits (HASH `waiters`), 4 an error is kept (HASH `errors`)
-- Terminal job (STRING `done:<id>`, expiring after the job's result TTL):
--   state|createdAt|attempts|maxAttempts|body    state: c completed, e failed, x cancelled
-- Waiters (HASH `waiters`, field = job id): 36-character tokens of the storage instances that
-- wait, concatenated; each listens on channel <reply prefix><token>.
-- Notices: 'D' state inline(1|0) #id ':' id [body] on reply channels (body left out when over
-- the inline limit); 'A' id (abort a running job) and 'W' dueAt (a delayed job became the
-- earliest) on the queue's control channel.

local TOKEN = 36

local function unpack_meta (m)
  local st, at, mx, tl, cr, sl, fl, wk = string.match(m, '^(%a)|(%d+)|(%d+)|(%d+)|(%d+)|(%d+)|(%d+)|(.*)$')
  return st, tonumber(at), tonumber(mx), tonumber(tl), tonumber(cr), tonumber(sl), tonumber(fl), wk
end

local function pack_meta (st, at, mx, tl, cr, sl, fl, wk)
  return string.format('%s|%.0f|%.0f|%.0f|%.0f|%.0f|%.0f|%s', st, at, mx, tl, cr, sl, fl, wk)
end

-- The score of the earliest delayed job, or math.huge.
local function delayed_head (kDelayed)
  local h = redis.call('ZRANGE', kDelayed, 0, 0, 'WITHSCORES')
  if h[2] then return tonumber(h[2]) end
  return math.huge
end

-- Moves delayed and failing jobs that are due to the tail of the ready list.
local function promote (kReady, kJobs, kDelayed, now)
  local due = redis.call('ZRANGEBYSCORE', kDelayed, '-inf', now, 'LIMIT', 0, 1000)
  if #due == 0 then return end
  redis.call('ZREM', kDelayed, unpack(due))
  local metas = redis.call('HMGET', kJobs, unpack(due))
  local fields, ids = {}, {}
  for i = 1, #due do
    local m = metas[i]
    if m then
      local st = string.sub(m, 1, 1)
      if st == 'd' or st == 'f' then
        fields[#fields + 1] = due[i]
        fields[#fields + 1] = 'q' .. string.sub(m, 2)
        ids[#ids + 1] = due[i]
      end
    end
  end
  if #ids > 0 then
    redis.call('HSET', kJobs, unpack(fields))
    redis.call('RPUSH', kReady, unpack(ids))
  end
end

-- Claims the queued jobs among `ids` (already taken off the ready or claiming list) for `worker`
-- and appends them to `out`, 6 fields each: id, payload, attempts, maxAttempts, resultTTL, createdAt.
-- Ids whose job is gone or not queued (cancelled meanwhile) are dropped.
local function take (kJobs, kPayloads, kLeases, ids, now, leaseMs, worker, out)
  if #ids == 0 then return end
  local metas = redis.call('HMGET', kJobs, unpack(ids))
  local payloads = redis.call('HMGET', kPayloads, unpack(ids))
  local fields, leases = {}, {}
  local deadline = now + leaseMs
  for i = 1, #ids do
    local m = metas[i]
    if m and string.sub(m, 1, 1) == 'q' then
      local _, at, mx, tl, cr, sl, fl = unpack_meta(m)
      at = at + 1
      local id = ids[i]
      fields[#fields + 1] = id
      fields[#fields + 1] = pack_meta('p', at, mx, tl, cr, sl, fl, worker)
      leases[#leases + 1] = deadline
      leases[#leases + 1] = id
      out[#out + 1] = id
      out[#out + 1] = payloads[i] or ''
      out[#out + 1] = at
      out[#out + 1] = mx
      out[#out + 1] = tl
      out[#out + 1] = cr
    end
  end
  if #fields > 0 then
    redis.call('HSET', kJobs, unpack(fields))
    redis.call('ZADD', kLeases, unpack(leases))
  end
end

-- Publishes a job's terminal notice to every instance waiting for it, and forgets the waiters.
local function notify (kWaiters, replyPrefix, inline, id, st, body)
  local tokens = redis.call('HGET', kWaiters, id)
  if not tokens then return end
  redis.call('HDEL', kWaiters, id)
  local msg
  if #body <= inline then
    msg = 'D' .. st .. '1' .. #id .. ':' .. id .. body
  else
    msg = 'D' .. st .. '0' .. #id .. ':' .. id
  end
  for i = 1, #tokens, TOKEN do
    redis.call('PUBLISH', replyPrefix .. string.sub(tokens, i, i + TOKEN - 1), msg)
  end
end

-- Writes a job's terminal record (state and body in one value, so it is never seen without its
-- result), drops its active data and notifies its waiters.
local function finish (k, kDone, id, st, at, mx, cr, fl, body, ttl, replyPrefix, inline)
  redis.call('SET', kDone, string.format('%s|%.0f|%.0f|%.0f|', st, cr, at, mx) .. body, 'PX', ttl)
  redis.call('HDEL', k.jobs, id)
  redis.call('HDEL', k.payloads, id)
  redis.call('ZREM', k.leases, id)
  if bit.band(fl, 4) ~= 0 then redis.call('HDEL', k.errors, id) end
  if bit.band(fl, 2) ~= 0 then notify(k.waiters, replyPrefix, inline, id, st, body) end
end

-- Adds `token` to the waiters of an active job (a second enqueueAndWait on a running id).
local function add_waiter (kJobs, kWaiters, id, m, token)
  local tokens = redis.call('HGET', kWaiters, id) or ''
  if string.find(tokens, token, 1, true) then return end
  redis.call('HSET', kWaiters, id, tokens .. token)
  local st, at, mx, tl, cr, sl, fl, wk = unpack_meta(m)
  if bit.band(fl, 2) == 0 then redis.call('HSET', kJobs, id, pack_meta(st, at, mx, tl, cr, sl, bit.bor(fl, 2), wk)) end
end
