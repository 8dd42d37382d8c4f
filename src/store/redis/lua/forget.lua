-- Everything kept for one account, gone in one step.
-- KEYS = tokens, cursors, ready, gen:<account>, lease:<account>, names, status, links,
-- files:<account>, failures, retries, attachments:<account>, notes:<account>,
-- settings:<account>;
-- ARGV[1] = account
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('DEL', KEYS[4], KEYS[5], KEYS[9], KEYS[12], KEYS[13], KEYS[14])
redis.call('HDEL', KEYS[6], ARGV[1])
redis.call('HDEL', KEYS[7], ARGV[1])
redis.call('HDEL', KEYS[8], ARGV[1])
redis.call('HDEL', KEYS[10], ARGV[1])
redis.call('ZREM', KEYS[11], ARGV[1])
return 1
