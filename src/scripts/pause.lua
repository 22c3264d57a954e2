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
if pause then
  redis.call('HSET', K.meta, 'paused', '1')
  if redis.call('EXISTS', K.ready) == 1 then
    -- While running, `held` is empty: a plain rename.
    if redis.call('EXISTS', K.held) == 0 then
      redis.call('RENAME', K.ready, K.held)
    else
      while redis.call('LMOVE', K.ready, K.held, 'LEFT', 'RIGHT') do end
    end
  end
  return 1
end
redis.call('HDEL', K.meta, 'paused')
if redis.call('EXISTS', K.held) == 1 then
  if redis.call('EXISTS', K.ready) == 0 then
    redis.call('RENAME', K.held, K.ready)
  else
    -- Never the case (nothing enters `ready` while paused); held jobs would go first.
    while redis.call('LMOVE', K.held, K.ready, 'RIGHT', 'LEFT') do end
  end
end
local head = due_head()
if head ~= math.huge then redis.call('PUBLISH', ARGV[3], 'W' .. num(head)) end
return 1
