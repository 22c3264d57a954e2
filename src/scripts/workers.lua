-- workers: the consumers whose heartbeat has not expired.
-- KEYS workers beats
-- ARGV[1] now (ms)
-- Returns 3 per worker: id, info (JSON), expiresAt
local live = redis.call('ZRANGEBYSCORE', K.beats, '(' .. ARGV[1], '+inf', 'WITHSCORES')
if #live == 0 then return {} end
local ids = {}
for i = 1, #live, 2 do ids[#ids + 1] = live[i] end
local infos = redis.call('HMGET', K.workers, unpack(ids))
local out = {}
for i = 1, #ids do
  if infos[i] then
    out[#out + 1] = ids[i]
    out[#out + 1] = infos[i]
    out[#out + 1] = live[2 * i]
  end
end
return out
