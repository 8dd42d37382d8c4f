-- Ends a successful pass, if the lease is still ours: the account leaves the queue, or is due
-- again at once when a notification arrived during the pass. Notes waiting for a retry keep the
-- account in `retries` until the soonest is due.
-- KEYS[1] = lease:<account>, KEYS[2] = ready, KEYS[3] = gen:<account>, KEYS[4] = failures,
-- KEYS[5] = status, KEYS[6] = retries
-- ARGV[1] = lease token, ARGV[2] = account, ARGV[3] = generation seen at the claim,
-- ARGV[4] = now (ms), ARGV[5] = status JSON, ARGV[6] = wake channel,
-- ARGV[7] = when the soonest note retry is due (ms; '' = none), ARGV[8] = the shard (the
-- wake-up's message)
-- Returns -1 (lease lost), 0 (done) or 1 (again).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[4], ARGV[2])
redis.call('HSET', KEYS[5], ARGV[2], ARGV[5])
if ARGV[7] ~= '' then
  redis.call('ZADD', KEYS[6], ARGV[7], ARGV[2])
else
  redis.call('ZREM', KEYS[6], ARGV[2])
end
if (redis.call('GET', KEYS[3]) or '0') ~= ARGV[3] then
  redis.call('ZADD', KEYS[2], 'XX', ARGV[4], ARGV[2])
  redis.call('PUBLISH', ARGV[6], ARGV[8])
  return 1
end
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[3])
return 0
