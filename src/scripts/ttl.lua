-- ttl: sets how long a terminal record is kept, from now.
-- KEYS[1] jobs  [2] done:<id>
-- ARGV[1] id  [2] ttl (ms)
-- Returns updated | not_terminal | not_found
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 'not_terminal' end
if redis.call('PEXPIRE', KEYS[2], ARGV[2]) == 1 then return 'updated' end
return 'not_found'
