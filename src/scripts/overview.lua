-- overview: the queue at a glance, O(log n): counts per state (terminal states: the jobs in
-- history, within its age), pause flag, when the oldest queued job entered `queued`, stored
-- retention and totals.
-- KEYS queued delayed processing failing completed failed cancelled jobs meta beats
-- ARGV[1] now (ms)
-- Returns { queued, delayed, processing, failing, completed, failed, cancelled, paused (0/1),
--   oldest queued enteredAt (-1: none), retention ('' when none is stored), enqueued, completed,
--   failed, retried, stalled, cancelled (totals), workers registered (live or not) }
local q = queue_of(tonumber(ARGV[1]))
local out = {}
for i, st in ipairs({ 'q', 'd', 'p', 'f' }) do out[i] = redis.call('ZCARD', IK[st]) end
for i, st in ipairs({ 'c', 'e', 'x' }) do
  local floor = floor_of(q, st)
  local lo = '-inf'
  if floor > -math.huge then lo = num(floor) end
  out[4 + i] = redis.call('ZCOUNT', IK[st], lo, '+inf')
end
local v = redis.call('HMGET', K.meta, 'paused', 'retention', 'enqueued', 'completed', 'failed', 'retried', 'stalled', 'cancelled')
out[8] = 0
if v[1] == '1' then out[8] = 1 end
out[9] = -1
local oldest = redis.call('ZRANGE', K.queued, 0, 0)
if oldest[1] then
  local m = redis.call('HGET', K.jobs, oldest[1])
  if m then out[9] = dbl(m, R_ENTERED_AT) end
end
out[10] = v[2] or ''
for i = 3, 8 do out[8 + i] = tonumber(v[i]) or 0 end
out[17] = redis.call('ZCARD', K.beats)
return out
