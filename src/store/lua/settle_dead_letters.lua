-- Settles dead-letter entries (OrdinalStore::settle_dead_letters) after a
-- replay or for `clear --id`: 'remove' takes an entry out with its
-- `:SEEN` member and the entity bytes it kept; 'duplicate' takes it out
-- but leaves the `:SEEN` member to another entry of its version (a
-- `reset` can list a version twice); 'keep' leaves the entry and makes
-- sure its version is in `:SEEN` (a `reset` deletes the set), so a
-- version that failed again is listed once, now and later.
-- KEYS[1] the service's dead-letter list, KEYS[2] its `:SEEN` set,
-- KEYS[3] its `:BYTES` counter.
-- ARGV quadruples: 'remove' | 'duplicate' | 'keep', an entry's exact
-- JSON, its entity version, the entity bytes it keeps.
-- Returns how many entries were removed (an entry gone already, e.g.
-- cleared meanwhile, is skipped, and a 'keep' of one marks nothing).
local removed = 0
for base = 1, #ARGV, 4 do
  local op, body, version = ARGV[base], ARGV[base + 1], ARGV[base + 2]
  if op == 'keep' then
    if redis.call('LPOS', KEYS[1], body) then
      redis.call('SADD', KEYS[2], version)
    end
  elseif redis.call('LREM', KEYS[1], 1, body) == 1 then
    removed = removed + 1
    if op == 'remove' then
      redis.call('SREM', KEYS[2], version)
    end
    local size = tonumber(ARGV[base + 3])
    if size > 0 then
      redis.call('DECRBY', KEYS[3], size)
    end
  end
end
if redis.call('LLEN', KEYS[1]) == 0 or (tonumber(redis.call('GET', KEYS[3]) or '0') or 0) <= 0 then
  redis.call('DEL', KEYS[3])
end
return removed
