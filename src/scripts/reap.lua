-- reap: ends the stalled jobs recover.lua could not requeue: failed, or cancelled when a cancel
-- was requested. Each only if it is still processing in that attempt with its lease expired.
-- KEYS[1] jobs  [2] elements  [3] leases  [4] waiters  [5] errors  [5 + i] done:<id of job i>
-- ARGV[1] now (ms)  [2] reply channel prefix  [3] inline limit (bytes)  [4] error of failed jobs
--      then 2 per job: id, attempt
-- Returns the ids that ended failed.
local k = { jobs = KEYS[1], elements = KEYS[2], leases = KEYS[3], waiters = KEYS[4], errors = KEYS[5] }
local now, replyPrefix, inline, err = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), ARGV[4]
local failed, batch, seen = {}, new_batch(), {}
for i = 1, (#ARGV - 4) / 2 do
  local id, attempt = ARGV[3 + 2 * i], tonumber(ARGV[4 + 2 * i])
  local m = not seen[id] and redis.call('HGET', k.jobs, id)
  seen[id] = true
  if m and string.sub(m, 1, 1) == 'p' and attempts_of(m) == attempt then
    local lease = tonumber(redis.call('ZSCORE', k.leases, id))
    if lease and lease <= now then
      if bit.band(flags_of(m), 1) ~= 0 then
        finish(KEYS[5 + i], id, m, 'x', '', ttl_of(m), batch)
      else
        finish(KEYS[5 + i], id, m, 'e', err, ttl_of(m), batch)
        failed[#failed + 1] = id
      end
    end
  end
end
flush(k, batch, replyPrefix, inline)
return failed
