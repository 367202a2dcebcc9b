// Lua scripts run atomically in Redis: the only way two coordinator replicas can claim
// workers or move a job's state without a race.

/**
 * Claims between min and max alive workers for a job: first those already holding it (a
 * claim whose coordinator died before it recorded the run), then idle ones, each in the
 * order given (id order); all or nothing below min. The candidates are the job's claim set
 * and the idle set, read by the caller: a claim costs O(idle), not O(registered). Entries
 * that no longer qualify are dropped from both sets on the way (the sets are an index;
 * the worker hash is the truth).
 * KEYS: the registry set, the idle set, the job's claim set, then each candidate's hash and
 * alive key. ARGV: jobId, min, max, the candidates' ids. Returns the ids in rank order, or {}.
 */
export const CLAIM_WORKERS = `
local jobId, lo, hi = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local mine, idle = {}, {}
for i = 4, #ARGV do
  local id, wk, alive = ARGV[i], KEYS[2 * i - 4], KEYS[2 * i - 3]
  local f = redis.call('HMGET', wk, 'state', 'jobId')
  local usable = redis.call('SISMEMBER', KEYS[1], id) == 1 and redis.call('EXISTS', alive) == 1
  if f[1] == 'busy' and f[2] == jobId then
    if usable then mine[#mine + 1] = i end
  else
    redis.call('SREM', KEYS[3], id)
  end
  if f[1] == 'idle' then
    if usable then idle[#idle + 1] = i end
  else
    redis.call('SREM', KEYS[2], id)
  end
end
local picked = {}
for _, i in ipairs(mine) do if #picked < hi then picked[#picked + 1] = i end end
for _, i in ipairs(idle) do if #picked < hi then picked[#picked + 1] = i end end
if #picked < lo then return {} end
local ids = {}
for rank, i in ipairs(picked) do
  redis.call('HSET', KEYS[2 * i - 4], 'state', 'busy', 'jobId', jobId, 'rank', rank - 1)
  redis.call('SREM', KEYS[2], ARGV[i])
  redis.call('SADD', KEYS[3], ARGV[i])
  ids[rank] = ARGV[i]
end
return ids
`;

/**
 * A heartbeat, only for a worker still in the registry (one forgotten after a long loss
 * must register again, not leave a half hash behind). KEYS: the registry set, the worker's
 * alive key, its hash. ARGV: id, now, ttlMs. Returns 1, or 0 when the worker is not registered.
 */
export const HEARTBEAT = `
local id, now, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
if redis.call('SISMEMBER', KEYS[1], id) == 0 then return 0 end
redis.call('SET', KEYS[2], now, 'PX', ttl)
redis.call('HSET', KEYS[3], 'lastSeen', now)
return 1
`;

/**
 * Forgets workers whose heartbeat key has expired and whose last heartbeat is older than
 * a cutoff; a worker that beats again in between is kept. KEYS: the registry set, the idle
 * set, then for each candidate its hash, alive key and inbox. ARGV: cutoff (ms since the
 * epoch), then the candidates' ids. Returns the forgotten ids.
 */
export const FORGET_LOST_WORKERS = `
local cutoff = tonumber(ARGV[1])
local gone = {}
for i = 2, #ARGV do
  local id, wk, alive, inbox = ARGV[i], KEYS[3 * i - 3], KEYS[3 * i - 2], KEYS[3 * i - 1]
  local seen = tonumber(redis.call('HGET', wk, 'lastSeen') or '0') or 0
  if redis.call('SISMEMBER', KEYS[1], id) == 1 and redis.call('EXISTS', alive) == 0 and seen < cutoff then
    redis.call('SREM', KEYS[1], id)
    redis.call('SREM', KEYS[2], id)
    redis.call('DEL', wk, inbox)
    gone[#gone + 1] = id
  end
end
return gone
`;

/**
 * Sets idle the given workers still holding jobId and, when any was, publishes on the
 * workers-freed channel. KEYS: the idle set, the job's claim set, then the workers' hashes.
 * ARGV: jobId, the channel, then the workers' ids. Returns how many.
 */
export const RELEASE_WORKERS = `
local jobId, released = ARGV[1], 0
for i = 3, #KEYS do
  if redis.call('HGET', KEYS[i], 'jobId') == jobId then
    redis.call('HSET', KEYS[i], 'state', 'idle', 'jobId', '', 'rank', '')
    redis.call('SADD', KEYS[1], ARGV[i])
    redis.call('SREM', KEYS[2], ARGV[i])
    released = released + 1
  end
end
if released > 0 then redis.call('PUBLISH', ARGV[2], jobId) end
return released
`;

/**
 * Builds the state sets from the job records, a batch of jobs at a time (the migration of
 * records written before the sets existed; idempotent). KEYS[1..n] the state sets, in the
 * order of ARGV[1] (comma-separated states); KEYS[n+1..] job hashes, ARGV[2..] their ids.
 * Each job ends in its state's set only (in none when its record is gone). Returns how many
 * jobs were found.
 */
export const INDEX_JOB_STATES = `
local states = {}
for s in string.gmatch(ARGV[1], '[^,]+') do states[#states + 1] = s end
local n, found = #states, 0
for j = 2, #ARGV do
  local cur = redis.call('HGET', KEYS[n + j - 1], 'state')
  if cur then found = found + 1 end
  for k = 1, n do
    if states[k] == cur then redis.call('SADD', KEYS[k], ARGV[j]) else redis.call('SREM', KEYS[k], ARGV[j]) end
  end
end
return found
`;

/**
 * Compare-and-set of a job's state. KEYS[1] job hash; when the patch sets `state`, KEYS[2]
 * the new state's id set (`jobs:state:<s>`) and KEYS[3..] every other state's set, so the
 * job moves between them in the same step. ARGV: comma-separated allowed current states,
 * job id, the number g of guard pairs, g field/value pairs the record must hold ('' = the
 * field is absent: the fencing token of a run, e.g. runId or membershipEpoch), then
 * field/value pairs to set ('' value deletes the field).
 * Returns {1, old} on success, {0, current} otherwise ({0, false} when the job is missing).
 */
export const TRANSITION_JOB = `
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur then return {0, false} end
local ok = false
for s in string.gmatch(ARGV[1], '[^,]+') do if s == cur then ok = true end end
if not ok then return {0, cur} end
local first = 4 + 2 * tonumber(ARGV[3])
for i = 4, first - 1, 2 do
  if (redis.call('HGET', KEYS[1], ARGV[i]) or '') ~= ARGV[i + 1] then return {0, cur} end
end
for i = first, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], ARGV[i]) else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
if #KEYS > 1 then
  for k = 3, #KEYS do redis.call('SREM', KEYS[k], ARGV[2]) end
  redis.call('SADD', KEYS[2], ARGV[2])
end
return {1, cur}
`;

/**
 * Pushes commands to inboxes and patches the job, only if its state is ARGV[1] (and it holds
 * the guard fields): the assignments of a run go out together with `state = running`, or not
 * at all. KEYS[1] job hash, then ARGV[3] state-set keys (0, or the new state's set first and
 * every other state's after it, as TRANSITION_JOB), then one inbox key per command.
 * ARGV: expected state, job id, state-set key count, guard count g, g field/value pairs (as
 * TRANSITION_JOB), field count n, n field/value pairs, then the payloads in inbox order.
 * Returns {1, state} or {0, current state or false}.
 */
export const DISPATCH_IF_STATE = `
local cur = redis.call('HGET', KEYS[1], 'state')
if cur ~= ARGV[1] then return {0, cur} end
local sets = tonumber(ARGV[3])
local i = 5
for _ = 1, tonumber(ARGV[4]) do
  if (redis.call('HGET', KEYS[1], ARGV[i]) or '') ~= ARGV[i + 1] then return {0, cur} end
  i = i + 2
end
local n = tonumber(ARGV[i])
i = i + 1
for _ = 1, n do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]); i = i + 2 end
if sets > 0 then
  for k = 3, 1 + sets do redis.call('SREM', KEYS[k], ARGV[2]) end
  redis.call('SADD', KEYS[2], ARGV[2])
end
local inbox = 2 + sets
while i <= #ARGV do redis.call('RPUSH', KEYS[inbox], ARGV[i]); i = i + 1; inbox = inbox + 1 end
return {1, cur}
`;
