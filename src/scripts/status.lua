-- status: a job's record, active or terminal.
-- KEYS[1] jobs  [2] errors  [3] done:<id>
-- ARGV[1] id
-- Returns {} when unknown, else { state, createdAt, attempts, maxAttempts, body } where state is
-- q d p f (active; body: the last error while failing) or c e x (terminal; body: result or error)
local m = redis.call('HGET', KEYS[1], ARGV[1])
if m then
  local st, at, mx, _, cr, _, fl = unpack_meta(m)
  local body = ''
  if bit.band(fl, 4) ~= 0 then body = redis.call('HGET', KEYS[2], ARGV[1]) or '' end
  return { st, cr, at, mx, body }
end
local rec = redis.call('GET', KEYS[3])
if not rec then return {} end
local st, cr, at, mx, pos = string.match(rec, '^(%a)|(%d+)|(%d+)|(%d+)|()')
return { st, tonumber(cr), tonumber(at), tonumber(mx), string.sub(rec, pos) }
