-- Queues one pass for each account, all of one shard.
-- KEYS[1] = ready, KEYS[i] (i >= 2) = gen:<account i>
-- ARGV[1] = wake channel, ARGV[2] = now (ms), ARGV[3] = the shard (the wake-up's message),
-- ARGV[i + 2] = account i
--
-- `INCR gen` tells a pass already running that it missed a change. `ZADD NX` makes a new member
-- due now and leaves a queued one alone; `LT` would let any notification (the one our own
-- upload triggers included) cut a 429's Retry-After or a backoff short (docs/ARCHITECTURE.md §3).
local added = 0
for i = 2, #KEYS do
  redis.call('INCR', KEYS[i])
  added = added + redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[i + 2])
end
if added > 0 then
  redis.call('PUBLISH', ARGV[1], ARGV[3])
end
return added
