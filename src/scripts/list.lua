-- list: a page of the jobs in one state, by stamp, O(log n + limit); terminal states show the
-- jobs in history only. Processing jobs (ZSET `leases`, their stamps in their records) are read
-- whole and sorted: they are bounded by the consumers' concurrency.
-- KEYS index jobs due leases meta
-- (index: the ZSET of the state; `leases` for processing)
-- ARGV[1] now (ms)  [2] state letter  [3] asc | desc  [4] after: stamp to continue after ('' from the start)
--      [5] limit
-- Returns { more (0/1), the page's last stamp ('' when empty), then 5 per job: id, stamp, record
--   without its body, error ('' unless failed/failing), due time or lease deadline ('' unless
--   delayed/failing/processing) }
local q = queue_of(tonumber(ARGV[1]))
local st, order, after, limit = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local lo = -math.huge
if TERMINAL[st] then lo = history_floor(q, st, K.index) end
local found, metas, scores
if st == 'p' then
  local from, to = -math.huge, math.huge
  if after ~= '' and order == 'asc' then from = tonumber(after) + 1 end
  if after ~= '' and order ~= 'asc' then to = tonumber(after) - 1 end
  found, metas, scores = processing_page(order, from, to, limit + 1)
elseif lo == math.huge then
  found = {}
elseif order == 'asc' then
  local min = lo
  if after ~= '' and tonumber(after) >= lo then min = '(' .. after end
  found = redis.call('ZRANGE', K.index, min, '+inf', 'BYSCORE', 'LIMIT', 0, limit + 1, 'WITHSCORES')
else
  local max = '+inf'
  if after ~= '' then max = '(' .. after end
  found = redis.call('ZRANGE', K.index, max, lo, 'BYSCORE', 'REV', 'LIMIT', 0, limit + 1, 'WITHSCORES')
end
local n = #found / 2
local out = { 0, '' }
if n > limit then
  out[1] = 1
  n = limit
end
if n == 0 then return out end
-- The cursor is the last stamp of the page, even when a record was missing.
out[2] = found[2 * n]
local ids = {}
for i = 1, n do ids[i] = found[2 * i - 1] end
if not metas then metas = redis.call('HMGET', K.jobs, unpack(ids)) end
if st == 'd' or st == 'f' then scores = redis.call('ZMSCORE', K.due, unpack(ids)) end
for i = 1, n do
  local m = metas[i]
  if m then
    out[#out + 1] = ids[i]
    out[#out + 1] = found[2 * i]
    out[#out + 1] = head_of(m)
    out[#out + 1] = ((st == 'e' or st == 'f') and has(m, F_OUTCOME) and body_of(m)) or ''
    out[#out + 1] = (scores and scores[i]) or ''
  end
end
return out
