-- settle: ends a batch of attempts (each atomically with its notice), then leases up to `max`
-- ready jobs to the same worker: a busy consumer spends one round trip per batch.
-- KEYS jobs payloads attempts waiters ready held claiming due leases queued delayed
-- KEYS failing completed failed cancelled expires meta groups groupinfo bygroup
-- ARGV[1] now (ms)  [2] lease (ms)  [3] max  [4] worker id  [5] reply channel prefix
--      [6] control channel  [7] inline limit (bytes)
--      [8] a: how many activations follow  [9 .. 8 + a] elements this worker took with BLMOVE
--      and whose activation (claim.lua) it has not seen answered: activated here first if still
--      in `claiming`, so a settlement can never overtake its job's activation (an activation
--      retried after "Function not found" or NOSCRIPT reaches Redis after commands sent later)
--      then 2 per settlement: the job id, then the settlement (S_FORMAT, group block, body)
--      type c complete (n: ttl, body: result) | e fail (n: ttl, group, body: error)
--         | x cancel (n: ttl) | r retry (n: delay, body: error) | l release (hand back unrun)
-- A settlement applies only while the job is processing in that very attempt, held by this very
-- worker (fencing). A job whose cancel was requested ends cancelled whatever the settlement says.
-- Returns: due time of the earliest delayed job when fewer than `max` jobs were claimed (-1: none,
--   not looked up, or paused), the 0-based indexes of the refused settlements, then 3 fields per
--   claimed job: id, payload, record (see _lib.lua)
local q = queue_of(tonumber(ARGV[1]))
local now, leaseMs, max, worker = q.now, tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local a = tonumber(ARGV[8])
local first = 8 + a -- settlement i is ARGV[first + 2i - 1] (id), ARGV[first + 2i]
local n = (#ARGV - first) / 2
local wakeAt
local batch, seen, refused = new_batch(), {}, {}

-- Activations: their records and leases are written only for the jobs this call does not end
-- (a fast handler's job is activated and ended by one script, its record written once).
local held
if a > 0 then
  local late = {}
  for i = 9, 8 + a do
    if redis.call('LREM', K.claiming, '1', ARGV[i]) == 1 then late[#late + 1] = ARGV[i] end
  end
  held = {}
  take(q, late, leaseMs, worker, {}, held)
  apply_moves(q)
  batch.unleased = {}
end

if n > 0 then
  local ids, read = {}, {}
  for i = 1, n do
    ids[i] = ARGV[first + 2 * i - 1]
    if not (held and held[ids[i]]) then read[#read + 1] = ids[i] end
  end
  local metas = {}
  if #read > 0 then
    local found = redis.call('HMGET', K.jobs, unpack(read))
    for i = 1, #read do metas[read[i]] = found[i] end
  end
  if held then
    for id, m in pairs(held) do metas[id] = m end
  end
  local head
  for i = 1, n do
    local s = ARGV[first + 2 * i]
    local typ, attempt, num_, gl = struct.unpack(S_FORMAT, s)
    local id = ids[i]
    local m = metas[id]
    -- The worker too: an id the reaper took back from `claiming` keeps its attempt number under no
    -- worker, and the worker that BLMOVE'd it may have run the handler although its activation came late.
    if m and not seen[id] and st_of(m) == 'p' and attempts_of(m) == attempt and worker_of(m) == worker then
      seen[id] = true
      if held and held[id] then batch.unleased[id] = true end
      local body = string.sub(s, S_SIZE + gl + 1)
      if has(m, F_CANCEL) then
        if typ == 'r' or typ == 'l' then num_ = ttl_of(m) end
        finish(q, batch, id, m, 'x', 'x', nil, num_)
      elseif typ == 'c' or typ == 'x' then
        finish(q, batch, id, m, typ, typ, body, num_)
      elseif typ == 'e' then
        local g, info = parse_group(string.sub(s, S_SIZE + 1, S_SIZE + gl))
        finish(q, batch, id, m, 'e', 'e', body, num_, g, info)
      elseif typ == 'r' then
        count(q, 'retried', 1)
        if num_ > 0 then
          m = end_attempt(q, id, m, 'r', body)
          batch.leased[#batch.leased + 1] = id
          local r = rec_read(m)
          r.flags = bit.bor(r.flags, F_OUTCOME)
          r.body = body
          r.enteredAt = now
          local due = now + num_
          if not head then head = due_head() end
          if due < head then
            head = due
            wakeAt = due
          end
          r.state = 'f'
          r.stamp = move(q, id, 'p', 'f')
          redis.call('HSET', K.jobs, id, rec_write(r))
          redis.call('ZADD', K.due, num(due), id)
        else
          requeue_running(q, batch, id, m, 'r', body)
        end
      elseif typ == 'l' then
        -- Handed back unrun: the attempt does not count, and the job goes first in line.
        requeue_running(q, batch, id, m, 'l', nil, true)
      end
    else
      refused[#refused + 1] = i - 1
    end
  end
  apply_moves(q)
  flush(q, batch, ARGV[5], tonumber(ARGV[7]))
  tidy(q, TIDY_BUDGET)
end
if held then unhold(held, batch.unleased, leaseMs, now) end
if wakeAt then redis.call('PUBLISH', ARGV[6], 'W' .. string.format('%.0f', wakeAt)) end

local out = { -1, refused }
if max > 0 and not paused(q) then
  local h = promote(q)
  apply_moves(q)
  local elements = redis.call('LPOP', K.ready, ARGV[3])
  if elements then take(q, elements, leaseMs, worker, out) end
  -- Fewer than asked: the queue is drained, and the worker will block next. Tell it when the
  -- earliest delayed job is due, so it can block at once without probing first.
  if #out - 2 < 3 * max and h ~= math.huge then out[1] = h end
end
save(q)
return out
