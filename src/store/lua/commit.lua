-- Commits the ordinal of a fully acknowledged batch (OrdinalStore::commit):
-- moves the ordinal forward only, drops both window counters by the batch,
-- and, given an owner, does so only while that owner holds the lease.
-- A stored ordinal that is not a number counts as 0.
-- KEYS[1] the ordinal key, KEYS[2] `<ordinal key>_SCHEDULED`,
-- KEYS[3] `<ordinal key>_UPDATED`, KEYS[4] the lease key.
-- ARGV[1] the batch's ordinal, ARGV[2] its entity count,
-- ARGV[3] the lease owner ('' for no lease check).
-- Returns the ordinal after the call, or -1 (nothing written) when the
-- lease is not ARGV[3]'s.
if ARGV[3] ~= '' and redis.call('GET', KEYS[4]) ~= ARGV[3] then
  return -1
end
local current = redis.call('GET', KEYS[1])
local current_n = tonumber(current or '0') or 0
local new_n = tonumber(ARGV[1])
if new_n > current_n or current == false then
  redis.call('SET', KEYS[1], ARGV[1])
  current_n = new_n
end
if tonumber(ARGV[2]) > 0 then
  redis.call('DECRBY', KEYS[2], ARGV[2])
  redis.call('DECRBY', KEYS[3], ARGV[2])
end
return current_n
