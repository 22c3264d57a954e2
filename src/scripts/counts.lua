-- counts: active jobs per state (terminal records are counted by the client with SCAN).
-- KEYS[1] ready  [2] jobs  [3] delayed  [4] leases  [5] claiming
-- Returns { queued, delayed, processing, failing }. O(delayed jobs): for observability.
local queued = redis.call('LLEN', KEYS[1]) + redis.call('LLEN', KEYS[5])
local processing = redis.call('ZCARD', KEYS[4])
local delayed, failing = 0, 0
local total = redis.call('ZCARD', KEYS[3])
for start = 0, total - 1, 1000 do
  local ids = redis.call('ZRANGE', KEYS[3], start, start + 999)
  if #ids > 0 then
    local metas = redis.call('HMGET', KEYS[2], unpack(ids))
    for i = 1, #metas do
      local st = metas[i] and string.sub(metas[i], 1, 1)
      if st == 'd' then delayed = delayed + 1 elseif st == 'f' then failing = failing + 1 end
    end
  end
end
return { queued, delayed, processing, failing }
