-- settle: ends a batch of attempts (each atomically with its notice), then leases up to `max`
-- ready jobs to the same worker: a busy consumer spends one round trip per batch.
-- KEYS[1] ready  [2] jobs  [3] payloads  [4] delayed  [5] leases  [6] waiters  [7] errors
--      [7 + i] done:<id of settlement i>
-- ARGV[1] now (ms)  [2] lease (ms)  [3] max  [4] worker id  [5] reply channel prefix
--      [6] control channel  [7] inline limit (bytes)
--      then 5 per settlement: type, id, attempt, n, body
--      type c complete (n: ttl, body: result) | e fail (n: ttl, body: error) | x cancel (n: ttl)
--         | r retry (n: delay, body: error) | l release (hand back unrun)
-- A settlement applies only while the job is processing in that very attempt (fencing). A job
-- whose cancel was requested ends cancelled whatever the settlement says.
-- Returns 6 fields per claimed job: id, payload, attempts, maxAttempts, resultTTL, createdAt
local k = { ready = KEYS[1], jobs = KEYS[2], payloads = KEYS[3], delayed = KEYS[4], leases = KEYS[5], waiters = KEYS[6], errors = KEYS[7] }
local now, leaseMs, max, worker = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local replyPrefix, inline = ARGV[5], tonumber(ARGV[7])
local head, wakeAt
local seen = {}

for i = 1, (#ARGV - 7) / 5 do
  local b = 7 + (i - 1) * 5
  local typ, id, attempt, n = ARGV[b + 1], ARGV[b + 2], tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4])
  local m = not seen[id] and redis.call('HGET', k.jobs, id)
  seen[id] = true
  if m then
    local st, at, mx, tl, cr, sl, fl = unpack_meta(m)
    if st == 'p' and at == attempt then
      local kDone = KEYS[7 + i]
      if bit.band(fl, 1) ~= 0 then
        local ttl = n
        if typ == 'r' or typ == 'l' then ttl = tl end
        finish(k, kDone, id, 'x', at, mx, cr, fl, '', ttl, replyPrefix, inline)
      elseif typ == 'c' then
        finish(k, kDone, id, 'c', at, mx, cr, fl, ARGV[b + 5], n, replyPrefix, inline)
      elseif typ == 'e' then
        finish(k, kDone, id, 'e', at, mx, cr, fl, ARGV[b + 5], n, replyPrefix, inline)
      elseif typ == 'x' then
        finish(k, kDone, id, 'x', at, mx, cr, fl, '', n, replyPrefix, inline)
      elseif typ == 'r' then
        redis.call('HSET', k.errors, id, ARGV[b + 5])
        redis.call('ZREM', k.leases, id)
        fl = bit.bor(fl, 4)
        if n > 0 then
          local due = now + n
          if not head then head = delayed_head(k.delayed) end
          if due < head then
            head = due
            wakeAt = due
          end
          redis.call('HSET', k.jobs, id, pack_meta('f', at, mx, tl, cr, sl, fl, ''))
          redis.call('ZADD', k.delayed, due, id)
        else
          redis.call('HSET', k.jobs, id, pack_meta('q', at, mx, tl, cr, sl, fl, ''))
          redis.call('RPUSH', k.ready, id)
        end
      elseif typ == 'l' then
        -- Handed back unrun: the attempt does not count, and the job goes first in line.
        redis.call('ZREM', k.leases, id)
        redis.call('HSET', k.jobs, id, pack_meta('q', at - 1, mx, tl, cr, sl, fl, ''))
        redis.call('LPUSH', k.ready, id)
      end
    end
  end
end
if wakeAt then redis.call('PUBLISH', ARGV[6], 'W' .. string.format('%.0f', wakeAt)) end

local out = {}
if max > 0 then
  promote(k.ready, k.jobs, k.delayed, now)
  local ids = redis.call('LPOP', k.ready, max)
  if ids then take(k.jobs, k.payloads, k.leases, ids, now, leaseMs, worker, out) end
end
return out
