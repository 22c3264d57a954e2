-- apply: one chunk of an operator action (retry, remove, cancel, promote; see the lifecycle table
-- in types.ts), atomic: a list of ids, or up to `limit` jobs of one state (optionally of one
-- failure group, entered before a time) taken oldest first after a cursor and up to a horizon.
-- A dry run changes nothing and, for a state, counts the whole target in O(log n).
-- KEYS jobs payloads attempts waiters ready held claiming due leases queued delayed
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

-- Whether the action applies to jobs of state `st` at all.
local function state_applies (st)
  if action == 'retry' then return TERMINAL[st] or st == 'f' end
  if action == 'promote' then return st == 'd' or st == 'f' end
  if action == 'cancel' then return not TERMINAL[st] end
  return st ~= 'p'
end

local function applies (id, m)
  local st = st_of(m)
  if action == 'retry' and TERMINAL[st] then return in_history(id, st) end
  return state_applies(st)
end

local function would (m)
  if action == 'retry' then return 'retried' end
  if action == 'promote' then return 'promoted' end
  if action == 'remove' then return 'removed' end
  if st_of(m) == 'p' then return 'aborting' end
  return 'cancelled'
end

-- Retries or promotes the jobs `ids` (records `metas`, stamps `stamps`): back in line at the
-- tail, now. A retry starts a new attempt series, and the attempt that ended a job joins its
-- history. One command per key for the whole chunk (but the attempt histories).
local function requeue_all (ids, metas, stamps)
  local retry = action == 'retry'
  local fields, grouped, dues, unwaited, histories = {}, {}, {}, {}, {}
  local payloads = redis.call('HMGET', K.payloads, unpack(ids))
  local elements = {}
  for i = 1, #ids do
    local id, m = ids[i], metas[i]
    local st = st_of(m)
    if st == 'd' or st == 'f' then dues[#dues + 1] = id end
    if retry then
      if TERMINAL[st] then
        local lo = string.sub(m, R_LAST_OUTCOME, R_LAST_OUTCOME)
        if lo ~= NO_OUTCOME then
          local err = ''
          if lo == 'e' and has(m, F_OUTCOME) then err = body_of(m) end
          m = push_attempt(id, m, attempts_of(m), dbl(m, R_ATTEMPT_STARTED_AT), dbl(m, R_ENTERED_AT), lo, err, histories)
        end
        local g = group_of(m)
        if #g > 0 then
          grouped[#grouped + 1] = g
          grouped[#grouped + 1] = stamps[i]
          grouped[#grouped + 1] = id
        end
        -- Its waiters were told when it ended.
        if has(m, F_WAITED) then unwaited[#unwaited + 1] = id end
      end
    end
    local r = rec_read(m)
    if retry then
      local clear = F_CANCEL + F_OUTCOME
      if TERMINAL[st] then clear = clear + F_WAITED end
      r.flags = bit.band(r.flags, bit.bnot(clear))
      r.attempts, r.stalls, r.retries = 0, 0, r.retries + 1
      r.expiresAt, r.lastOutcome, r.group, r.worker, r.body = math.huge, NO_OUTCOME, '', '', ''
    end
    r.state, r.enteredAt, r.readyAt = 'q', now, now
    r.stamp = move(q, id, st, 'q')
    m = rec_write(r)
    fields[#fields + 1] = id
    fields[#fields + 1] = m
    elements[#elements + 1] = ready_element(id, m, payloads[i] or '')
  end
  regroup(grouped, -1)
  if #histories > 0 then redis.call('HSET', K.attempts, unpack(histories)) end
  if #dues > 0 then redis.call('ZREM', K.due, unpack(dues)) end
  if #unwaited > 0 then redis.call('HDEL', K.waiters, unpack(unwaited)) end
  redis.call('HSET', K.jobs, unpack(fields))
  redis.call('RPUSH', list_of(q), unpack(elements))
end

-- Removes the jobs `ids` for good (none is running); the waiters of active ones hear `cancelled`.
local function remove_all (ids, metas, stamps)
  local dues, grouped, expiring = {}, {}, {}
  for i = 1, #ids do
    local id, m = ids[i], metas[i]
    local st = st_of(m)
    if not TERMINAL[st] and has(m, F_WAITED) then tell(batch, id, 'x', '') end
    if st == 'q' then unlist(id, m) elseif st == 'd' or st == 'f' then dues[#dues + 1] = id end
    move(q, id, st, nil)
    if TERMINAL[st] then
      expiring[#expiring + 1] = id
      local g = group_of(m)
      if #g > 0 and stamps[i] then
        grouped[#grouped + 1] = g
        grouped[#grouped + 1] = stamps[i]
        grouped[#grouped + 1] = id
      end
    end
  end
  regroup(grouped, -1)
  if #dues > 0 then redis.call('ZREM', K.due, unpack(dues)) end
  if #expiring > 0 then redis.call('ZREM', K.expires, unpack(expiring)) end
  drop_all(ids, metas)
end

-- Cancels the jobs `ids`: waiting ones end `cancelled` (kept for their resultTTL), running ones
-- are asked to stop. Returns each one's answer.
local function cancel_all (ids, metas)
  local out = {}
  for i = 1, #ids do
    local id, m = ids[i], metas[i]
    local st = st_of(m)
    if st == 'p' then
      if not has(m, F_CANCEL) then redis.call('HSET', K.jobs, id, with_flags(m, bit.bor(flags_of(m), F_CANCEL))) end
      redis.call('PUBLISH', ARGV[6], 'A' .. id)
      out[i] = 'aborting'
    else
      if st == 'q' then unlist(id, m) end
      finish(q, batch, id, m, 'x', NO_OUTCOME, nil, ttl_of(m))
      out[i] = 'cancelled'
    end
  end
  return out
end

-- Applies the action to `ids` (records `metas`, index stamps `stamps`, each applicable, no id
-- twice); returns the answer of each.
local function act_all (ids, metas, stamps)
  if #ids == 0 then return {} end
  if action ~= 'cancel' then
    for i = 1, #metas do
      if TERMINAL[st_of(metas[i])] then trim_count(q, st_of(metas[i])) end
    end
  end
  if action == 'cancel' then return cancel_all(ids, metas) end
  local answer = 'removed'
  if action == 'remove' then
    remove_all(ids, metas, stamps)
  else
    requeue_all(ids, metas, stamps)
    answer = action == 'retry' and 'retried' or 'promoted'
  end
  local out = {}
  for i = 1, #ids do out[i] = answer end
  return out
end

local matched, changed, nextStamp, results = 0, 0, '', {}
if ARGV[8] == 'i' then
  for i = 9, #ARGV do
    local id = ARGV[i]
    local k = i - 8
    -- One by one: an id given twice meets what the first one changed.
    local m = redis.call('HGET', K.jobs, id)
    local st = m and st_of(m)
    if not m or (TERMINAL[st] and expires_of(m) <= now and not in_history(id, st)) then
      results[k] = 'not_found'
    elseif not applies(id, m) then
      results[k] = 'skipped'
    else
      matched = matched + 1
      if dry then
        results[k] = would(m)
      else
        local s = st ~= 'p' and redis.call('ZSCORE', IK[st], id)
        results[k] = act_all({ id }, { m }, { s and tonumber(s) })[1]
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
  elseif dry and st == 'p' then
    matched = #processing_page('asc', from, hi, math.huge) / 2
  elseif dry and prefix then
    matched = redis.call('ZLEXCOUNT', K.bygroup, '[' .. prefix .. struct.pack('>d', from), '(' .. prefix .. struct.pack('>d', hi + 1))
  elseif dry then
    matched = redis.call('ZCOUNT', IK[st], from, hi)
  else
    local ids, stamps, metas = {}, {}, nil
    if st == 'p' then
      local found
      found, metas = processing_page('asc', from, hi, limit + 1)
      for i = 1, #found, 2 do
        ids[#ids + 1] = found[i]
        stamps[#stamps + 1] = tonumber(found[i + 1])
      end
    elseif prefix then
      local found = redis.call('ZRANGEBYLEX', K.bygroup, '[' .. prefix .. struct.pack('>d', from), '(' .. prefix .. struct.pack('>d', hi + 1), 'LIMIT', 0, limit + 1)
      for i = 1, #found do
        ids[i] = string.sub(found[i], #prefix + 9)
        stamps[i] = struct.unpack('>d', found[i], #prefix + 1)
      end
    else
      local found = redis.call('ZRANGEBYSCORE', IK[st], from, hi, 'WITHSCORES', 'LIMIT', 0, limit + 1)
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
      metas = metas or redis.call('HMGET', K.jobs, unpack(ids, 1, n))
      local take, takeMetas, takeStamps = {}, {}, {}
      for i = 1, n do
        local m = metas[i]
        if m and st_of(m) == st then
          take[#take + 1] = ids[i]
          takeMetas[#takeMetas + 1] = m
          takeStamps[#takeStamps + 1] = stamps[i]
        end
      end
      matched = #take
      act_all(take, takeMetas, takeStamps)
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
