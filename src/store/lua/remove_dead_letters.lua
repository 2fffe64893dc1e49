-- Removes dead letters (OrdinalStore::remove_dead_letters): the replayed
-- ones that were delivered, or those `clear --id` names. Each entry goes
-- with the entity bytes it kept and, unless its version is given as '',
-- its `:SEEN` member ('' for a duplicate entry whose version stays listed
-- in another entry).
-- KEYS[1] the service's dead-letter list, KEYS[2] its `:SEEN` set,
-- KEYS[3] its `:BYTES` counter.
-- ARGV triples: an entry's exact JSON, its entity version or '', the
-- entity bytes it keeps.
-- Returns how many entries were removed (an entry gone already, e.g.
-- cleared meanwhile, is skipped).
local removed = 0
for base = 1, #ARGV, 3 do
  if redis.call('LREM', KEYS[1], 1, ARGV[base]) == 1 then
    removed = removed + 1
    if ARGV[base + 1] ~= '' then
      redis.call('SREM', KEYS[2], ARGV[base + 1])
    end
    local size = tonumber(ARGV[base + 2])
    if size > 0 then
      redis.call('DECRBY', KEYS[3], size)
    end
  end
end
if redis.call('LLEN', KEYS[1]) == 0 or (tonumber(redis.call('GET', KEYS[3]) or '0') or 0) <= 0 then
  redis.call('DEL', KEYS[3])
end
return removed
