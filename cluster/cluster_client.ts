/**
 * A client of a cluster: an {@linkcode RpcClient} that dials the nodes in
 * turn, follows topics with offsets, and resumes them by itself after a
 * reconnection, to whichever node it reaches.
 *
 * @module
 */

import { FrameType } from "../codec/constants.ts";
import type { Message } from "../codec/message.ts";
import { getCodec, type PayloadCodec } from "../codec/payload_codec.ts";
import type { Stage } from "../codec/stage.ts";
import { type ClientOptions, RpcClient } from "../rpc/client.ts";
import { dial } from "../transport/dial.ts";
import type { SessionStages } from "../transport/session.ts";
import type { FollowResult } from "./cluster.ts";

/** How a followed message arrived. */
export interface FollowInfo {
  /** Its topic offset; 0 for a message sent while the cluster was degraded. */
  offset: number;
  /** Whether it was replayed after a reconnection rather than sent live. */
  recovered: boolean;
}

/** Receives a followed topic's messages. */
export type FollowCallback = (value: unknown, info: FollowInfo) => void;

/** Detail of the `gap` event: entries after `after` were no longer in the topic's log. */
export interface GapDetail {
  /** The topic. */
  topic: string;
  /** The offset the client resumed from. */
  after: number;
}

interface Followed {
  callback: FollowCallback;
  /** Latest offset delivered to the callback. */
  last: number;
}

/**
 * Follows topics across node failures. Messages of followed topics go to
 * their callbacks, each once, in offset order; a message whose offset the
 * client already has is dropped, so at-least-once delivery from the nodes
 * becomes exactly-once for the application while the log covers the gap.
 * After every reconnection it calls `cluster.follow` with its last offset
 * per topic; if the log no longer reaches back that far it emits `gap`
 * (`CustomEvent<GapDetail>`).
 *
 * @example Follow a topic on a two-node in-memory cluster
 * ```ts
 * import { Cluster, ClusterClient, MemoryHub } from "@streamwire/streamwire/cluster";
 * import { Methods, RpcServer } from "@streamwire/streamwire/rpc";
 * import assert from "node:assert/strict";
 *
 * const hub = new MemoryHub();
 * const a = new RpcServer({ methods: new Methods() });
 * const b = new RpcServer({ methods: new Methods() });
 * const nodeA = await Cluster.start(a, { backplane: hub.connect() });
 * const nodeB = await Cluster.start(b, { backplane: hub.connect() });
 * const client = await ClusterClient.connect([b.listen({ port: 0 })]);
 * const got = Promise.withResolvers<unknown>();
 * await client.follow("room", (value) => got.resolve(value));
 * await nodeA.broadcast("room", "hello", { topic: "room" });
 * assert.equal(await got.promise, "hello");
 * assert.ok(client.offset("room") > 0);
 * await client.close();
 * await nodeA.shutdown();
 * await nodeB.shutdown();
 * ```
 */
export class ClusterClient extends EventTarget {
  /** The RPC client underneath, for calls. */
  readonly rpc: RpcClient;
  #followed = new Map<string, Followed>();
  #started = false;

  /**
   * Creates a client; {@linkcode ClusterClient.connect} also connects it.
   *
   * @param addresses Node addresses, dialed in turn from the first.
   * @param options Client options; `dial` and `inbound` are combined with the cluster's.
   */
  constructor(addresses: readonly string[], options: ClientOptions = {}) {
    super();
    if (addresses.length === 0) throw new TypeError("ClusterClient needs at least one address");
    let next = 0;
    const open = options.dial ?? (() => dial(addresses[next++ % addresses.length]));
    const user = options.inbound;
    const inbound = (): SessionStages => {
      const own = typeof user === "function" ? user() : user;
      return { frames: own?.frames, messages: [...(own?.messages ?? []), this.#stage()] };
    };
    this.rpc = new RpcClient(open, { ...options, inbound });
    this.rpc.addEventListener("statechange", (e) => {
      if ((e as CustomEvent).detail.to !== "ready") return;
      if (this.#started) this.#resume();
      this.#started = true;
    });
  }

  /**
   * Connects to the first reachable node.
   *
   * @param addresses Node addresses.
   * @param options Client options.
   * @returns A ready client.
   */
  static async connect(
    addresses: readonly string[],
    options: ClientOptions = {},
  ): Promise<ClusterClient> {
    const client = new ClusterClient(addresses, options);
    await client.rpc.start();
    return client;
  }

  /**
   * The latest offset delivered for a topic.
   *
   * @param topic Topic.
   * @returns The offset, 0 if none.
   */
  offset(topic: string): number {
    return this.#followed.get(topic)?.last ?? 0;
  }

  /**
   * Follows a topic: joins it on the current node and calls `callback` for
   * each of its messages, here and on every node reconnected to later.
   *
   * @param topic Topic.
   * @param callback Receives the decoded value and how it arrived.
   * @param options `after`: an offset already seen, to replay what followed it.
   * @returns What the node answered (head, entries replayed, gap).
   */
  async follow(
    topic: string,
    callback: FollowCallback,
    options: { after?: number } = {},
  ): Promise<FollowResult> {
    const entry: Followed = { callback, last: options.after ?? 0 };
    this.#followed.set(topic, entry);
    const result = await this.rpc.call("cluster.follow", {
      topic,
      after: entry.last,
    }) as FollowResult;
    if (entry.last === 0) entry.last = Math.max(entry.last, result.head);
    this.#gap(topic, options.after ?? 0, result);
    return result;
  }

  /**
   * Stops following a topic.
   *
   * @param topic Topic.
   * @returns Resolves once the node confirmed.
   */
  async unfollow(topic: string): Promise<void> {
    this.#followed.delete(topic);
    await this.rpc.call("cluster.unfollow", { topic });
  }

  /**
   * Closes the client.
   *
   * @returns Resolves once closed.
   */
  close(): Promise<void> {
    return this.rpc.close();
  }

  #resume(): void {
    for (const [topic, entry] of this.#followed) {
      const after = entry.last;
      this.rpc.call("cluster.follow", { topic, after }).then(
        (result) => this.#gap(topic, after, result as FollowResult),
        (error) => this.dispatchEvent(new CustomEvent("error", { detail: error })),
      );
    }
  }

  #gap(topic: string, after: number, result: FollowResult): void {
    if (result.gap) this.dispatchEvent(new CustomEvent("gap", { detail: { topic, after } }));
  }

  /** Takes followed topics' BROADCASTs out of the message stream, in order, once each. */
  #stage(): Stage<Message, Message> {
    let codec: PayloadCodec | undefined;
    return {
      transform: (m, controller) => {
        if (m.type === FrameType.HELLO_ACK) {
          codec = getCodec(String(m.ack.codec));
        } else if (m.type === FrameType.BROADCAST) {
          const entry = this.#followed.get(m.method);
          if (entry !== undefined && codec !== undefined) {
            let offset = 0, recovered = false;
            for (const [name, value] of m.ext?.metadata ?? []) {
              if (name === "offset") offset = Number(value);
              else if (name === "recovered") recovered = value === "1";
            }
            if (offset > 0 && offset <= entry.last) return; // a duplicate
            if (offset > 0) entry.last = offset;
            const value = m.params.length === 0 ? undefined : codec.decode(m.params);
            try {
              entry.callback(value, { offset, recovered });
            } catch (error) {
              // The callback's failure is its own: the connection goes on.
              this.dispatchEvent(new CustomEvent("error", { detail: error }));
            }
            return;
          }
        }
        controller.enqueue(m);
      },
    };
  }
}
