-- heartbeat: registers or refreshes a consumer in the worker registry until now + ttl (ttl 0:
-- removes it); drops a few expired entries on the way.
-- KEYS workers beats
-- ARGV[1] now (ms)  [2] ttl (ms)  [3] worker id  [4] its info (JSON)
local now, ttl, id = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
if ttl <= 0 then
  redis.call('HDEL', K.workers, id)
  redis.call('ZREM', K.beats, id)
  return 0
end
local gone = redis.call('ZRANGEBYSCORE', K.beats, '-inf', now, 'LIMIT', 0, 100)
if #gone > 0 then
  redis.call('HDEL', K.workers, unpack(gone))
  redis.call('ZREM', K.beats, unpack(gone))
end
redis.call('HSET', K.workers, id, ARGV[4])
redis.call('ZADD', K.beats, now + ttl, id)
return 1
