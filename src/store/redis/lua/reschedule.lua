-- Gives an account back to the queue, due at a given time, if the lease is still ours: after a
-- failed pass (counted), a 429 (not counted), or a worker shutting down (due now).
-- KEYS[1] = lease:<account>, KEYS[2] = ready, KEYS[3] = failures, KEYS[4] = status
-- ARGV[1] = lease token, ARGV[2] = account, ARGV[3] = due at (ms), ARGV[4] = '1' to count a
-- failure, ARGV[5] = status JSON ('' = keep), ARGV[6] = wake channel ('' = wake nobody),
-- ARGV[7] = the shard (the wake-up's message)
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
if ARGV[4] == '1' then
  redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
end
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[4], ARGV[2], ARGV[5])
end
redis.call('ZADD', KEYS[2], 'XX', ARGV[3], ARGV[2])
if ARGV[6] ~= '' then
  redis.call('PUBLISH', ARGV[6], ARGV[7])
end
return 1
