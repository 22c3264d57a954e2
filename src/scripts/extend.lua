-- extend: the worker's heartbeat. Pushes the lease deadline of the jobs it still holds.
-- KEYS jobs leases
-- ARGV[1] now (ms)  [2] lease (ms)  [3] worker id  [4...] job ids
-- Returns { ids no longer held by this worker, held ids whose cancel was requested }
local deadline = tonumber(ARGV[1]) + tonumber(ARGV[2])
local worker = ARGV[3]
local ids = {}
for i = 4, #ARGV do ids[#ids + 1] = ARGV[i] end
local metas = redis.call('HMGET', K.jobs, unpack(ids))
local lost, aborted, leases = {}, {}, {}
for i = 1, #ids do
  local m = metas[i]
  if m and st_of(m) == 'p' and worker_of(m) == worker then
    leases[#leases + 1] = deadline
    leases[#leases + 1] = ids[i]
    if has(m, F_CANCEL) then aborted[#aborted + 1] = ids[i] end
  else
    lost[#lost + 1] = ids[i]
  end
end
if #leases > 0 then redis.call('ZADD', K.leases, 'XX', unpack(leases)) end
return { lost, aborted }
