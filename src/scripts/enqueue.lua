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
local records_done = redis.call('MGET', unpack(doneKeys))

local out -- built only once a job is not simply queued: the common all-queued batch returns n
local fresh = {} -- id -> index of its record in `records` (a batch may repeat an id)
local records, elements, ready, waiting = {}, {}, {}, {}
local head, wakeAt
local delayed = 0

-- Records the outcome of job i when it is not 'queued': starts the full reply on first need.
local function answer (i, code, data)
  if not out then
    out = {}
    for j = 1, i - 1 do
      out[2 * j - 1] = 0
      out[2 * j] = ''
    end
  end
  out[2 * i - 1] = code
  out[2 * i] = data
end

for i = 1, n do
  local id, fl = ids[i], string.byte(flags, i)
  local notify = fl % 2 == 1
  local delay = 0
  if fl >= 2 then
    delay = struct.unpack('>d', delays, 1 + 8 * delayed)
    delayed = delayed + 1
  end
  local c = fresh[id]
  if c then
    local r = records[c]
    answer(i, 1, string.sub(r, 1, 1))
    if notify and bit.band(flags_of(r), 2) == 0 then
      -- A repeat that waits, of a job this call created: it becomes a waited-for job.
      records[c] = with_flags(r, 2)
      waiting[#waiting + 1] = id
      waiting[#waiting + 1] = token
    end
  elseif metas[i] then
    answer(i, 1, string.sub(metas[i], 1, 1))
    if notify then add_waiter(kJobs, kWaiters, id, metas[i], token) end
  elseif records_done[i] then
    local rec = records_done[i]
    answer(i, TERMINAL[string.sub(rec, 1, 1)], string.sub(rec, 26))
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
    local fl2 = 0
    if notify then
      fl2 = 2
      waiting[#waiting + 1] = id
      waiting[#waiting + 1] = token
    end
    local mx, tl = struct.unpack('>dd', e, 10)
    records[#records + 1] = new_meta(st, mx, tl, now, fl2)
    fresh[id] = #records
    elements[#elements + 1] = id
    elements[#elements + 1] = e
    if out then
      out[2 * i - 1] = 0
      out[2 * i] = ''
    end
  end
end

if #records > 0 then
  local fields = {}
  for c = 1, #records do
    fields[2 * c - 1] = elements[2 * c - 1]
    fields[2 * c] = records[c]
  end
  redis.call('HSET', kJobs, unpack(fields))
  redis.call('HSET', kElements, unpack(elements))
  if #ready > 0 then redis.call('RPUSH', kReady, unpack(ready)) end
end
if #waiting > 0 then redis.call('HSET', kWaiters, unpack(waiting)) end
if wakeAt then redis.call('PUBLISH', ARGV[3], 'W' .. string.format('%.0f', wakeAt)) end
if not out then return n end
return out
