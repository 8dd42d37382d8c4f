-- Extends a lease and keeps its account out of the due range, if the lease is still ours.
-- KEYS[1] = lease:<account>, KEYS[2] = ready
-- ARGV[1] = lease token, ARGV[2] = lease TTL (ms), ARGV[3] = visible again at (ms), ARGV[4] = account
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], 'XX', ARGV[3], ARGV[4])
return 1
