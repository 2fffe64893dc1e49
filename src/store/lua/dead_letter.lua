-- Appends a dead letter unless its entity version was recorded before
-- (OrdinalStore::dead_letter).
-- KEYS[1] the service's dead-letter list, KEYS[2] its `:SEEN` set.
-- ARGV[1] the entity version, `<identity>@<modificationOrdinal>`,
-- ARGV[2] the dead letter as JSON.
-- Returns 1 when appended, 0 when that version was already listed.
if redis.call('SADD', KEYS[2], ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[1], ARGV[2])
  return 1
end
return 0
