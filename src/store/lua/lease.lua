-- Takes or extends the import lease (OrdinalStore::lease_acquire): takes it
-- when free or extends it when the caller already holds it; given the owner
-- string of a holder that is provably gone (judged by the caller, who can
-- see its processes), takes it from exactly that holder.
-- KEYS[1] the lease key.
-- ARGV[1] the caller's owner string, ARGV[2] the time to live in ms,
-- ARGV[3] the gone holder's owner string ('' for none).
-- Returns {1, ''} when held, {2, earlier holder} when taken back, else
-- {0, holder} (nothing written).
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {1, ''}
end
if ARGV[3] ~= '' and holder == ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {2, holder}
end
return {0, holder}
