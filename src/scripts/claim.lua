-- claim: promotes due delayed jobs, then leases up to `max` ready jobs to a worker (none while
-- the queue is paused). Also activates the elements a BLMOVE moved to `claiming` for this worker
-- (in ARGV), paused or not: a job counts as claimed only once this script ran, and one that
-- never gets here is found by recover.lua.
-- KEYS jobs payloads ready held claiming due leases queued delayed failing meta
-- ARGV[1] now (ms)  [2] lease (ms)  [3] max  [4] worker id  [5...] elements moved by BLMOVE
-- Returns: due time of the earliest delayed job (-1: none, or the queue is paused), then 3 fields
--   per claimed job: id, payload, record (see _lib.lua)
local q = queue_of(tonumber(ARGV[1]))
local leaseMs, max, worker = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]

local elements = {}
for i = 5, #ARGV do
  -- LREM tells whether the entry is still ours: the reaper may have handed it back meanwhile.
  if redis.call('LREM', K.claiming, '1', ARGV[i]) == 1 then elements[#elements + 1] = ARGV[i] end
end
local out = { -1 }
if not paused(q) then
  local head = promote(q)
  apply_moves(q) -- the promoted jobs are queued before a claim takes them
  local want = max - #elements
  if want > 0 then
    local popped = redis.call('LPOP', K.ready, num(want))
    if popped then
      for i = 1, #popped do elements[#elements + 1] = popped[i] end
    end
  end
  if head ~= math.huge then out[1] = head end
end
take(q, elements, leaseMs, worker, out)
save(q)
return out
