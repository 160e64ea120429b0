"""The Lua scripts of the Redis journal: the steps that must happen together.

Why scripts: Redis runs a script atomically, so a replica that dies (or a connection
that drops) half-way can never leave an event "seen" but not journaled, a touched entry
taken from a replica that claimed it meanwhile, or a handed-back entry both in the
stream twice and nowhere.  Each script is one round trip, however many entries it covers.
"""

# KEYS: (seen, stream, entry) per plugin.  ARGV: ttl, event id, topic, payload, received.
# Returns one flag per plugin: 1 journaled here, 0 another replica already had it.
# (The set of plugin names is kept by ensure_group, once per plugin and connection.)
RECORD = """
local out = {}
for i = 1, #KEYS / 3 do
  local seen, stream, entry = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  if redis.call('SET', seen, '1', 'NX', 'EX', ARGV[1]) then
    local id = redis.call('XADD', stream, '*', 'id', ARGV[2], 'topic', ARGV[3],
                          'payload', ARGV[4], 'received', ARGV[5])
    redis.call('HSET', entry, ARGV[2], id)
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
"""

# Touch: reset the idle time of entries this consumer still owns, and only those — an
# entry another replica claimed meanwhile stays theirs (XCLAIM would take it back).
# KEYS: stream. ARGV: group, consumer, entry ids. Returns the ids no longer owned.
TOUCH = """
local lost = {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if #p == 1 then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
  else
    lost[#lost + 1] = ARGV[i]
  end
end
return lost
"""


# Hand back: entries this consumer still holds go back to the stream as new entries
# (same fields), so that another replica takes them at once instead of after claim_idle.
# KEYS: stream, entry hash. ARGV: group, consumer, entry ids. Returns how many moved.
HAND_BACK = """
local moved = 0
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if #p == 1 then
    local found = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])
    if #found == 1 then
      local fields = found[1][2]
      local new = redis.call('XADD', KEYS[1], '*', unpack(fields))
      for j = 1, #fields, 2 do
        if fields[j] == 'id' then redis.call('HSET', KEYS[2], fields[j + 1], new) end
      end
    end
    redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
    redis.call('XDEL', KEYS[1], ARGV[i])
    moved = moved + 1
  end
end
return moved
"""


# Begin: a replica took these entries (read or claimed); count one attempt for each now,
# for the whole batch in one round trip, so that the attempt is in Redis before any of
# their handlers runs.  An entry whose event no longer points at it (acknowledged
# meanwhile, or moved by a hand-back) is not counted and comes back as -1.
# KEYS: entry hash, attempts hash, error hash. ARGV: event id, entry id, ... pairs.
# Returns per pair: attempts after counting (or -1), then the last error (or nil).
BEGIN = """
local out = {}
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    out[#out + 1] = redis.call('HINCRBY', KEYS[2], ARGV[i], 1)
    out[#out + 1] = redis.call('HGET', KEYS[3], ARGV[i])
  else
    out[#out + 1] = -1
    out[#out + 1] = false
  end
end
return out
"""

# Unbegin: entries this replica took but will not run (given back, no subscriber now):
# take back the attempt counted when they were taken, for those it still owns.
# KEYS: stream, attempts hash. ARGV: group, consumer, event id, entry id, ... pairs.
UNBEGIN = """
local n = 0
for i = 3, #ARGV, 2 do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i + 1], ARGV[i + 1], 1, ARGV[2])
  if #p == 1 and tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '0') > 0 then
    redis.call('HINCRBY', KEYS[2], ARGV[i], -1)
    n = n + 1
  end
end
return n
"""

# Ack: finished deliveries of one plugin — acknowledge and delete their entries, drop
# their bookkeeping, count them done.  One call per plugin per batch.
# KEYS: stream, entry hash, attempts hash, error hash, done counter.
# ARGV: group, then event id, entry id pairs.
ACK = """
local n = 0
for i = 2, #ARGV, 2 do
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[i + 1])
  redis.call('XDEL', KEYS[1], ARGV[i + 1])
  redis.call('HDEL', KEYS[2], ARGV[i])
  redis.call('HDEL', KEYS[3], ARGV[i])
  redis.call('HDEL', KEYS[4], ARGV[i])
  n = n + 1
end
redis.call('INCRBY', KEYS[5], n)
return n
"""
