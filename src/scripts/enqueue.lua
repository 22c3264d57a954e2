-- enqueue: stores new jobs with dedup on the id, in order, in one round trip.
-- KEYS jobs payloads attempts waiters ready held due queued delayed completed failed cancelled
-- KEYS expires meta groups groupinfo bygroup
-- ARGV[1] now (ms)  [2] waiter token of the calling instance  [3] control channel
--      [4] one flag byte per job: J_NOTIFY when the caller waits for it, J_TRACED when its
--          element's payload part starts with its trace context (the record gets F_TRACED)
--      then 1 per job: its ready element (see _lib.lua), built by the client with createdAt = now
-- Returns the number of jobs when all were queued (the common case: a short reply); else 2 per
--   job: code, data. 0 queued; 1 duplicate of an active job (data: its state);
--   2 completed (data: result); 3 failed (data: error); 4 cancelled.
-- An id whose terminal record's result cache ended is free: its previous run is dropped.
local now, token, flags = tonumber(ARGV[1]), ARGV[2], ARGV[4]
local n = #ARGV - 4
local q = queue_of(now)
local CODES = { c = 2, e = 3, x = 4 }

local ids, elements = {}, {}
for i = 1, n do
  elements[i] = ARGV[4 + i]
  ids[i] = element_id(elements[i])
end
local metas = redis.call('HMGET', K.jobs, unpack(ids))

local out -- built only once a job is not simply queued: the common all-queued batch returns n
local fresh = {} -- id -> index of its record in `records` (a batch may repeat an id)
local records, created, payloads, ready, waiting = {}, {}, {}, {}, {}
local head, wakeAt

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
  local id, e, m = ids[i], elements[i], metas[i]
  local jf = string.byte(flags, i)
  local notify = bit.band(jf, J_NOTIFY) ~= 0
  local c = fresh[id]
  if c then
    local r = records[c]
    answer(i, 1, st_of(r))
    if notify and not has(r, F_WAITED) then
      -- A repeat that waits, of a job this call created: it becomes a waited-for job.
      records[c] = with_flags(r, bit.bor(flags_of(r), F_WAITED))
      waiting[#waiting + 1] = id
      waiting[#waiting + 1] = token
    end
  elseif m and not TERMINAL[st_of(m)] then
    answer(i, 1, st_of(m))
    if notify then add_waiter(id, m, token) end
  elseif m and expires_of(m) > now then
    local st = st_of(m)
    local data = ''
    if st ~= 'x' then data = body_of(m) end
    answer(i, CODES[st], data)
  else
    if m then erase(q, id, m) end
    local st = 'q'
    local delay = struct.unpack('>d', e, E_DELAY)
    if delay > 0 then
      st = 'd'
      local due = now + delay
      if not head then head = due_head() end
      if due < head then
        head = due
        wakeAt = due
      end
      redis.call('ZADD', K.due, num(due), id)
    elseif string.sub(e, E_KIND, E_KIND) == 'E' then
      ready[#ready + 1] = e
    else
      ready[#ready + 1] = string.sub(e, 1, E_SIZE + #id)
    end
    local fl = 0
    if bit.band(jf, J_TRACED) ~= 0 then fl = F_TRACED end
    if notify then
      fl = bit.bor(fl, F_WAITED)
      waiting[#waiting + 1] = id
      waiting[#waiting + 1] = token
    end
    records[#records + 1] = new_record(e, st, now, move(q, id, nil, st), fl)
    created[#records] = id
    fresh[id] = #records
    payloads[#payloads + 1] = id
    payloads[#payloads + 1] = string.sub(e, E_SIZE + #id + 1)
    if out then
      out[2 * i - 1] = 0
      out[2 * i] = ''
    end
  end
end

if #records > 0 then
  local fields = {}
  for c = 1, #records do
    fields[2 * c - 1] = created[c]
    fields[2 * c] = records[c]
  end
  redis.call('HSET', K.jobs, unpack(fields))
  redis.call('HSET', K.payloads, unpack(payloads))
  if #ready > 0 then redis.call('RPUSH', list_of(q), unpack(ready)) end
  count(q, 'enqueued', #records)
end
if #waiting > 0 then redis.call('HSET', K.waiters, unpack(waiting)) end
save(q)
if wakeAt then redis.call('PUBLISH', ARGV[3], 'W' .. string.format('%.0f', wakeAt)) end
if not out then return n end
return out
