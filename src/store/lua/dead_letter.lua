-- Appends a dead letter unless its entity version was recorded before
-- (OrdinalStore::dead_letter), with its entity while the service's list
-- keeps fewer entity bytes than its bound, else without.
-- KEYS[1] the service's dead-letter list, KEYS[2] its `:SEEN` set,
-- KEYS[3] its `:BYTES` counter (entity bytes the list keeps).
-- ARGV[1] the entity version, `<identity>@<modificationOrdinal>`,
-- ARGV[2] the dead letter as JSON with its entity ('' when it cannot be
-- kept at all), ARGV[3] the dead letter as JSON without its entity,
-- ARGV[4] the entity's size in bytes, ARGV[5] the bound in bytes.
-- Returns 0 when that version was already listed, 1 when appended with
-- its entity, 2 when appended without it.
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then
  return 0
end
-- A list deleted by hand leaves its counter behind: start again from 0.
if redis.call('LLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[3])
end
local used = tonumber(redis.call('GET', KEYS[3]) or '0') or 0
local size = tonumber(ARGV[4])
if ARGV[2] ~= '' and used + size <= tonumber(ARGV[5]) then
  redis.call('RPUSH', KEYS[1], ARGV[2])
  redis.call('INCRBY', KEYS[3], size)
  return 1
end
redis.call('RPUSH', KEYS[1], ARGV[3])
return 2
