-- Resets a service unless the lease is held (OrdinalStore::reset_unless_leased):
-- a run in progress would commit over the reset.
-- KEYS[1] the lease key, KEYS[2..] the keys `reset` deletes.
-- No ARGV.
-- Returns the holder when the lease is held (nothing deleted), else nil
-- after deleting KEYS[2..].
local holder = redis.call('GET', KEYS[1])
if holder then
  return holder
end
redis.call('DEL', unpack(KEYS, 2))
return false
