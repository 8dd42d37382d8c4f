-- Gives the new layout the old layout's metrics, unless it has counts of its own already (a
-- process that ran on the new keys, or an earlier run of the migration): adding the old counts
-- twice would double every series.
-- KEYS[1] = the new metrics hash
-- ARGV = series, count, series, count…
-- Returns 1 when copied, 0 when the new hash was left as it was.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
for i = 1, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
return 1
