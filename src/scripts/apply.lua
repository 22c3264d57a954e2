-- apply: one chunk of an operator action (retry, remove, cancel, promote; see the lifecycle table
-- in types.ts), atomic: a list of ids, or up to `limit` jobs of one state (optionally of one
-- failure group, entered before a time) taken oldest first after a cursor and up to a horizon.
-- A dry run changes nothing and, for a state, counts the whole target in O(log n).
-- KEYS jobs payloads outcomes attempts waiters ready held claiming due leases queued delayed
-- KEYS failing completed failed cancelled expires meta groups groupinfo bygroup
-- ARGV[1] now (ms)  [2] action  [3] dry run (0/1)  [4] limit  [5] reply channel prefix
--      [6] control channel  [7] inline limit (bytes)
--      [8] 'i', then the ids from [9]; or 's', then [9] state letter  [10] before (stamp bound,
--      exclusive; '' none)  [11] failure group key ('' none)  [12] after (stamp; '' none)
--      [13] until (stamp; '' none: the queue's last stamp)
-- Returns { matched, changed, next stamp ('' when done), until, results (ids: one per id) }
local q = queue_of(tonumber(ARGV[1]))
local now, action, dry, limit = q.now, ARGV[2], ARGV[3] == '1', tonumber(ARGV[4])
local batch = new_batch()
local horizon = meta_of(q).stamp

-- True while a terminal job is in the history of its state.
local function in_history (id, st)
  local s = redis.call('ZSCORE', IK[st], id)
  return s ~= false and tonumber(s) >= history_floor(q, st)
end

local function applies (id, m)
  local st = st_of(m)
  if action == 'retry' then return st == 'f' or (TERMINAL[st] and in_history(id, st)) end
  if action == 'promote' then return st == 'd' or st == 'f' end
  if action == 'cancel' then return not TERMINAL[st] end
  return st ~= 'p' -- remove
end

-- Whether the action applies to jobs of state `st` at all.
local function state_applies (st)
  if action == 'retry' then return TERMINAL[st] or st == 'f' end
  if action == 'promote' then return st == 'd' or st == 'f' end
  if action == 'cancel' then return not TERMINAL[st] end
  return st ~= 'p'
end

local function would (m)
  if action == 'retry' then return 'retried' end
  if action == 'promote' then return 'promoted' end
  if action == 'remove' then return 'removed' end
  if st_of(m) == 'p' then return 'aborting' end
  return 'cancelled'
end

-- Back in line at the tail, now: the record `r` (a table) enters `queued`.
local function requeue (id, st, r)
  r.state = 'q'
  r.enteredAt = now
  r.readyAt = now
  r.stamp = move(q, id, st, 'q')
  if st == 'd' or st == 'f' then redis.call('ZREM', K.due, id) end
  local m = rec_write(r)
  redis.call('HSET', K.jobs, id, m)
  push_ready(q, id, m, redis.call('HGET', K.payloads, id) or '')
end

local function act (id, m)
  local st = st_of(m)
  if action == 'retry' then
    -- A new attempt series; the attempt that ended the job joins its history.
    if TERMINAL[st] then
      local lo = string.sub(m, R_LAST_OUTCOME, R_LAST_OUTCOME)
      if lo ~= NO_OUTCOME then
        local err = ''
        if lo == 'e' and has(m, F_OUTCOME) then err = redis.call('HGET', K.outcomes, id) or '' end
        m = push_attempt(id, m, attempts_of(m), dbl(m, R_ATTEMPT_STARTED_AT), dbl(m, R_ENTERED_AT), lo, err)
      end
      local g = group_of(m)
      if #g > 0 then group_remove(g, tonumber(redis.call('ZSCORE', IK[st], id)), id) end
    end
    if has(m, F_OUTCOME) then redis.call('HDEL', K.outcomes, id) end
    local r = rec_read(m)
    local clear = F_CANCEL + F_OUTCOME
    if TERMINAL[st] and has(m, F_WAITED) then
      -- Its waiters were told when it ended.
      clear = clear + F_WAITED
      redis.call('HDEL', K.waiters, id)
    end
    r.flags = bit.band(r.flags, bit.bnot(clear))
    r.attempts, r.stalls, r.retries = 0, 0, r.retries + 1
    r.expiresAt, r.lastOutcome, r.group, r.worker = math.huge, NO_OUTCOME, '', ''
    requeue(id, st, r)
    return 'retried'
  elseif action == 'promote' then
    requeue(id, st, rec_read(m))
    return 'promoted'
  elseif action == 'cancel' then
    if st == 'p' then
      if not has(m, F_CANCEL) then redis.call('HSET', K.jobs, id, with_flags(m, bit.bor(flags_of(m), F_CANCEL))) end
      redis.call('PUBLISH', ARGV[6], 'A' .. id)
      return 'aborting'
    end
    if st == 'q' then unlist(id, m) end
    finish(q, batch, id, m, 'x', NO_OUTCOME, nil, ttl_of(m))
    return 'cancelled'
  end
  if not TERMINAL[st] and has(m, F_WAITED) then tell(batch, id, 'x', '') end
  forget(id, m)
  return 'removed'
end

local matched, changed, nextStamp, results = 0, 0, '', {}
if ARGV[8] == 'i' then
  local ids = {}
  for i = 9, #ARGV do ids[#ids + 1] = ARGV[i] end
  for i = 1, #ids do
    local id = ids[i]
    -- Read one by one: an id given twice meets what the first one changed.
    local m = redis.call('HGET', K.jobs, id)
    local st = m and st_of(m)
    if not m or (TERMINAL[st] and expires_of(m) <= now and not in_history(id, st)) then
      results[i] = 'not_found'
    elseif not applies(id, m) then
      results[i] = 'skipped'
    else
      matched = matched + 1
      if dry then
        results[i] = would(m)
      else
        results[i] = act(id, m)
        apply_moves(q)
        write(batch)
      end
    end
  end
else
  local st, before, g, after = ARGV[9], ARGV[10], ARGV[11], ARGV[12]
  if ARGV[13] ~= '' then horizon = tonumber(ARGV[13]) end
  local lo, hi = 0, horizon
  if TERMINAL[st] then lo = math.max(0, history_floor(q, st)) end
  if before ~= '' then hi = math.min(hi, tonumber(before) - 1) end
  local from = lo
  if after ~= '' then from = math.max(lo, tonumber(after) + 1) end
  local prefix = g ~= '' and string.char(#g) .. g
  if not state_applies(st) or from > hi then
    -- Nothing of this state can take the action, or the range is empty.
  elseif st == 'p' then
    local found = processing_page('asc', from, hi, math.huge)
    if dry then
      matched = #found / 2
    else
      local n = math.min(#found / 2, limit)
      if #found / 2 > limit then nextStamp = found[2 * n] end
      for i = 1, n do
        local id = found[2 * i - 1]
        matched = matched + 1
        act(id, redis.call('HGET', K.jobs, id))
      end
    end
  elseif dry then
    if prefix then
      matched = redis.call('ZLEXCOUNT', K.bygroup, '[' .. prefix .. struct.pack('>d', from), '(' .. prefix .. struct.pack('>d', hi + 1))
    else
      matched = redis.call('ZCOUNT', IK[st], num(from), num(hi))
    end
  else
    local ids, stamps = {}, {}
    if prefix then
      local found = redis.call('ZRANGEBYLEX', K.bygroup, '[' .. prefix .. struct.pack('>d', from), '(' .. prefix .. struct.pack('>d', hi + 1), 'LIMIT', 0, limit + 1)
      for i = 1, #found do
        ids[i] = string.sub(found[i], #prefix + 9)
        stamps[i] = struct.unpack('>d', found[i], #prefix + 1)
      end
    else
      local found = redis.call('ZRANGEBYSCORE', IK[st], num(from), num(hi), 'WITHSCORES', 'LIMIT', 0, limit + 1)
      for i = 1, #found, 2 do
        ids[#ids + 1] = found[i]
        stamps[#stamps + 1] = tonumber(found[i + 1])
      end
    end
    local n = #ids
    if n > limit then
      n = limit
      nextStamp = num(stamps[n])
    end
    if n > 0 then
      local metas = redis.call('HMGET', K.jobs, unpack(ids, 1, n))
      for i = 1, n do
        local m = metas[i]
        if m and st_of(m) == st then
          matched = matched + 1
          act(ids[i], m)
        end
      end
      apply_moves(q)
    end
  end
end
if not dry then
  changed = matched
  flush(q, batch, ARGV[5], tonumber(ARGV[7]))
  tidy(q, TIDY_BUDGET)
  save(q)
end
return { matched, changed, nextStamp, num(horizon), results }
