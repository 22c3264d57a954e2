-- retention: stores a queue's retention and trims what it pushes out of history, at most
-- `budget` jobs per state per call: the client calls again while it answers 1. What the stored
-- retention pushed out already is trimmed first, so a longer retention cannot bring it back.
-- KEYS jobs payloads attempts waiters completed failed cancelled expires meta groups
-- KEYS groupinfo bygroup
-- ARGV[1] now (ms)  [2] retention (RT_FORMAT)  [3] budget
-- Returns 1 when more remains to trim, else 0.
local q = queue_of(tonumber(ARGV[1]))
local budget = tonumber(ARGV[3])

-- Trims every terminal state under the retention in force; true when a budget ran out.
local function trim_all ()
  local more = false
  for st in pairs(TERMINAL) do
    if trim(q, st, budget) >= budget then more = true end
  end
  return more
end

if meta_of(q).retention ~= ARGV[2] then
  if trim_all() then
    save(q)
    return 1
  end
  redis.call('HSET', K.meta, 'retention', ARGV[2])
  q.retention = ARGV[2]
end
local more = trim_all()
save(q)
if more then return 1 end
return 0
