-- Takes the shard's first due account whose lease is free, after queueing the accounts whose
-- note retries are due.
-- KEYS[1] = ready, KEYS[2] = tokens, KEYS[3] = cursors, KEYS[4] = failures, KEYS[5] = status,
-- KEYS[6] = retries, all of one shard
-- ARGV[1] = now (ms), ARGV[2] = lease TTL (ms), ARGV[3] = lease token, ARGV[4] = the shard's
-- key prefix, ARGV[5] = how many due members to look at
--
-- Claimed: {account, sealed tokens, cursor|nil, generation, failures, status|nil, due at}.
-- Nothing due: {} or {member, score} of the soonest member of ready or retries.
--
-- The accounts' own keys (gen:, lease:) are built here from the shard's prefix, so they cannot
-- be declared in KEYS. Redis Cluster allows it because the prefix carries the shard's hash tag:
-- they are in the same slot as KEYS (src/store/redis/keys.rs).
local now = tonumber(ARGV[1])
local visible_at = now + tonumber(ARGV[2])
-- A due retry joins the queue due now; an account queued already keeps its place and due time
-- (a backoff or a rate-limit wait is not cut short).
for _, account in ipairs(redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', now, 'LIMIT', 0, tonumber(ARGV[5]))) do
  redis.call('ZREM', KEYS[6], account)
  redis.call('ZADD', KEYS[1], 'NX', now, account)
end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[5]))
for _, account in ipairs(due) do
  local generation = ARGV[4] .. 'gen:' .. account
  local lease = ARGV[4] .. 'lease:' .. account
  local sealed = redis.call('HGET', KEYS[2], account)
  if not sealed then
    -- Not linked (a webhook for an account that never connected, or one that unlinked).
    redis.call('ZREM', KEYS[1], account)
    redis.call('DEL', generation)
  elseif redis.call('SET', lease, ARGV[3], 'NX', 'PX', ARGV[2]) then
    local due_at = redis.call('ZSCORE', KEYS[1], account)
    -- Out of the due range until the lease could expire; the heartbeat keeps it there.
    redis.call('ZADD', KEYS[1], 'XX', visible_at, account)
    return {
      account,
      sealed,
      redis.call('HGET', KEYS[3], account) or false,
      redis.call('GET', generation) or '0',
      redis.call('HGET', KEYS[4], account) or '0',
      redis.call('HGET', KEYS[5], account) or false,
      due_at,
    }
  else
    -- Held by a live worker whose renewal is late, or by one that died: look again exactly
    -- when the lease runs out, not a whole lease later.
    local left = redis.call('PTTL', lease)
    redis.call('ZADD', KEYS[1], 'XX', now + math.max(left, 0), account)
  end
end
local soonest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local retry = redis.call('ZRANGE', KEYS[6], 0, 0, 'WITHSCORES')
if retry[2] and (not soonest[2] or tonumber(retry[2]) < tonumber(soonest[2])) then
  return retry
end
return soonest
