/**
 * The Lua scripts of redis-sessions.ts: each runs atomically in Redis, so the limits
 * (MAX_SESSIONS, MAX_PARTICIPANTS_PER_SESSION, MAX_SESSIONS_PER_ADDRESS) hold across every node
 * however their joins interleave. ARGV[1] is the key prefix; keys are built inside the scripts
 * (a standalone Redis or a single shard: Redis Cluster's key-slot rules are not followed).
 *
 * Keys (P = prefix):
 *   P sessions                 SET of session ids
 *   P s:<sid>                  HASH createdBy, seq (join/leave order), tseq (track recency)
 *   P s:<sid>:p                HASH participant id -> JSON {name?, role, node, present 0|1, j}
 *   P s:<sid>:present          SET of present participant ids
 *   P s:<sid>:left             ZSET participant ids that left, by leave order
 *   P t:<sid>:<pid>            ZSET track ids by recency;  P t:<sid>:<pid>:<track>  LIST of JSON samples
 *   P addr:<address>           SET of sessions that address created
 *   P expiring                 ZSET empty sessions by the time (ms, Redis clock) they are forgotten
 *   P node:<node>              a node's liveness key (PX 3 x CLUSTER_HEARTBEAT_MS)
 *   P nodes                    SET of node ids that have held participants
 *   P np:<node>                SET of "<sid>\n<pid>" present on that node
 */

const LIBRARY = `
local P = ARGV[1]
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function node_alive(node)
  return redis.call('EXISTS', P .. 'node:' .. node) == 1
end
local function drop_timelines(sid, pid)
  local tk = P .. 't:' .. sid .. ':' .. pid
  for _, tr in ipairs(redis.call('ZRANGE', tk, 0, -1)) do redis.call('DEL', tk .. ':' .. tr) end
  redis.call('DEL', tk)
end
local function drop_session(sid)
  local sk = P .. 's:' .. sid
  local created = redis.call('HGET', sk, 'createdBy')
  local all = redis.call('HGETALL', sk .. ':p')
  for i = 1, #all, 2 do
    local rec = cjson.decode(all[i + 1])
    if rec.present == 1 then redis.call('SREM', P .. 'np:' .. rec.node, sid .. '\\n' .. all[i]) end
    drop_timelines(sid, all[i])
  end
  redis.call('DEL', sk, sk .. ':p', sk .. ':present', sk .. ':left')
  redis.call('SREM', P .. 'sessions', sid)
  redis.call('ZREM', P .. 'expiring', sid)
  if created then redis.call('SREM', P .. 'addr:' .. created, sid) end
end
local function purge_expired(now)
  for _, sid in ipairs(redis.call('ZRANGEBYSCORE', P .. 'expiring', '-inf', now, 'LIMIT', 0, 100)) do drop_session(sid) end
end
local function forget_old_leavers(sid, keep)
  local sk = P .. 's:' .. sid
  local n = redis.call('ZCARD', sk .. ':left')
  if n <= keep then return end
  for _, pid in ipairs(redis.call('ZRANGE', sk .. ':left', 0, n - keep - 1)) do
    redis.call('HDEL', sk .. ':p', pid)
    drop_timelines(sid, pid)
  end
  redis.call('ZREMRANGEBYRANK', sk .. ':left', 0, n - keep - 1)
end
-- Marks a present participant left; an emptied session is forgotten after the grace. Returns its record, or nil.
local function mark_left(sid, pid, keep, grace, now)
  local sk = P .. 's:' .. sid
  local raw = redis.call('HGET', sk .. ':p', pid)
  if not raw then return nil end
  local rec = cjson.decode(raw)
  if rec.present ~= 1 then return nil end
  rec.present = 0
  redis.call('HSET', sk .. ':p', pid, cjson.encode(rec))
  redis.call('SREM', sk .. ':present', pid)
  redis.call('SREM', P .. 'np:' .. rec.node, sid .. '\\n' .. pid)
  redis.call('ZADD', sk .. ':left', redis.call('HINCRBY', sk, 'seq', 1), pid)
  if redis.call('SCARD', sk .. ':present') == 0 then
    if grace == 0 then drop_session(sid) else redis.call('ZADD', P .. 'expiring', now + grace, sid) end
  else
    forget_old_leavers(sid, keep)
  end
  return rec
end
local function gone_entry(sid, pid, rec)
  return { sessionId = sid, participantId = pid, name = rec.name }
end
-- Present participants of a session whose node is dead: marked left, returned.
local function reap_session(sid, keep, grace, now)
  local gone = {}
  local sk = P .. 's:' .. sid
  for _, pid in ipairs(redis.call('SMEMBERS', sk .. ':present')) do
    local raw = redis.call('HGET', sk .. ':p', pid)
    local rec = raw and cjson.decode(raw)
    if rec and not node_alive(rec.node) then
      mark_left(sid, pid, keep, grace, now)
      table.insert(gone, gone_entry(sid, pid, rec))
    end
  end
  return gone
end
local function heartbeat(node, ttl)
  redis.call('SET', P .. 'node:' .. node, '1', 'PX', ttl)
  redis.call('SADD', P .. 'nodes', node)
end
`;

/** ARGV: P, sid, pid, name ('' = none), role, address, node, ttl, maxSessions, maxParticipants, maxPerAddress, grace. */
const JOIN = `
local sid, pid, name, role, address, node = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local ttl, maxSessions, maxParticipants, maxPerAddress, grace = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
local now = now_ms()
heartbeat(node, ttl)
purge_expired(now)
local sk = P .. 's:' .. sid
local gone = {}
if redis.call('EXISTS', sk) == 1 then gone = reap_session(sid, maxParticipants, grace, now) end
if redis.call('EXISTS', sk) == 0 then
  if redis.call('SCARD', P .. 'sessions') >= maxSessions then return { 'too_many_sessions', '' } end
  local created = redis.call('SCARD', P .. 'addr:' .. address)
  if created >= maxPerAddress then return { 'rate_limited', tostring(created) } end
  redis.call('HSET', sk, 'createdBy', address, 'seq', 0, 'tseq', 0)
  redis.call('SADD', P .. 'sessions', sid)
  redis.call('SADD', P .. 'addr:' .. address, sid)
end
if redis.call('SCARD', sk .. ':present') >= maxParticipants then
  if redis.call('HLEN', sk .. ':p') == 0 then drop_session(sid) end
  return { 'session_full', cjson.encode(gone) }
end
redis.call('ZREM', P .. 'expiring', sid)
local rec = { role = role, node = node, present = 1, j = redis.call('HINCRBY', sk, 'seq', 1) }
if name ~= '' then rec.name = name end
redis.call('HSET', sk .. ':p', pid, cjson.encode(rec))
redis.call('SADD', sk .. ':present', pid)
redis.call('SADD', P .. 'np:' .. node, sid .. '\\n' .. pid)
forget_old_leavers(sid, maxParticipants)
return { 'ok', cjson.encode(gone) }
`;

/** ARGV: P, sid, pid, keep, grace. Returns 1 when it was present. */
const LEAVE = `
local rec = mark_left(ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), now_ms())
if rec then return 1 end
return 0
`;

/** ARGV: P, sid, pid, maxSamples, maxTracks, then trackId, sample JSON pairs. Nothing once the participant left. */
const RECORD = `
local sid, pid, maxSamples, maxTracks = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local sk = P .. 's:' .. sid
if redis.call('SISMEMBER', sk .. ':present', pid) == 0 then return 0 end
local tk = P .. 't:' .. sid .. ':' .. pid
for i = 6, #ARGV, 2 do
  redis.call('ZADD', tk, redis.call('HINCRBY', sk, 'tseq', 1), ARGV[i])
  redis.call('RPUSH', tk .. ':' .. ARGV[i], ARGV[i + 1])
  redis.call('LTRIM', tk .. ':' .. ARGV[i], -maxSamples, -1)
end
while redis.call('ZCARD', tk) > maxTracks do
  local stalest = redis.call('ZPOPMIN', tk)
  redis.call('DEL', tk .. ':' .. stalest[1])
end
return 1
`;

/**
 * ARGV: P, sid, pid ('' = all), withTracks (0|1). Returns one entry a participant:
 * { pid, record JSON, node alive 0|1, [trackId, [samples...]]... }.
 */
const READ = `
local sid, only, withTracks = ARGV[2], ARGV[3], ARGV[4] == '1'
local sk = P .. 's:' .. sid
local out = {}
local pids = only ~= '' and { only } or redis.call('HKEYS', sk .. ':p')
for _, pid in ipairs(pids) do
  local raw = redis.call('HGET', sk .. ':p', pid)
  if raw then
    local rec = cjson.decode(raw)
    local entry = { pid, raw, node_alive(rec.node) and 1 or 0 }
    if withTracks then
      local tk = P .. 't:' .. sid .. ':' .. pid
      for _, tr in ipairs(redis.call('ZRANGE', tk, 0, -1)) do
        table.insert(entry, tr)
        table.insert(entry, redis.call('LRANGE', tk .. ':' .. tr, 0, -1))
      end
    end
    table.insert(out, entry)
  end
end
return out
`;

/**
 * A node's tick. ARGV: P, node, ttl, keep, grace. Renews this node's liveness key, forgets
 * expired sessions, marks left every participant of nodes whose key expired. Returns
 * { gone JSON, sessions count }.
 */
const SWEEP = `
local node, ttl, keep, grace = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local now = now_ms()
heartbeat(node, ttl)
purge_expired(now)
local gone = {}
for _, other in ipairs(redis.call('SMEMBERS', P .. 'nodes')) do
  if not node_alive(other) then
    for _, entry in ipairs(redis.call('SMEMBERS', P .. 'np:' .. other)) do
      local cut = string.find(entry, '\\n', 1, true)
      local sid, pid = string.sub(entry, 1, cut - 1), string.sub(entry, cut + 1)
      local rec = mark_left(sid, pid, keep, grace, now)
      if rec then table.insert(gone, gone_entry(sid, pid, rec)) end
    end
    redis.call('DEL', P .. 'np:' .. other)
    redis.call('SREM', P .. 'nodes', other)
  end
end
return { cjson.encode(gone), redis.call('SCARD', P .. 'sessions') }
`;

/**
 * Makes Redis agree with this node about its own participants (after Redis came back, maybe
 * empty, or after writes failed while it was away). ARGV: P, node, ttl, keep, grace, JSON list of
 * {sessionId, participantId, name?, role, address}. Participants of this node that Redis holds
 * present but the node does not are marked left; the node's that Redis lacks (or holds left) are
 * put back, their session re-created if it is gone (limits are not applied again: they were
 * admitted). Returns JSON {left: [...], joined: [...]}; `joined` lists only those Redis held as left
 * (another node had reaped them), not those it had lost.
 */
const RECONCILE = `
local node, ttl, keep, grace = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local mine = cjson.decode(ARGV[6])
local now = now_ms()
heartbeat(node, ttl)
local wanted = {}
for _, p in ipairs(mine) do wanted[p.sessionId .. '\\n' .. p.participantId] = true end
local left, joined = {}, {}
for _, entry in ipairs(redis.call('SMEMBERS', P .. 'np:' .. node)) do
  if not wanted[entry] then
    local cut = string.find(entry, '\\n', 1, true)
    local sid, pid = string.sub(entry, 1, cut - 1), string.sub(entry, cut + 1)
    local rec = mark_left(sid, pid, keep, grace, now)
    redis.call('SREM', P .. 'np:' .. node, entry)
    if rec then table.insert(left, gone_entry(sid, pid, rec)) end
  end
end
for _, p in ipairs(mine) do
  local sid, pid = p.sessionId, p.participantId
  local sk = P .. 's:' .. sid
  if redis.call('EXISTS', sk) == 0 then
    redis.call('HSET', sk, 'createdBy', p.address, 'seq', 0, 'tseq', 0)
    redis.call('SADD', P .. 'sessions', sid)
    redis.call('SADD', P .. 'addr:' .. p.address, sid)
  end
  local raw = redis.call('HGET', sk .. ':p', pid)
  local rec = raw and cjson.decode(raw)
  if not rec or rec.present ~= 1 or rec.node ~= node then
    if not rec then rec = { role = p.role, j = redis.call('HINCRBY', sk, 'seq', 1) } end
    if p.name then rec.name = p.name end
    rec.node = node
    rec.present = 1
    redis.call('HSET', sk .. ':p', pid, cjson.encode(rec))
    redis.call('SADD', sk .. ':present', pid)
    redis.call('ZREM', sk .. ':left', pid)
    redis.call('ZREM', P .. 'expiring', sid)
    redis.call('SADD', P .. 'np:' .. node, sid .. '\\n' .. pid)
    -- Only one another node had marked left was told participant:left; one Redis lost was not.
    if raw then table.insert(joined, { sessionId = sid, participantId = pid, name = p.name }) end
  end
end
return cjson.encode({ left = left, joined = joined })
`;

export const SCRIPTS = {
  mwJoin: LIBRARY + JOIN,
  mwLeave: LIBRARY + LEAVE,
  mwRecord: LIBRARY + RECORD,
  mwRead: LIBRARY + READ,
  mwSweep: LIBRARY + SWEEP,
  mwReconcile: LIBRARY + RECONCILE,
} as const;

export type ScriptName = keyof typeof SCRIPTS;
