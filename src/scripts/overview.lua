-- overview: the queue at a glance, O(log n): counts per state (terminal states: the jobs in
-- history), pause flag, when the oldest queued job entered `queued`, stored retention and totals.
-- KEYS queued delayed failing completed failed cancelled leases jobs meta beats
-- ARGV[1] now (ms)
-- Returns { queued, delayed, processing, failing, completed, failed, cancelled, paused (0/1),
--   oldest queued enteredAt (-1: none), retention ('' when none is stored), enqueued, completed,
--   failed, retried, stalled, cancelled (totals), workers registered (live or not) }
local q = queue_of(tonumber(ARGV[1]))
local out = { redis.call('ZCARD', K.queued), redis.call('ZCARD', K.delayed), redis.call('ZCOUNT', K.leases, '-inf', '(inf'), redis.call('ZCARD', K.failing) }
for i, st in ipairs({ 'c', 'e', 'x' }) do
  local floor = history_floor(q, st)
  if floor == math.huge then out[4 + i] = 0 else out[4 + i] = redis.call('ZCOUNT', IK[st], floor, '+inf') end
end
meta_of(q)
out[8] = 0
if q.paused then out[8] = 1 end
out[9] = -1
local oldest = redis.call('ZRANGE', K.queued, 0, 0)
if oldest[1] then
  local m = redis.call('HGET', K.jobs, oldest[1])
  if m then out[9] = dbl(m, R_ENTERED_AT) end
end
out[10] = q.retention or ''
local had = redis.call('HMGET', K.meta, unpack(TOTALS))
for i = 1, #TOTALS do out[10 + i] = tonumber(had[i]) or 0 end
out[17] = redis.call('ZCARD', K.beats)
return out
