-- retention: stores a queue's retention and trims what it pushes out of history, at most
-- `budget` jobs per state per call: the client calls again while it answers 1.
-- KEYS jobs payloads outcomes attempts waiters completed failed cancelled expires meta groups
-- KEYS groupinfo bygroup
-- ARGV[1] now (ms)  [2] retention (RT_FORMAT)  [3] budget
-- Returns 1 when more remains to trim, else 0.
local q = queue_of(tonumber(ARGV[1]))
local budget = tonumber(ARGV[3])
redis.call('HSET', K.meta, 'retention', ARGV[2])
meta_of(q).retention = ARGV[2]
local more = 0
for st in pairs(TERMINAL) do
  if trim(q, st, budget) >= budget then more = 1 end
end
save(q)
return more
