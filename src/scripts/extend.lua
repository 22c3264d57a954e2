-- extend: the worker's heartbeat. Pushes the lease deadline of the jobs it still holds.
-- KEYS[1] jobs  [2] leases
-- ARGV[1] now (ms)  [2] lease (ms)  [3] worker id  [4...] job ids
-- Returns { ids no longer held by this worker, held ids whose cancel was requested }
local kJobs, kLeases = KEYS[1], KEYS[2]
local deadline = tonumber(ARGV[1]) + tonumber(ARGV[2])
local worker = ARGV[3]
local lost, aborted, leases = {}, {}, {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local m = redis.call('HGET', kJobs, id)
  local st, fl, wk
  if m then
    local _
    st, _, _, _, _, _, fl, wk = unpack_meta(m)
  end
  if st == 'p' and wk == worker then
    leases[#leases + 1] = deadline
    leases[#leases + 1] = id
    if bit.band(fl, 1) ~= 0 then aborted[#aborted + 1] = id end
  else
    lost[#lost + 1] = id
  end
end
if #leases > 0 then redis.call('ZADD', kLeases, 'XX', unpack(leases)) end
return { lost, aborted }
