-- recover: the reaper's scan. Requeues jobs whose lease expired (the stalled attempt counts), and
-- hands back jobs stranded in `claiming` by a worker that died between its BLMOVE and claim.lua.
-- Jobs that must end instead (out of attempts or stalls, or cancelled) are returned for reap.lua,
-- which needs their done:<id> keys in KEYS.
-- KEYS[1] ready  [2] jobs  [3] leases  [4] claiming  [5] seen  [6] elements
-- ARGV[1] now (ms)  [2] maxStalls  [3] claim grace (ms)
-- Returns { requeued ids, { id, attempt, ... } to end }
local kReady, kJobs, kLeases, kClaiming, kSeen, kElements = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local now, maxStalls, grace = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local requeued, ending = {}, {}

local expired = redis.call('ZRANGEBYSCORE', kLeases, '-inf', now, 'LIMIT', 0, 1000)
for i = 1, #expired do
  local id = expired[i]
  local m = redis.call('HGET', kJobs, id)
  if not m or string.sub(m, 1, 1) ~= 'p' then
    redis.call('ZREM', kLeases, id) -- a lease left without its job: nothing to recover
  else
    local at, sl = attempts_of(m), stalls_of(m) + 1
    m = with_stalls(m, sl)
    if bit.band(flags_of(m), 1) ~= 0 or at >= max_of(m) or sl > maxStalls then
      -- Stays processing with its expired lease until reap.lua ends it (it checks both again).
      redis.call('HSET', kJobs, id, m)
      ending[#ending + 1] = id
      ending[#ending + 1] = at
    else
      m = moved(m, 'q', 0)
      redis.call('HSET', kJobs, id, m)
      redis.call('ZREM', kLeases, id)
      redis.call('RPUSH', kReady, ready_element(redis.call('HGET', kElements, id), m))
      requeued[#requeued + 1] = id
    end
  end
end

-- An entry in `claiming` is normally activated within a round trip. One seen by an earlier scan
-- at least `grace` ms ago belongs to a dead worker: back to the head of the queue, no attempt
-- counted (its handler never ran). claim.lua's LREM makes a late activation find nothing.
local stuck = redis.call('LRANGE', kClaiming, 0, -1)
local present = {}
for i = 1, #stuck do
  local e = stuck[i]
  local id = element_id(e)
  present[id] = true
  local first = redis.call('HGET', kSeen, id)
  if not first then
    redis.call('HSET', kSeen, id, now)
  elseif now - tonumber(first) >= grace then
    redis.call('LREM', kClaiming, 1, e)
    redis.call('HDEL', kSeen, id)
    local m = redis.call('HGET', kJobs, id)
    if m and string.sub(m, 1, 1) == 'q' then
      redis.call('LPUSH', kReady, e)
      requeued[#requeued + 1] = id
    end
  end
end
local marks = redis.call('HKEYS', kSeen)
for i = 1, #marks do
  if not present[marks[i]] then redis.call('HDEL', kSeen, marks[i]) end
end
return { requeued, ending }
