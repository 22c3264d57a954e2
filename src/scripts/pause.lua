-- pause: pauses or resumes claiming. Pausing renames the ready list to `held`, where every job
-- that becomes ready goes while paused: no claim, not even a BLMOVE blocked since before, can
-- take one. Resuming renames it back, which wakes blocked BLMOVEs at once, and tells blocked
-- claims when the earliest delayed job is due (a claim promotes it, as always).
-- KEYS meta ready held due
-- ARGV[1] now (ms)  [2] 1 pause | 0 resume  [3] control channel
-- Returns 1 when the flag changed, else 0.
local q = queue_of(tonumber(ARGV[1]))
local pause = ARGV[2] == '1'
if paused(q) == pause then return 0 end

-- Moves list `from` into list `to`, the jobs of `older` first: a rename, as one of the two is
-- always empty (nothing enters `ready` while paused, nor `held` while running).
local function hand_over (from, to, older)
  if redis.call('EXISTS', from) == 0 then return end
  if redis.call('EXISTS', to) == 0 then
    redis.call('RENAME', from, to)
  elseif older == from then
    while redis.call('LMOVE', from, to, 'RIGHT', 'LEFT') do end
  else
    while redis.call('LMOVE', from, to, 'LEFT', 'RIGHT') do end
  end
end

if pause then
  redis.call('HSET', K.meta, 'paused', '1')
  hand_over(K.ready, K.held, K.held)
  return 1
end
redis.call('HDEL', K.meta, 'paused')
hand_over(K.held, K.ready, K.held)
local head = due_head()
if head ~= math.huge then redis.call('PUBLISH', ARGV[3], 'W' .. num(head)) end
return 1
