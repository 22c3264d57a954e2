-- status: a job's record, active or terminal.
-- KEYS[1] jobs  [2] errors  [3] done:<id>
-- ARGV[1] id
-- Returns {} when unknown; { 'A', active record, last error or '' } for an active job;
-- { 'T', terminal record } for a finished one (formats in _lib.lua)
local m = redis.call('HGET', KEYS[1], ARGV[1])
if m then
  local err = ''
  if bit.band(flags_of(m), 4) ~= 0 then err = redis.call('HGET', KEYS[2], ARGV[1]) or '' end
  return { 'A', m, err }
end
local rec = redis.call('GET', KEYS[3])
if not rec then return {} end
return { 'T', rec }
