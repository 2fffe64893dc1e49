-- Resets a service unless the lease is held (OrdinalStore::reset_unless_leased):
-- a run in progress would commit over the reset.
-- KEYS[1] the lease key, KEYS[2] the ordinal key, KEYS[3..] the other keys
-- `reset` deletes.
-- ARGV[1] the ordinal to set, or '' to delete it (import from 0).
-- Returns the holder when the lease is held (nothing changed), else nil
-- after deleting KEYS[3..] and setting or deleting KEYS[2].
local holder = redis.call('GET', KEYS[1])
if holder then
  return holder
end
redis.call('DEL', unpack(KEYS, 3))
if ARGV[1] == '' then
  redis.call('DEL', KEYS[2])
else
  redis.call('SET', KEYS[2], ARGV[1])
end
return false
