-- relayq: helpers shared by every script. src/storage/redis/scripts.ts links into each script the
-- definitions of this file it uses, after the format constants of src/storage/redis/codec.ts
-- (R_* record, E_* element, A_* attempt entry, S_* settlement, RT_* retention, F_* flags; offsets
-- 1-based, *_FORMAT the `struct` formats), and binds the keys a script lists on its `KEYS` line
-- to K.<name> (every key in KEYS: none is built here). Time comes from ARGV only.
--
-- A job is one record (HASH `jobs`, field = id) from enqueue until both its history retention
-- and its result cache ended, read and written by offset (no number <-> text conversion):
--   state       q queued, d delayed, p processing, f failing (a retry waits out its backoff),
--               c completed, e failed, x cancelled
--   flags       F_CANCEL cancel requested, F_WAITED someone waits (HASH `waiters`), F_OUTCOME
--               the body holds its result or last error, F_HISTORY HASH `attempts` holds ended
--               attempts, F_TRACED its payload (HASH `payloads`) starts with its trace context
--   enteredAt   when it entered its state          stamp       its position in that state's index
--   attempts    of the current series
--   startedAt   its first attempt, 0 before        attemptStartedAt   the running or last attempt
--   expiresAt   terminal: end of the result cache (getStatus, dedup); math.huge while active
--   lastOutcome letter of the attempt that ended the job ('\0': none did)
--   stalls, readyAt (claimable since), retries (operator), maxAttempts, resultTTL, createdAt,
--   runTimeout, delay (as enqueued), then the failure group key (groupLength bytes), the worker
--   of the running or last attempt (workerLength bytes), and the body: the result of a completed
--   job, or the last error of one that failed an attempt (F_OUTCOME). One value: a job in
--   history costs one hash entry and one allocation for all of it.
-- Beside it: HASH `payloads` (the payload, until the job leaves history; with F_TRACED, after a
-- uint16 length and the job's trace context, which scripts never read: such a job's ready
-- element is always of kind 'R'), HASH `attempts`
-- (attempt entries: attempt, startedAt, finishedAt, outcome letter c e r s x l, worker, error;
-- oldest first, at most HISTORY_LIMIT), HASH `waiters` (36-character tokens of the storage
-- instances that wait, concatenated; each listens on channel <reply prefix><token>).
--
-- Indexes: one ZSET per state (`queued` ... `cancelled`, named as the states) of ids scored by
-- stamp, the queue's strictly increasing position of a state change (max(now * 1000, last + 1),
-- the last one kept in HASH `meta`), but `processing`: its jobs are the members of ZSET `leases`
-- and their stamps are in their records (a consumer's claim and settlement each save a ZADD and a
-- ZREM; the processing jobs are few, bounded by the consumers' concurrency). A terminal job is in
-- history while it is in the index of its state and among its newest `count` (trimming runs
-- behind by up to TRIM_SLACK jobs, and every read applies the rule); one pushed out of history
-- while its result cache lives keeps its record and outcome until ZSET `expires` (score:
-- expiresAt) says the cache ended. ZSET `due` holds delayed and failing jobs by due time, ZSET
-- `leases` processing jobs by lease deadline (plus LEASE_PIN at +inf once a job was leased: readers
-- count and list below +inf). Failed jobs with a failure group are in HASH
-- `groups` (key -> count), HASH `groupinfo` (key -> name, message, frame as JSON) and ZSET
-- `bygroup` (all scores 0, members #key key stamp id, so one group's jobs are a lex range in
-- stamp order).
--
-- Ready element (LIST `ready`, or `held` while the queue is paused; `claiming` once a BLMOVE took
-- it): the element header, the id, then the payload for kind 'E' (small payloads: a consumer
-- woken by BLMOVE starts at once) or nothing for kind 'R'. The client builds it at enqueue;
-- `ready_element` rebuilds the same bytes from the record, so a cancel can remove it.
-- HASH `meta`: stamp, paused ('1'), retention (RT_FORMAT), and the totals enqueued, completed,
-- failed, retried, stalled, cancelled (integers, HINCRBY; scripts read them only for an overview).
-- Notices: on a reply channel, 'D' then one record per ended job (see `flush`); on the queue's
-- control channel, 'A' id (abort a running job) and 'W' dueAt (a delayed job became the earliest).

local TOKEN = 36
-- A member kept in ZSET `leases` at score +inf (see the header): longer than Redis's
-- zset-max-listpack-value (64 bytes), so the set stays a skiplist. As a listpack (up to 128
-- members, i.e. up to the consumers' concurrency) each ZADD or ZREM of a lease scanned it and
-- parsed every score: ~11 % of a drain's instructions at concurrency 50 (callgrind). Byte 255
-- never occurs in UTF-8, so no job id can be this member.
local LEASE_PIN = '\255relayq: keeps ZSET leases in skiplist encoding, so a lease costs O(log n) and not O(n)'
local TERMINAL = { c = true, e = true, x = true }
local TOTAL = { c = 'completed', e = 'failed', x = 'cancelled' }
local NO_OUTCOME = '\0'

-- A number as exact text, where a script builds a string with it: Lua's own conversion keeps 14
-- digits, stamps have 16. Also for the numbers of the hot path's commands (scores, stamps,
-- totals): a number given to redis.call as it is stays exact, but Redis formats it with
-- snprintf('%.17g'), several times the cost of '%d' (callgrind: ~10 % of a drain's instructions).
local function num (x)
  if x % 1 == 0 and x > -1e18 and x < 1e18 then return string.format('%d', x) end
  return string.format('%.17g', x)
end

local function dbl (m, at) return (struct.unpack('>d', m, at)) end
local function st_of (m) return string.sub(m, R_STATE, R_STATE) end
local function flags_of (m) return string.byte(m, R_FLAGS) end
local function uint (m, at) return (struct.unpack('>I', m, at)) end
local function attempts_of (m) return uint(m, R_ATTEMPTS) end
local function max_of (m) return dbl(m, R_MAX_ATTEMPTS) end
local function ttl_of (m) return dbl(m, R_RESULT_TTL) end
local function stalls_of (m) return uint(m, R_STALLS) end
local function expires_of (m) return dbl(m, R_EXPIRES_AT) end
local function group_of (m) return string.sub(m, R_SIZE + 1, R_SIZE + string.byte(m, R_GROUP_LENGTH)) end
-- Where the worker id ends (its start is the group's end).
local function worker_end (m) return R_SIZE + string.byte(m, R_GROUP_LENGTH) + (struct.unpack('>H', m, R_WORKER_LENGTH)) end
local function worker_of (m) return string.sub(m, R_SIZE + 1 + string.byte(m, R_GROUP_LENGTH), worker_end(m)) end
local function body_of (m) return string.sub(m, worker_end(m) + 1) end
-- The record without its body (what a list row needs).
local function head_of (m) return string.sub(m, 1, worker_end(m)) end
local function has (m, flag) return bit.band(string.byte(m, R_FLAGS), flag) ~= 0 end

local function with_flags (m, fl)
  return string.sub(m, 1, R_FLAGS - 1) .. string.char(fl) .. string.sub(m, R_FLAGS + 1)
end

local function with_dbl (m, at, v)
  return string.sub(m, 1, at - 1) .. struct.pack('>d', v) .. string.sub(m, at + 8)
end

local function with_uint (m, at, v)
  return string.sub(m, 1, at - 1) .. struct.pack('>I', v) .. string.sub(m, at + 4)
end

-- (rec_read, rec_write: the record as a table of its fields, plus group and worker, and back;
-- generated from its layout by codec.ts.)

-- A new record with stamp `s`, from the ready element the client built at enqueue.
local function new_record (e, st, now, s, flags)
  local _, _, mx, tl, cr, rt, _, dl = struct.unpack(E_FORMAT, e)
  return rec_new(st, flags, now, s, now, mx, tl, cr, rt, dl)
end

local function element_id (e)
  return string.sub(e, E_SIZE + 1, E_SIZE + struct.unpack('>I', e, E_ID_LENGTH))
end

-- The ready element of a job (see above), from its record and payload: the exact bytes the
-- client built, for a job never claimed yet.
local function ready_element (id, m, payload)
  local kind = 'R'
  if #payload <= INLINE_PAYLOAD and not has(m, F_TRACED) then kind = 'E' end
  local e = struct.pack(E_FORMAT, kind, attempts_of(m) + 1, max_of(m), ttl_of(m), dbl(m, R_CREATED_AT),
    dbl(m, R_RUN_TIMEOUT), dbl(m, R_READY_AT), dbl(m, R_DELAY), #id) .. id
  if kind == 'E' then return e .. payload end
  return e
end

-- The state of one script's run on a queue: its time, the queue's meta (read once, when first
-- needed), the index changes and totals it makes (written by `save`).
local function queue_of (now)
  return { now = now, rem = {}, add = {}, totals = {}, ended = {} }
end

local TOTALS = { 'enqueued', 'completed', 'failed', 'retried', 'stalled', 'cancelled' }

-- Reads the fields of `meta` a script may need; not the totals, which `save` increments (reading
-- all nine fields and writing the totals back cost twice as much: ~54K instructions against
-- ~27K per script, callgrind).
local function meta_of (q)
  if not q.meta then
    local v = redis.call('HMGET', K.meta, 'stamp', 'paused', 'retention')
    q.meta = true
    q.stamp = tonumber(v[1]) or 0
    q.paused = v[2] == '1'
    q.retention = v[3]
  end
  return q
end

local function paused (q) return meta_of(q).paused end

-- The list new ready jobs go to: `held` while the queue is paused, so no claim (not even a
-- BLMOVE blocked since before the pause) can take them; resuming renames it to `ready`.
local function list_of (q)
  if paused(q) then return K.held end
  return K.ready
end

-- Age (ms) and count of the history of terminal state `st`.
local function rule_of (q, st)
  local r = meta_of(q).retention
  if r and #r == RT_SIZE then
    local at = RT_COMPLETED_AGE
    if st == 'e' then at = RT_FAILED_AGE elseif st == 'x' then at = RT_CANCELLED_AGE end
    return struct.unpack('>dd', r, at)
  end
  return DEFAULT_RULES[st][1], DEFAULT_RULES[st][2] -- codec.ts: the contract's defaults
end

-- The smallest stamp of the history of terminal state `st` (its index: `key`, by default IK[st]):
-- within its age and among its newest `count` (trimming may run behind, by up to TRIM_SLACK jobs:
-- reads apply the rule themselves).
local function history_floor (q, st, key)
  local age, keep = rule_of(q, st)
  if keep < 1 then return math.huge end
  local floor = (q.now - age + 1) * 1000
  local nth = redis.call('ZRANGE', key or IK[st], -keep, -keep, 'WITHSCORES')
  if nth[2] and tonumber(nth[2]) > floor then floor = tonumber(nth[2]) end
  return floor
end

local function count (q, total, n)
  q.totals[total] = (q.totals[total] or 0) + n
end

-- Notes that job `id` leaves the index of state `from` and enters the one of `to` (either may be
-- nil) with a new stamp, returned. Applied by `apply_moves`: a job moves once between two calls.
-- Processing jobs have no index of their own (see above).
local function move (q, id, from, to)
  if from and from ~= 'p' then
    local l = q.rem[from]
    if l then l[#l + 1] = id else q.rem[from] = { id } end
  end
  if not to then return nil end
  if not q.meta then meta_of(q) end
  local s = q.now * 1000
  if s <= q.stamp then s = q.stamp + 1 end
  q.stamp = s
  q.stamped = true
  if to ~= 'p' then
    local l = q.add[to]
    if l then
      l[#l + 1] = num(s)
      l[#l + 1] = id
    else
      q.add[to] = { num(s), id }
    end
  end
  return s
end

local function apply_moves (q)
  for st, ids in pairs(q.rem) do redis.call('ZREM', IK[st], unpack(ids)) end
  for st, scored in pairs(q.add) do redis.call('ZADD', IK[st], unpack(scored)) end
  q.rem, q.add = {}, {}
end

-- Writes what the script changed in `meta`: the last stamp, and one HINCRBY per total it changed
-- (usually one).
local function save (q)
  apply_moves(q)
  if q.stamped then redis.call('HSET', K.meta, 'stamp', num(q.stamp)) end
  for total, n in pairs(q.totals) do redis.call('HINCRBY', K.meta, total, num(n)) end
end

-- The member of a failed job in ZSET `bygroup`.
local function group_member (g, stamp, id)
  return string.char(#g) .. g .. struct.pack('>d', stamp) .. id
end

-- Files failed jobs under their failure groups, or takes them out (`sign` 1 or -1): `entries`
-- holds group key, stamp, id, ... and `infos` (adding) group key -> name, message, frame as JSON.
-- One ZADD or ZREM and one HINCRBY per group.
local function regroup (entries, sign, infos)
  if #entries == 0 then return end
  local by = {}
  for i = 1, #entries, 3 do
    local g = entries[i]
    local members = by[g]
    if not members then
      members = {}
      by[g] = members
    end
    if sign > 0 then members[#members + 1] = '0' end
    members[#members + 1] = group_member(g, entries[i + 1], entries[i + 2])
  end
  for g, members in pairs(by) do
    if sign > 0 then
      local n = #members / 2
      redis.call('ZADD', K.bygroup, unpack(members))
      if redis.call('HINCRBY', K.groups, g, n) == n then redis.call('HSET', K.groupinfo, g, infos[g]) end
    else
      local n = redis.call('ZREM', K.bygroup, unpack(members))
      if n > 0 and redis.call('HINCRBY', K.groups, g, -n) <= 0 then
        redis.call('HDEL', K.groups, g)
        redis.call('HDEL', K.groupinfo, g)
      end
    end
  end
end

-- Appends an attempt entry to the job's history, keeping the newest HISTORY_LIMIT; returns the
-- record with F_HISTORY set. The entries are written at once, or added to `sink` (id, value,
-- ...) for one HSET of many.
local function push_attempt (id, m, attempt, started, finished, outcome, err, sink)
  local w = string.sub(worker_of(m), 1, 65535)
  local all = struct.pack(A_FORMAT, attempt, started, finished, outcome, #w, #err) .. w .. err
  if has(m, F_HISTORY) then
    all = (redis.call('HGET', K.attempts, id) or '') .. all
    local n, at = 0, 1
    local starts = {}
    while at + A_SIZE - 1 <= #all do
      n = n + 1
      starts[n] = at
      local _, _, _, _, wl, el = struct.unpack(A_FORMAT, all, at)
      at = at + A_SIZE + wl + el
    end
    if n > HISTORY_LIMIT then all = string.sub(all, starts[n - HISTORY_LIMIT + 1]) end
  end
  if sink then
    sink[#sink + 1] = id
    sink[#sink + 1] = all
  else
    redis.call('HSET', K.attempts, id, all)
  end
  return with_flags(m, bit.bor(flags_of(m), F_HISTORY))
end

-- Appends the record's running (or last) attempt, ended at `now` with `outcome` (and `err`).
local function end_attempt (q, id, m, outcome, err)
  return push_attempt(id, m, attempts_of(m), dbl(m, R_ATTEMPT_STARTED_AT), q.now, outcome, err or '')
end

-- Deletes everything of the jobs `ids` (records `metas`) but their index entries.
local function drop_all (ids, metas)
  if #ids == 0 then return end
  redis.call('HDEL', K.jobs, unpack(ids))
  redis.call('HDEL', K.payloads, unpack(ids))
  local by = { [F_HISTORY] = {}, [F_WAITED] = {} }
  for i = 1, #ids do
    for flag, list in pairs(by) do
      if has(metas[i], flag) then list[#list + 1] = ids[i] end
    end
  end
  if #by[F_HISTORY] > 0 then redis.call('HDEL', K.attempts, unpack(by[F_HISTORY])) end
  if #by[F_WAITED] > 0 then redis.call('HDEL', K.waiters, unpack(by[F_WAITED])) end
end

-- Terminal jobs leave history: `ids` holds jobs just taken out of their index (a terminal job is
-- in history exactly while it is in the index of its state; its record holds its stamp there). Each is
-- deleted if its result cache ended; else its payload and attempts go, and ZSET `expires` says
-- when the rest goes. The record itself is left as it is.
local function untrack_all (q, ids)
  if #ids == 0 then return end
  local metas = redis.call('HMGET', K.jobs, unpack(ids))
  local gone, goneMetas, expiring, kept, histories, waited, grouped = {}, {}, {}, {}, {}, {}, {}
  for i = 1, #ids do
    local id, m = ids[i], metas[i]
    if m then
      local g = group_of(m)
      if #g > 0 then
        grouped[#grouped + 1] = g
        grouped[#grouped + 1] = dbl(m, R_STAMP)
        grouped[#grouped + 1] = id
      end
      local ex = expires_of(m)
      if ex <= q.now then
        gone[#gone + 1] = id
        goneMetas[#goneMetas + 1] = m
      else
        if has(m, F_HISTORY) then histories[#histories + 1] = id end
        if has(m, F_WAITED) then waited[#waited + 1] = id end
        expiring[#expiring + 1] = num(ex)
        expiring[#expiring + 1] = id
        kept[#kept + 1] = id
      end
    end
  end
  regroup(grouped, -1)
  drop_all(gone, goneMetas)
  if #kept > 0 then
    redis.call('HDEL', K.payloads, unpack(kept))
    redis.call('ZADD', K.expires, unpack(expiring))
  end
  if #histories > 0 then redis.call('HDEL', K.attempts, unpack(histories)) end
  if #waited > 0 then redis.call('HDEL', K.waiters, unpack(waited)) end
end

-- Takes the `n` oldest ids out of index `key` and returns them. Not ZPOPMIN: its reply carries the
-- scores, which Redis formats with snprintf('%.17g') (~4 % of a drain's instructions); the
-- stamps are in the records.
local function pop_oldest (key, n)
  local ids = redis.call('ZRANGE', key, '0', num(n - 1))
  redis.call('ZREMRANGEBYRANK', key, '0', num(n - 1))
  return ids
end

-- Keeps the history of terminal state `st` within its retention: at most `budget` jobs leave it
-- per call, over count first, then past age. With `slack`, only once the count is exceeded by that
-- many (so the work comes in batches), and not by age (the reaper's pass does that). Returns how
-- many left.
local function trim (q, st, budget, slack)
  local age, keep = rule_of(q, st)
  local key = IK[st]
  local n = 0
  local excess = redis.call('ZCARD', key) - keep
  if excess > (slack or 0) then
    n = math.min(excess, budget)
    untrack_all(q, pop_oldest(key, n))
  end
  if not slack and n < budget and age < q.now then
    local old = redis.call('ZRANGEBYSCORE', key, '-inf', '(' .. num((q.now - age + 1) * 1000), 'LIMIT', '0', num(budget - n))
    if #old > 0 then
      redis.call('ZREM', key, unpack(old))
      untrack_all(q, old)
      n = n + #old
    end
  end
  return n
end

-- Trims the history of terminal state `st` to its count exactly (the scripts that end jobs let it
-- run behind), once per script: before a job leaves that history otherwise (removed, retried, its
-- id enqueued again), so that none of those behind the count comes back into view.
local function trim_count (q, st)
  if q.exact and q.exact[st] then return end
  q.exact = q.exact or {}
  q.exact[st] = true
  local _, keep = rule_of(q, st)
  local excess = redis.call('ZCARD', IK[st]) - keep
  if excess > 0 then untrack_all(q, pop_oldest(IK[st], excess)) end
end

-- Deletes up to `budget` jobs whose result cache ended after they left history. Returns how many.
local function sweep (q, budget)
  local due = redis.call('ZRANGEBYSCORE', K.expires, '-inf', num(q.now), 'LIMIT', '0', num(budget))
  if #due == 0 then return 0 end
  redis.call('ZREM', K.expires, unpack(due))
  local metas = redis.call('HMGET', K.jobs, unpack(due))
  local gone, goneMetas = {}, {}
  for i = 1, #due do
    local m = metas[i]
    -- (ttl.lua moves the entry when it changes the end of the cache.)
    if m and TERMINAL[st_of(m)] and expires_of(m) <= q.now then
      gone[#gone + 1] = due[i]
      goneMetas[#goneMetas + 1] = m
    end
  end
  drop_all(gone, goneMetas)
  return #due
end

-- Keeps terminal histories within their retention and deletes expired result caches, with
-- bounded work. The scripts that end jobs trim the states they ended jobs in, in batches of
-- TRIM_SLACK, and sweep after a trim (`every` false); the reaper's pass trims every state by count
-- and age, and sweeps (`every` true).
local function tidy (q, budget, every)
  local n = 0
  for st in pairs(TERMINAL) do
    if every then
      n = n + trim(q, st, budget)
    elseif q.ended[st] then
      n = n + trim(q, st, budget, TRIM_SLACK)
    end
  end
  if every or n > 0 then n = n + sweep(q, budget + n) end
  return n
end

-- The score of the earliest due job, or math.huge.
local function due_head ()
  local h = redis.call('ZRANGE', K.due, '0', '0', 'WITHSCORES')
  if h[2] then return tonumber(h[2]) end
  return math.huge
end

-- Puts job `id` (record `m`, already in state q with its new stamp) in line: at the tail, or at
-- the head (`head`: a job handed back unrun). Returns the record.
local function push_ready (q, id, m, payload, head)
  local e = ready_element(id, m, payload)
  if head then redis.call('LPUSH', list_of(q), e) else redis.call('RPUSH', list_of(q), e) end
end

-- Puts processing job `id` (record `m`) back in line: at the tail, or at the head when it is
-- handed back unrun (`unrun`: the attempt does not count). The attempt is recorded as ended by
-- `outcome`, with error `err`, which also becomes the job's last error.
local function requeue_running (q, batch, id, m, outcome, err, unrun)
  m = end_attempt(q, id, m, outcome, err)
  local r = rec_read(m)
  if err then
    r.flags = bit.bor(r.flags, F_OUTCOME)
    r.body = err
  end
  if unrun then r.attempts = r.attempts - 1 end
  r.state, r.enteredAt, r.readyAt = 'q', q.now, q.now
  r.stamp = move(q, id, 'p', 'q')
  m = rec_write(r)
  batch.leased[#batch.leased + 1] = id
  redis.call('HSET', K.jobs, id, m)
  push_ready(q, id, m, redis.call('HGET', K.payloads, id) or '', unrun)
end

-- Moves due delayed and failing jobs to the tail of the ready list, in (due time, id) order.
-- Returns the due time of the earliest job left in ZSET `due` (math.huge: none), read first so
-- that a queue with nothing due costs one command.
local function promote (q)
  local head = due_head()
  if head > q.now then return head end
  local due = redis.call('ZRANGEBYSCORE', K.due, '-inf', num(q.now), 'WITHSCORES', 'LIMIT', '0', '1000')
  local ids = {}
  for i = 1, #due, 2 do ids[#ids + 1] = due[i] end
  redis.call('ZREM', K.due, unpack(ids))
  local metas = redis.call('HMGET', K.jobs, unpack(ids))
  local payloads = redis.call('HMGET', K.payloads, unpack(ids))
  local fields, elements = {}, {}
  for i = 1, #ids do
    local m = metas[i]
    local st = m and st_of(m)
    if st == 'd' or st == 'f' then
      local s = move(q, ids[i], st, 'q')
      m = 'q' .. string.sub(m, R_FLAGS, R_ENTERED_AT - 1) .. struct.pack('>dd', q.now, s) .. string.sub(m, R_ATTEMPTS)
      m = with_dbl(m, R_READY_AT, tonumber(due[2 * i]))
      fields[#fields + 1] = ids[i]
      fields[#fields + 1] = m
      elements[#elements + 1] = ready_element(ids[i], m, payloads[i] or '')
    end
  end
  if #elements > 0 then
    redis.call('HSET', K.jobs, unpack(fields))
    redis.call('RPUSH', list_of(q), unpack(elements))
  end
  return due_head()
end

-- Leases the queued jobs of `elements` (already off the ready or claiming list) to `worker` and
-- appends them to `out`, 3 fields each: id, payload, record. An element whose job is gone, not
-- queued, or in another attempt (cancelled or requeued meanwhile) is dropped. With `held`, the
-- records and leases are not written but kept in it (id -> record) for the caller, which writes
-- those it does not end itself with `unhold`.
local function take (q, elements, leaseMs, worker, out, held)
  if #elements == 0 then return end
  local now = q.now
  local ids = {}
  for i = 1, #elements do ids[i] = element_id(elements[i]) end
  local metas = redis.call('HMGET', K.jobs, unpack(ids))
  local fields, leases, refs = {}, {}, {}
  local deadline = num(now + leaseMs)
  for i = 1, #ids do
    local m, e, id = metas[i], elements[i], ids[i]
    if m and st_of(m) == 'q' and attempts_of(m) + 1 == struct.unpack('>d', e, E_ATTEMPT) then
      local s = move(q, id, 'q', 'p')
      local started = dbl(m, R_STARTED_AT)
      if started == 0 then started = now end
      -- Runs of the record (see codec.ts): state flags | enteredAt stamp attempts startedAt
      -- attemptStartedAt | expiresAt lastOutcome groupLength | workerLength | stalls .. delay group | worker | body
      m = 'p' .. string.sub(m, R_FLAGS, R_FLAGS) .. struct.pack('>ddIdd', now, s, attempts_of(m) + 1, started, now)
        .. string.sub(m, R_EXPIRES_AT, R_WORKER_LENGTH - 1) .. struct.pack('>H', #worker)
        .. string.sub(m, R_WORKER_LENGTH + 2, R_SIZE + string.byte(m, R_GROUP_LENGTH)) .. worker .. body_of(m)
      fields[#fields + 1] = id
      fields[#fields + 1] = m
      leases[#leases + 1] = deadline
      leases[#leases + 1] = id
      out[#out + 1] = id
      if string.sub(e, E_KIND, E_KIND) == 'E' then
        out[#out + 1] = string.sub(e, E_SIZE + 1 + #id)
      else
        out[#out + 1] = ''
        refs[#refs + 1] = #out
      end
      out[#out + 1] = m
    end
  end
  if held then
    for i = 1, #fields, 2 do held[fields[i]] = fields[i + 1] end
  elseif #fields > 0 then
    leases[#leases + 1] = '+inf'
    leases[#leases + 1] = LEASE_PIN
    redis.call('HSET', K.jobs, unpack(fields))
    redis.call('ZADD', K.leases, unpack(leases))
  end
  if #refs > 0 then
    local wanted = {}
    for i = 1, #refs do wanted[i] = out[refs[i] - 1] end
    local stored = redis.call('HMGET', K.payloads, unpack(wanted))
    for i = 1, #refs do out[refs[i]] = stored[i] or '' end
  end
end

-- Writes the records and leases `take` kept in `held` (see there) but those of `ended` (id -> true).
local function unhold (held, ended, leaseMs, now)
  local fields, leases = {}, {}
  local deadline = num(now + leaseMs)
  for id, m in pairs(held) do
    if not ended[id] then
      fields[#fields + 1] = id
      fields[#fields + 1] = m
      leases[#leases + 1] = deadline
      leases[#leases + 1] = id
    end
  end
  if #fields > 0 then
    leases[#leases + 1] = '+inf'
    leases[#leases + 1] = LEASE_PIN
    redis.call('HSET', K.jobs, unpack(fields))
    redis.call('ZADD', K.leases, unpack(leases))
  end
end

-- The jobs one script ends, written by `flush` once per script: one command per key, and one
-- message per waiting instance however many of its jobs ended (a message per job cost Redis a
-- PUBLISH and the waiter an event each).
local function new_batch ()
  return { records = {}, told = {}, leased = {}, grouped = {}, infos = {} }
end

-- Notes that the waiters of job `id` must hear that it ended in state `st` with `body`.
local function tell (batch, id, st, body)
  local t = batch.told
  t[#t + 1] = id
  t[#t + 1] = st
  t[#t + 1] = body
end

-- Ends job `id` (record `m`) in terminal state `st` ('c', 'e' or 'x'): into history, with its
-- result cache for `ttl` ms. `outcome`: letter of the attempt that ended it ('\0' when none did);
-- `body`: the result ('c') or error ('e'; nil keeps the last error); `g`, `info`: its failure
-- group ('e', or nil). Written, and its waiters told, when the batch is flushed; the caller must
-- not end the same id twice in one batch.
local function finish (q, batch, id, m, st, outcome, body, ttl, g, info)
  local from = st_of(m)
  local s = move(q, id, from, st)
  local waited = has(m, F_WAITED)
  local fl = flags_of(m)
  if st == 'c' or (st == 'e' and body) then
    fl = bit.bor(fl, F_OUTCOME)
  elseif st == 'x' then
    fl = bit.band(fl, bit.bnot(F_OUTCOME))
    body = ''
  else
    body = body_of(m)
  end
  if from == 'p' then
    batch.leased[#batch.leased + 1] = id
  elseif from == 'd' or from == 'f' then
    redis.call('ZREM', K.due, id)
  end
  g = g or ''
  if #g > 255 then g = string.sub(g, 1, 255) end
  local w = worker_of(m)
  local r = batch.records
  r[#r + 1] = id
  -- Runs of the record (see take): the group goes in between the fixed part and the worker.
  r[#r + 1] = st .. string.char(fl) .. struct.pack('>dd', q.now, s) .. string.sub(m, R_ATTEMPTS, R_EXPIRES_AT - 1)
    .. struct.pack('>dc1BH', q.now + ttl, outcome, #g, #w) .. string.sub(m, R_STALLS, R_SIZE) .. g .. w .. body
  if #g > 0 then
    local gr = batch.grouped
    gr[#gr + 1] = g
    gr[#gr + 1] = s
    gr[#gr + 1] = id
    batch.infos[g] = info
  end
  count(q, TOTAL[st], 1)
  q.ended[st] = (q.ended[st] or 0) + 1
  if waited then tell(batch, id, st, body) end
end

-- Writes the records of the jobs a batch ended so far, and ends their leases.
local function write (batch)
  if #batch.records > 0 then redis.call('HSET', K.jobs, unpack(batch.records)) end
  local leased = batch.leased
  if batch.unleased then
    -- Jobs activated by this very script never had their lease written.
    leased = {}
    for i = 1, #batch.leased do
      if not batch.unleased[batch.leased[i]] then leased[#leased + 1] = batch.leased[i] end
    end
  end
  if #leased > 0 then redis.call('ZREM', K.leases, unpack(leased)) end
  regroup(batch.grouped, 1, batch.infos)
  batch.records, batch.leased, batch.grouped = {}, {}, {}
end

-- Applies a batch: `write`, then publishes to each waiting instance one message 'D' followed by
-- a record per job: state (upper case when the body is left out, over the inline limit), #id ':'
-- id, #body ':' body.
local function flush (q, batch, replyPrefix, inline)
  write(batch)
  local t = batch.told
  if #t == 0 then return end
  local ids = {}
  for i = 1, #t, 3 do ids[#ids + 1] = t[i] end
  -- (The tokens stay with the record: its history tells who waited.)
  local waiting = redis.call('HMGET', K.waiters, unpack(ids))
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
local function add_waiter (id, m, token)
  local tokens = redis.call('HGET', K.waiters, id) or ''
  if string.find(tokens, token, 1, true) then return end
  redis.call('HSET', K.waiters, id, tokens .. token)
  local fl = flags_of(m)
  if bit.band(fl, F_WAITED) == 0 then redis.call('HSET', K.jobs, id, with_flags(m, bit.bor(fl, F_WAITED))) end
end

-- Takes a queued job's ready element off whichever list holds it.
local function unlist (id, m)
  local e = ready_element(id, m, redis.call('HGET', K.payloads, id) or '')
  if redis.call('LREM', K.ready, 1, e) == 0 and redis.call('LREM', K.held, 1, e) == 0 then
    redis.call('LREM', K.claiming, 1, e)
  end
end

-- Drops a job that is in no list, due or lease set (a terminal one) for good: history, result
-- cache, the id.
local function erase (q, id, m)
  local st = st_of(m)
  if TERMINAL[st] then trim_count(q, st) end
  local key = IK[st]
  local g = group_of(m)
  if #g > 0 then
    local s = redis.call('ZSCORE', key, id)
    if s then regroup({ g, tonumber(s), id }, -1) end
  end
  redis.call('ZREM', key, id)
  redis.call('ZREM', K.expires, id)
  drop_all({ id }, { m })
end

-- The key and info of a failure group block (see codec.ts), or nil when it is empty.
local function parse_group (block)
  if #block == 0 then return nil, nil end
  local kl = string.byte(block, 1)
  return string.sub(block, 2, 1 + kl), string.sub(block, 2 + kl)
end

-- The processing jobs (ZSET `leases`) with from <= stamp <= to (stamps in their records), in
-- `order`, at most `limit`: id, stamp, ... and their records and lease deadlines, in the same
-- order. All are read and sorted: they are bounded by the consumers' concurrency.
local function processing_page (order, from, to, limit)
  local leased = redis.call('ZRANGE', K.leases, '-inf', '(inf', 'BYSCORE', 'WITHSCORES')
  if #leased == 0 then return {}, {}, {} end
  local ids = {}
  for i = 1, #leased, 2 do ids[#ids + 1] = leased[i] end
  local metas = redis.call('HMGET', K.jobs, unpack(ids))
  local rows = {}
  for i = 1, #ids do
    local m = metas[i]
    if m and st_of(m) == 'p' then
      local s = dbl(m, R_STAMP)
      if s >= from and s <= to then rows[#rows + 1] = { s, ids[i], m, leased[2 * i] } end
    end
  end
  if order == 'asc' then
    table.sort(rows, function (a, b) return a[1] < b[1] end)
  else
    table.sort(rows, function (a, b) return a[1] > b[1] end)
  end
  local found, recs, leases = {}, {}, {}
  for i = 1, math.min(#rows, limit) do
    found[#found + 1] = rows[i][2]
    found[#found + 1] = num(rows[i][1])
    recs[i] = rows[i][3]
    leases[i] = rows[i][4]
  end
  return found, recs, leases
end
