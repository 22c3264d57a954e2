-- groups: the failure groups of the failed jobs in history.
-- KEYS jobs failed groups groupinfo bygroup meta
-- ARGV[1] now (ms)
-- Returns 6 per group with jobs: key, count, firstSeen, lastSeen (enteredAt of its oldest and
--   newest job), info (name, message, frame as JSON), then its newest 5 ids (newest first)
local q = queue_of(tonumber(ARGV[1]))
local floor = history_floor(q, 'e')
if floor == math.huge then return {} end
if floor < 0 then floor = 0 end
local keys = redis.call('HKEYS', K.groups)
local out = {}
for i = 1, #keys do
  local g = keys[i]
  local prefix = string.char(#g) .. g
  local lo, hi = '[' .. prefix .. struct.pack('>d', floor), '(' .. prefix .. '\255'
  local n = redis.call('ZLEXCOUNT', K.bygroup, lo, hi)
  if n > 0 then
    local newest = redis.call('ZREVRANGEBYLEX', K.bygroup, hi, lo, 'LIMIT', 0, 5)
    local oldest = redis.call('ZRANGEBYLEX', K.bygroup, lo, hi, 'LIMIT', 0, 1)
    local skip = #prefix + 9
    local samples = {}
    for j = 1, #newest do samples[j] = string.sub(newest[j], skip) end
    local edges = redis.call('HMGET', K.jobs, string.sub(oldest[1], skip), samples[1])
    out[#out + 1] = g
    out[#out + 1] = n
    out[#out + 1] = edges[1] and dbl(edges[1], R_ENTERED_AT) or 0
    out[#out + 1] = edges[2] and dbl(edges[2], R_ENTERED_AT) or 0
    out[#out + 1] = redis.call('HGET', K.groupinfo, g) or ''
    out[#out + 1] = samples
  end
end
return out
