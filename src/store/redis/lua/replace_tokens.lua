-- Keeps refreshed tokens, if the lease is ours and nobody re-linked the account meanwhile.
-- KEYS[1] = lease:<account>, KEYS[2] = tokens
-- ARGV[1] = lease token, ARGV[2] = account, ARGV[3] = the sealed record the pass started from,
-- ARGV[4] = the new sealed record
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('HGET', KEYS[2], ARGV[2]) ~= ARGV[3] then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
return 1
