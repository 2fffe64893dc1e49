-- Deletes the lease only if it is the caller's (OrdinalStore::lease_release).
-- KEYS[1] the lease key.
-- ARGV[1] the caller's owner string.
-- Returns 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
return 0
