-- enqueue: stores new jobs with dedup on the id, in order, in one round trip.
-- KEYS[1] ready  [2] jobs  [3] payloads  [4] delayed  [5] waiters  [5 + i] done:<id of job i>
-- ARGV[1] now (ms)  [2] waiter token of the calling instance  [3] control channel
--      then 6 per job: id, payload, maxAttempts, resultTTL, delay (ms), notify (1 = the caller waits)
-- Returns 2 per job: code, data. 0 queued; 1 duplicate of an active job (data: its state);
--   2 completed (data: result); 3 failed (data: error); 4 cancelled.
local kReady, kJobs, kPayloads, kDelayed, kWaiters = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now, token = tonumber(ARGV[1]), ARGV[2]
local n = (#ARGV - 3) / 6
local TERMINAL = { c = 2, e = 3, x = 4 }

local ids, doneKeys = {}, {}
for i = 1, n do
  ids[i] = ARGV[3 + (i - 1) * 6 + 1]
  doneKeys[i] = KEYS[5 + i]
end
local metas = redis.call('HMGET', kJobs, unpack(ids))
local records = redis.call('MGET', unpack(doneKeys))

local out = {}
local fresh = {} -- id -> index in `created` (a batch may repeat an id)
local created, ready, waiting = {}, {}, {}
local head, wakeAt
for i = 1, n do
  local b = 3 + (i - 1) * 6
  local id, notify = ids[i], ARGV[b + 6] == '1'
  local m, rec = metas[i], records[i]
  local c = fresh[id]
  if c then
    out[#out + 1] = 1
    out[#out + 1] = created[c].state
    if notify then created[c].notify = true end
  elseif m then
    out[#out + 1] = 1
    out[#out + 1] = string.sub(m, 1, 1)
    if notify then add_waiter(kJobs, kWaiters, id, m, token) end
  elseif rec then
    out[#out + 1] = TERMINAL[string.sub(rec, 1, 1)]
    out[#out + 1] = string.sub(rec, 26)
  else
    local delay = tonumber(ARGV[b + 5])
    local st = 'q'
    if delay > 0 then
      st = 'd'
      local due = now + delay
      if not head then head = delayed_head(kDelayed) end
      if due < head then
        head = due
        wakeAt = due
      end
      redis.call('ZADD', kDelayed, due, id)
    end
    created[#created + 1] = { id = id, state = st, notify = notify, payload = ARGV[b + 2], mx = tonumber(ARGV[b + 3]), tl = tonumber(ARGV[b + 4]) }
    fresh[id] = #created
    out[#out + 1] = 0
    out[#out + 1] = ''
  end
end

if #created > 0 then
  local jobs, payloads = {}, {}
  for i = 1, #created do
    local c = created[i]
    local flags = 0
    if c.notify then
      flags = 2
      waiting[#waiting + 1] = c.id
      waiting[#waiting + 1] = token
    end
    local m = new_meta(c.state, c.mx, c.tl, now, flags)
    jobs[#jobs + 1] = c.id
    jobs[#jobs + 1] = m
    if c.state == 'q' then ready[#ready + 1] = element(c.id, m, c.payload) end
    payloads[#payloads + 1] = c.id
    payloads[#payloads + 1] = c.payload
  end
  redis.call('HSET', kJobs, unpack(jobs))
  redis.call('HSET', kPayloads, unpack(payloads))
  if #waiting > 0 then redis.call('HSET', kWaiters, unpack(waiting)) end
  if #ready > 0 then redis.call('RPUSH', kReady, unpack(ready)) end
end
if wakeAt then redis.call('PUBLISH', ARGV[3], 'W' .. string.format('%.0f', wakeAt)) end
return out
