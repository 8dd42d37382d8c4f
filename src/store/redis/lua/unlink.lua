-- Dropbox refused the account's tokens for good: forget the tokens, cursor, records, attachments
-- and settings records and take the account off the queue, keeping its name, link id and status
-- so its page can say what happened. Only if the lease is ours and the tokens are the ones the
-- pass used: a person who connected again meanwhile keeps the new link (the account is then
-- simply due again).
-- KEYS[1] = lease:<account>, KEYS[2] = tokens, KEYS[3] = cursors, KEYS[4] = files:<account>,
-- KEYS[5] = ready, KEYS[6] = gen:<account>, KEYS[7] = failures, KEYS[8] = status,
-- KEYS[9] = retries, KEYS[10] = attachments:<account>, KEYS[11] = notes:<account>,
-- KEYS[12] = settings:<account>
-- ARGV[1] = lease token, ARGV[2] = account, ARGV[3] = the sealed tokens the pass used,
-- ARGV[4] = status JSON, ARGV[5] = now (ms), ARGV[6] = wake channel, ARGV[7] = the shard (the
-- wake-up's message)
-- Returns -1 (lease lost), 0 (re-linked meanwhile; due again) or 1 (unlinked).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
redis.call('DEL', KEYS[1])
if redis.call('HGET', KEYS[2], ARGV[2]) ~= ARGV[3] then
  redis.call('ZADD', KEYS[5], 'XX', ARGV[5], ARGV[2])
  redis.call('PUBLISH', ARGV[6], ARGV[7])
  return 0
end
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[2])
redis.call('DEL', KEYS[4], KEYS[6], KEYS[10], KEYS[11], KEYS[12])
redis.call('ZREM', KEYS[5], ARGV[2])
redis.call('HDEL', KEYS[7], ARGV[2])
redis.call('ZREM', KEYS[9], ARGV[2])
redis.call('HSET', KEYS[8], ARGV[2], ARGV[4])
return 1
