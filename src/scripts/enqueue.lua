-- enqueue: stores new jobs with dedup on the id, in order, in one round trip.
-- KEYS[1] ready  [2] jobs  [3] payloads  [4] delayed  [5] waiters  [5 + i] done:<id of job i>
-- ARGV[1] now (ms)  [2] waiter token of the calling instance  [3] control channel
--      then 6 per job: id, payload, maxAttempts, resultTTL, delay (ms), notify (1 = the caller waits)
-- Returns 2 per job: code, data. 0 queued; 1 duplicate of an active job (data: its state);
--   2 completed (data: result); 3 failed (data: error); 4 cancelled.
local k = { ready = KEYS[1], jobs = KEYS[2], payloads = KEYS[3], delayed = KEYS[4], waiters = KEYS[5] }
local now = tonumber(ARGV[1])
local token = ARGV[2]
local out = {}
local fresh = {} -- id -> { state, notify } of jobs created by this call (a batch may repeat an id)
local metas, payloads, ready, waiting = {}, {}, {}, {}
local head, wakeAt
local TERMINAL = { c = 2, e = 3, x = 4 }

for i = 1, (#ARGV - 3) / 6 do
  local b = 3 + (i - 1) * 6
  local id, notify = ARGV[b + 1], ARGV[b + 6] == '1'
  local mine = fresh[id]
  if mine then
    out[#out + 1] = 1
    out[#out + 1] = mine.state
    if notify then mine.notify = true end
  else
    local m = redis.call('HGET', k.jobs, id)
    if m then
      out[#out + 1] = 1
      out[#out + 1] = string.sub(m, 1, 1)
      if notify then add_waiter(k.jobs, k.waiters, id, m, token) end
    else
      local rec = redis.call('GET', KEYS[5 + i])
      if rec then
        local st = string.sub(rec, 1, 1)
        out[#out + 1] = TERMINAL[st]
        -- The body follows the fourth '|': state|createdAt|attempts|maxAttempts|body
        out[#out + 1] = string.sub(rec, (select(2, string.find(rec, '^%a|%d+|%d+|%d+|'))) + 1)
      else
        local delay = tonumber(ARGV[b + 5])
        local st = 'q'
        if delay > 0 then
          st = 'd'
          local due = now + delay
          if not head then head = delayed_head(k.delayed) end
          if due < head then
            head = due
            wakeAt = due
          end
          redis.call('ZADD', k.delayed, due, id)
        else
          ready[#ready + 1] = id
        end
        fresh[id] = { state = st, notify = notify }
        metas[#metas + 1] = id
        metas[#metas + 1] = { st, tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4]) }
        payloads[#payloads + 1] = id
        payloads[#payloads + 1] = ARGV[b + 2]
        out[#out + 1] = 0
        out[#out + 1] = ''
      end
    end
  end
end

if #metas > 0 then
  for i = 1, #metas, 2 do
    local id, f = metas[i], metas[i + 1]
    local flags = 0
    if fresh[id].notify then
      flags = 2
      waiting[#waiting + 1] = id
      waiting[#waiting + 1] = token
    end
    metas[i + 1] = pack_meta(f[1], 0, f[2], f[3], now, 0, flags, '')
  end
  redis.call('HSET', k.jobs, unpack(metas))
  redis.call('HSET', k.payloads, unpack(payloads))
  if #waiting > 0 then redis.call('HSET', k.waiters, unpack(waiting)) end
  if #ready > 0 then redis.call('RPUSH', k.ready, unpack(ready)) end
end
if wakeAt then redis.call('PUBLISH', ARGV[3], 'W' .. string.format('%.0f', wakeAt)) end
return out
