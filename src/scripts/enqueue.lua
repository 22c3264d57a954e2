-- enqueue: stores new jobs with dedup on the id, in order, in one round trip.
-- KEYS[1] ready  [2] jobs  [3] elements  [4] delayed  [5] waiters  [5 + i] done:<id of job i>
-- ARGV[1] now (ms)  [2] waiter token of the calling instance  [3] control channel
--      [4] length of the done:<id> keys' prefix (the id is the rest of the key)
--      [5] one flag byte per job: +1 the caller waits for it, +2 it is delayed
--      [6] the delays (ms) of the delayed jobs, in order, as big-endian doubles
--      then 1 per job: its element (see _lib.lua), built by the client with createdAt = now
-- Returns the number of jobs when all were queued (the common case: a short reply); else 2 per
--   job: code, data. 0 queued; 1 duplicate of an active job (data: its state);
--   2 completed (data: result); 3 failed (data: error); 4 cancelled.
local kReady, kJobs, kElements, kDelayed, kWaiters = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now, token, idFrom, flags, delays = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[4]) + 1, ARGV[5], ARGV[6]
local n = #ARGV - 6
local TERMINAL = { c = 2, e = 3, x = 4 }

local ids, doneKeys = {}, {}
for i = 1, n do
  doneKeys[i] = KEYS[5 + i]
  ids[i] = string.sub(doneKeys[i], idFrom)
end
local metas = redis.call('HMGET', kJobs, unpack(ids))
local records = redis.call('MGET', unpack(doneKeys))

local out = {}
local all = true -- every job queued so far
local fresh = {} -- id -> state of a job this call created (a batch may repeat an id)
local jobs, elements, ready = {}, {}, {}
local waits, waiting = {}, {} -- ids whose enqueuer waits: a set, and the same in order
local head, wakeAt
local delayed = 0
for i = 1, n do
  local id, fl = ids[i], string.byte(flags, i)
  local notify = fl % 2 == 1
  local m, rec = metas[i], records[i]
  local delay = 0
  if fl >= 2 then
    delay = struct.unpack('>d', delays, 1 + 8 * delayed)
    delayed = delayed + 1
  end
  if fresh[id] then
    all = false
    out[#out + 1] = 1
    out[#out + 1] = fresh[id]
    if notify and not waits[id] then
      -- A repeat that waits, of a job this call created: it becomes a waited-for job.
      waits[id] = true
      waiting[#waiting + 1] = id
    end
  elseif m then
    all = false
    out[#out + 1] = 1
    out[#out + 1] = string.sub(m, 1, 1)
    if notify then add_waiter(kJobs, kWaiters, id, m, token) end
  elseif rec then
    all = false
    out[#out + 1] = TERMINAL[string.sub(rec, 1, 1)]
    out[#out + 1] = string.sub(rec, 26)
  else
    local e = ARGV[6 + i]
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
    elseif string.sub(e, 1, 1) == 'E' then
      ready[#ready + 1] = e
    else
      ready[#ready + 1] = string.sub(e, 1, 37 + struct.unpack('>I4', e, 34))
    end
    if notify then
      waits[id] = true
      waiting[#waiting + 1] = id
    end
    fresh[id] = st
    local mx, tl = struct.unpack('>dd', e, 10)
    jobs[#jobs + 1] = id
    jobs[#jobs + 1] = st
    jobs[#jobs + 1] = mx
    jobs[#jobs + 1] = tl
    elements[#elements + 1] = id
    elements[#elements + 1] = e
    out[#out + 1] = 0
    out[#out + 1] = ''
  end
end

if #elements > 0 then
  -- Records are made last: whether someone waits is known only once the whole batch was read.
  local records = {}
  for j = 1, #jobs, 4 do
    local id = jobs[j]
    local fl = 0
    if waits[id] then fl = 2 end
    records[#records + 1] = id
    records[#records + 1] = new_meta(jobs[j + 1], jobs[j + 2], jobs[j + 3], now, fl)
  end
  redis.call('HSET', kJobs, unpack(records))
  redis.call('HSET', kElements, unpack(elements))
  if #ready > 0 then redis.call('RPUSH', kReady, unpack(ready)) end
end
if #waiting > 0 then
  local fields = {}
  for j = 1, #waiting do
    fields[#fields + 1] = waiting[j]
    fields[#fields + 1] = token
  end
  redis.call('HSET', kWaiters, unpack(fields))
end
if wakeAt then redis.call('PUBLISH', ARGV[3], 'W' .. string.format('%.0f', wakeAt)) end
if all then return n end
return out
