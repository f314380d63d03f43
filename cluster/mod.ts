/**
 * Scale-out: a cluster of streamwire servers over a backplane (Redis, NATS,
 * or in-memory for tests). Broadcasts to all and to topics reach every node's
 * sessions, encoded once on the publishing node; unicast and kick reach a
 * session on any node; topic messages get offsets, and a client reconnecting
 * to any node resumes from its last one.
 *
 * @example A log on an in-memory backplane
 * ```ts
 * import { MemoryHub } from "@streamwire/streamwire/cluster";
 * import assert from "node:assert/strict";
 *
 * const backplane = new MemoryHub().connect();
 * const offset = await backplane.append("log:news", "topic:news", new Uint8Array([7]));
 * assert.equal((await backplane.read("log:news", 0, 10)).head, offset);
 * await backplane.close();
 * ```
 *
 * @module
 */

export * from "./backplane.ts";
export * from "./memory_backplane.ts";
export * from "./redis_backplane.ts";
export * from "./nats_backplane.ts";
export * from "./connect_backplane.ts";
export * from "./cluster.ts";
export * from "./cluster_client.ts";
export * from "./admin.ts";
