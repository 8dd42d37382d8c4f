-- Saves a pass's progress, if the lease is still ours: file records, attachments and settings
-- files' records, then the cursor and the status. A worker that lost its lease cannot move the
-- cursor (the fence).
-- KEYS[1] = lease:<account>, KEYS[2] = files:<account>, KEYS[3] = cursors, KEYS[4] = status,
-- KEYS[5] = attachments:<account>, KEYS[6] = notes:<account> (each record's note display path),
-- KEYS[7] = settings:<account>
-- ARGV[1] = lease token, ARGV[2] = account, ARGV[3] = cursor ('' = keep),
-- ARGV[4] = status JSON ('' = keep), ARGV[5] = folder prefixes to forget (count p),
-- ARGV[6] = records to write (count w), ARGV[7] = records to drop (count d),
-- ARGV[8] = attachments to write (count a), ARGV[9] = attachments to drop (count x),
-- ARGV[10] = note paths to write (count n), ARGV[11] = note paths to drop (count m),
-- ARGV[12] = settings records to write (count s), ARGV[13] = settings records to drop (count r),
-- then p prefixes, w (path, record) pairs, a and n (path, display path) pairs, s (path, record)
-- pairs, d, x, m and r paths.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local i = 14
-- The forgotten folders as a set: each record's ancestor folders are looked up in it, so the cost
-- grows with the records and their depth, never with records times folders.
local forgotten, any = {}, false
for _ = 1, tonumber(ARGV[5]) do
  forgotten[ARGV[i]] = true
  any = true
  i = i + 1
end
local function forget_in(hash)
  for _, path in ipairs(redis.call('HKEYS', hash)) do
    local slash = string.find(path, '/', 2, true)
    while slash do
      if forgotten[string.sub(path, 1, slash)] then
        redis.call('HDEL', hash, path)
        break
      end
      slash = string.find(path, '/', slash + 1, true)
    end
  end
end
-- Records and their notes' paths; attachments and settings records are dropped one by one, with
-- the cursor.
if any then
  forget_in(KEYS[2])
  forget_in(KEYS[6])
end
-- Writes, then drops, to each hash in turn: records, attachments, note paths, settings records.
local hashes = {
  { KEYS[2], 6, 7 }, { KEYS[5], 8, 9 }, { KEYS[6], 10, 11 }, { KEYS[7], 12, 13 },
}
for _, hash in ipairs(hashes) do
  for _ = 1, tonumber(ARGV[hash[2]]) do
    redis.call('HSET', hash[1], ARGV[i], ARGV[i + 1])
    i = i + 2
  end
end
for _, hash in ipairs(hashes) do
  for _ = 1, tonumber(ARGV[hash[3]]) do
    redis.call('HDEL', hash[1], ARGV[i])
    i = i + 1
  end
end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
end
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[4], ARGV[2], ARGV[4])
end
return 1
