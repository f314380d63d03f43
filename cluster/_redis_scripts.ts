// The Lua scripts of the Redis backplane engine (run by SHA-1, loaded when
// Redis does not have them), and the channel message they publish with its
// reader. Each script is atomic and reads the one clock every node shares,
// the Redis server's; key layout in redis_backplane.ts.

import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import type { Buffer } from "node:buffer";
import type { ChannelHandler } from "./backplane.ts";

// KEYS: log, head, channel. ARGV: retention, then each entry's bytes.
// Offsets run on from the first (the Redis clock or one past the head); the
// log is trimmed once, after the entries, and they are published as one
// message: "<offset> <prev> " and the bytes for one entry, or
// "* <first> <prev> <count> " then "<length> " and the bytes per entry.
const APPEND = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local prev = tonumber(redis.call('GET', KEYS[2]) or '0')
local first = now
if first <= prev then first = prev + 1 end
local n = #ARGV - 1
local f = string.format('%.0f', first)
local p = string.format('%.0f', prev)
local out = {}
if n > 1 then out[1] = '* ' .. f .. ' ' .. p .. ' ' .. n .. ' ' end
for i = 1, n do
  local o = string.format('%.0f', first + i - 1)
  redis.call('XADD', KEYS[1], o .. '-0', 'p', p, 'd', ARGV[i + 1])
  if n > 1 then
    out[#out + 1] = #ARGV[i + 1] .. ' '
  else
    out[#out + 1] = o .. ' ' .. p .. ' '
  end
  out[#out + 1] = ARGV[i + 1]
  p = o
end
redis.call('XTRIM', KEYS[1], 'MAXLEN', ARGV[1])
redis.call('SET', KEYS[2], p)
redis.call('PUBLISH', KEYS[3], table.concat(out))
return f`;

// KEYS: log, head. ARGV: offset already seen ('0' for none), most entries.
// Returns {head, entries}.
const READ = `
local head = redis.call('GET', KEYS[2]) or '0'
local start = '-'
if ARGV[1] ~= '0' then start = '(' .. ARGV[1] .. '-0' end
return {head, redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', ARGV[2])}`;

// KEYS: nodes, nodeinfo. ARGV: node, info, ttl ms.
const HEARTBEAT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1`;

// KEYS: nodes, nodeinfo. Returns {id, info, id, info, ...} of live nodes.
const NODES = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
local out = {}
for _, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', KEYS[2], id) or ''
end
return out`;

// KEYS: nodes, nodeinfo, sessions. ARGV: prefix of per-node session sets,
// then '' to reap expired nodes or a node id to remove that one.
const FORGET = `
local gone
if ARGV[2] == '' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
else
  gone = {ARGV[2]}
end
for _, id in ipairs(gone) do
  local set = ARGV[1] .. id
  for _, sid in ipairs(redis.call('SMEMBERS', set)) do redis.call('HDEL', KEYS[3], sid) end
  redis.call('DEL', set)
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
end
return gone`;

// KEYS: sessions, node's set. ARGV: session id, node.
const DELETE_SESSION = `
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v and string.sub(v, 1, #ARGV[2] + 1) == ARGV[2] .. '\\n' then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
redis.call('SREM', KEYS[2], ARGV[1])
return 1`;

type Arg = string | number | Buffer;

/** A Lua script run by its SHA-1, loaded on first use or after Redis lost it. */
class Script {
  readonly sha: string;
  constructor(readonly lua: string, readonly keys: number) {
    this.sha = createHash("sha1").update(lua).digest("hex");
  }

  // Our own EVALSHA-then-EVAL: ioredis's defineCommand retries in a promise
  // that can reject unhandled while a connection is down.
  async run(redis: Redis, args: Arg[], buffers = false): Promise<unknown> {
    try {
      return buffers
        ? await redis.callBuffer("EVALSHA", this.sha, this.keys, ...args)
        : await redis.call("EVALSHA", this.sha, this.keys, ...args);
    } catch (error) {
      if (!String((error as Error)?.message).includes("NOSCRIPT")) throw error;
      return buffers
        ? await redis.callBuffer("EVAL", this.lua, this.keys, ...args)
        : await redis.call("EVAL", this.lua, this.keys, ...args);
    }
  }
}

/** The engine's scripts. */
export const SCRIPTS = {
  append: new Script(APPEND, 3),
  read: new Script(READ, 2),
  heartbeat: new Script(HEARTBEAT, 2),
  nodes: new Script(NODES, 2),
  forget: new Script(FORGET, 3),
  deleteSession: new Script(DELETE_SESSION, 2),
};

/**
 * Hands a channel message's entries to a handler: `"<offset> <prev> "` and
 * the bytes, or a batch, `"* <first> <prev> <count> "` then `"<length> "`
 * and the bytes of each entry, whose offsets run on from the first. One
 * copy of the message (ioredis may hand out views of a buffer it reuses,
 * and handlers keep entries); entries are views into it.
 */
export function deliver(message: Uint8Array, handler: ChannelHandler): void {
  // A plain Uint8Array: a Node Buffer's slice() would be a view.
  const bytes = new Uint8Array(message);
  let at = 0;
  /** The decimal number at `at`, up to a space; NaN if malformed. */
  const number = () => {
    let n = 0;
    for (let c = bytes[at++]; c !== 32; c = bytes[at++]) {
      if (!(c >= 48 && c <= 57)) return NaN; // a digit (undefined past the end)
      n = n * 10 + c - 48;
    }
    return n;
  };
  if (bytes[0] !== 42) { // not '*': one entry, or a plain publish ("0 0 ")
    const offset = number(), prev = number();
    if (!Number.isNaN(offset) && !Number.isNaN(prev)) {
      call(handler, bytes.subarray(at), offset, prev);
    }
    return;
  }
  at = 2;
  const first = number(), prev = number(), count = number();
  if (Number.isNaN(first + prev + count)) return;
  for (let i = 0; i < count; i++) {
    const len = number();
    if (Number.isNaN(len) || at + len > bytes.length) return;
    call(handler, bytes.subarray(at, at + len), first + i, i === 0 ? prev : first + i - 1);
    at += len;
  }
}

/**
 * Calls a handler, dropping its throw (ChannelHandler): thrown inside
 * ioredis's socket reader it would end the process.
 */
function call(handler: ChannelHandler, data: Uint8Array, offset: number, prev: number): void {
  try {
    handler(data, offset, prev);
  } catch {
    // The handler's own failure: the entries after it are still delivered.
  }
}
