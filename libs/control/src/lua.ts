// Lua scripts run atomically in Redis: the only way two coordinator replicas can claim
// workers or move a job's state without a race.

/**
 * Claims `count` alive workers for a job: first those already holding the job (a claim
 * whose coordinator died before it recorded the run), then idle ones, in id order.
 * All or nothing. KEYS: none (the layout is derived from ARGV[1], the prefix).
 * ARGV: prefix, jobId, count. Returns the claimed ids in rank order, or {} if too few.
 */
export const CLAIM_WORKERS = `
local prefix, jobId, n = ARGV[1], ARGV[2], tonumber(ARGV[3])
local ids = redis.call('SMEMBERS', prefix .. 'workers')
table.sort(ids)
local mine, idle = {}, {}
for _, id in ipairs(ids) do
  local wk = prefix .. 'worker:' .. id
  if redis.call('EXISTS', wk .. ':alive') == 1 then
    local f = redis.call('HMGET', wk, 'state', 'jobId')
    if f[1] == 'busy' and f[2] == jobId then mine[#mine + 1] = id
    elseif f[1] == 'idle' then idle[#idle + 1] = id end
  end
end
local picked = {}
for _, id in ipairs(mine) do if #picked < n then picked[#picked + 1] = id end end
for _, id in ipairs(idle) do if #picked < n then picked[#picked + 1] = id end end
if #picked < n then return {} end
for rank, id in ipairs(picked) do
  redis.call('HSET', prefix .. 'worker:' .. id, 'state', 'busy', 'jobId', jobId, 'rank', rank - 1)
end
return picked
`;

/**
 * A heartbeat, only for a worker still in the registry (one forgotten after a long loss
 * must register again, not leave a half hash behind). ARGV: prefix, id, now, ttlMs.
 * Returns 1, or 0 when the worker is not registered.
 */
export const HEARTBEAT = `
local prefix, id, now, ttl = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
if redis.call('SISMEMBER', prefix .. 'workers', id) == 0 then return 0 end
redis.call('SET', prefix .. 'worker:' .. id .. ':alive', now, 'PX', ttl)
redis.call('HSET', prefix .. 'worker:' .. id, 'lastSeen', now)
return 1
`;

/**
 * Forgets workers whose heartbeat key has expired and whose last heartbeat is older than
 * a cutoff; a worker that beats again in between is kept. ARGV: prefix, cutoff (ms since
 * the epoch), and optionally ids to consider (all registered workers when none).
 * Returns the forgotten ids.
 */
export const FORGET_LOST_WORKERS = `
local prefix, cutoff = ARGV[1], tonumber(ARGV[2])
local ids = {}
if #ARGV > 2 then for i = 3, #ARGV do ids[#ids + 1] = ARGV[i] end
else ids = redis.call('SMEMBERS', prefix .. 'workers') end
local gone = {}
for _, id in ipairs(ids) do
  local wk = prefix .. 'worker:' .. id
  local seen = tonumber(redis.call('HGET', wk, 'lastSeen') or '0') or 0
  if redis.call('SISMEMBER', prefix .. 'workers', id) == 1 and redis.call('EXISTS', wk .. ':alive') == 0 and seen < cutoff then
    redis.call('SREM', prefix .. 'workers', id)
    redis.call('DEL', wk, wk .. ':inbox')
    gone[#gone + 1] = id
  end
end
return gone
`;

/** Sets idle the given workers still holding jobId. ARGV: prefix, jobId, ids... Returns how many. */
export const RELEASE_WORKERS = `
local prefix, jobId, released = ARGV[1], ARGV[2], 0
for i = 3, #ARGV do
  local wk = prefix .. 'worker:' .. ARGV[i]
  if redis.call('HGET', wk, 'jobId') == jobId then
    redis.call('HSET', wk, 'state', 'idle', 'jobId', '', 'rank', '')
    released = released + 1
  end
end
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
 * job id, then field/value pairs to set ('' value deletes the field).
 * Returns {1, old} on success, {0, current} otherwise ({0, false} when the job is missing).
 */
export const TRANSITION_JOB = `
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur then return {0, false} end
local ok = false
for s in string.gmatch(ARGV[1], '[^,]+') do if s == cur then ok = true end end
if not ok then return {0, cur} end
for i = 3, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], ARGV[i]) else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
if #KEYS > 1 then
  for k = 3, #KEYS do redis.call('SREM', KEYS[k], ARGV[2]) end
  redis.call('SADD', KEYS[2], ARGV[2])
end
return {1, cur}
`;

/**
 * Pushes commands to inboxes and patches the job, only if its state is ARGV[1]: the
 * assignments of a run go out together with `state = running`, or not at all.
 * KEYS[1] job hash, then ARGV[3] state-set keys (0, or the new state's set first and every
 * other state's after it, as TRANSITION_JOB), then one inbox key per command.
 * ARGV: expected state, job id, state-set key count, field count n, n field/value pairs,
 * then the payloads in inbox order. Returns {1, state} or {0, current state or false}.
 */
export const DISPATCH_IF_STATE = `
local cur = redis.call('HGET', KEYS[1], 'state')
if cur ~= ARGV[1] then return {0, cur} end
local sets = tonumber(ARGV[3])
local i = 5
for _ = 1, tonumber(ARGV[4]) do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]); i = i + 2 end
if sets > 0 then
  for k = 3, 1 + sets do redis.call('SREM', KEYS[k], ARGV[2]) end
  redis.call('SADD', KEYS[2], ARGV[2])
end
local inbox = 2 + sets
while i <= #ARGV do redis.call('RPUSH', KEYS[inbox], ARGV[i]); i = i + 1; inbox = inbox + 1 end
return {1, cur}
`;
