-- claim: promotes due delayed jobs, then leases up to `max` ready jobs to a worker. Also
-- activates the elements a BLMOVE moved to `claiming` for this worker (in ARGV): a job counts as
-- claimed only once this script ran, and one that never gets here is found by recover.lua.
-- KEYS[1] ready  [2] jobs  [3] elements  [4] delayed  [5] leases  [6] claiming
-- ARGV[1] now (ms)  [2] lease (ms)  [3] max  [4] worker id  [5...] elements moved by BLMOVE
-- Returns: due time of the earliest delayed job (-1: none), then 3 fields per claimed job:
--   id, payload, record (see _lib.lua)
local kReady, kJobs, kElements, kDelayed, kLeases, kClaiming = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local now, leaseMs, max, worker = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]

promote(kReady, kJobs, kElements, kDelayed, now)
local elements = {}
for i = 5, #ARGV do
  -- LREM tells whether the entry is still ours: the reaper may have handed it back meanwhile.
  if redis.call('LREM', kClaiming, 1, ARGV[i]) == 1 then elements[#elements + 1] = ARGV[i] end
end
local want = max - #elements
if want > 0 then
  local popped = redis.call('LPOP', kReady, want)
  if popped then
    for i = 1, #popped do elements[#elements + 1] = popped[i] end
  end
end
local head = delayed_head(kDelayed)
local out = { -1 }
if head ~= math.huge then out[1] = head end
take(kJobs, kElements, kLeases, elements, now, leaseMs, worker, out)
return out
