// Cluster nodes for tests: RpcServers with the demo methods, each joined to
// a shared backplane engine, listening on loopback.

import type { Backplane } from "../../cluster/backplane.ts";
import { Cluster, type ClusterOptions } from "../../cluster/cluster.ts";
import { demoMethods } from "../../rpc/demo.ts";
import { RpcServer } from "../../rpc/server.ts";
import type { Session } from "../../transport/session.ts";
import { guard } from "../transport/_helpers.ts";

export interface TestNode {
  cluster: Cluster;
  server: RpcServer;
  addr: string;
}

/** Starts `count` nodes, each with its own backplane from `make`. */
export async function startNodes(
  count: number,
  make: () => Promise<Backplane>,
  options: Partial<ClusterOptions> = {},
  prefix = "n",
): Promise<TestNode[]> {
  const nodes: TestNode[] = [];
  for (let i = 0; i < count; i++) {
    const server: RpcServer = new RpcServer({ methods: demoMethods(() => server) });
    const addr = server.listen({ hostname: "127.0.0.1", port: 0 });
    const cluster = await Cluster.start(server, {
      heartbeatMs: 50,
      ...options,
      backplane: await make(),
      nodeId: `${prefix}${i}`,
      address: addr,
    });
    nodes.push({ cluster, server, addr });
  }
  return nodes;
}

/** Resolves once `node` has a session with `id` that is a member of `topic`. */
export function member(node: TestNode, topic: string, count: number): Promise<void> {
  return guard(
    (async () => {
      while (node.server.transport.members(topic).size < count) {
        await new Promise((r) => setTimeout(r, 2));
      }
    })(),
    `${count} members of ${topic} on ${node.cluster.nodeId}`,
  );
}

/** Resolves with the first session of `node` once it has one. */
export function firstSession(node: TestNode): Session {
  const s = node.server.transport.sessions().next().value;
  if (s === undefined) throw new Error(`no session on ${node.cluster.nodeId}`);
  return s;
}

/** Shuts every node down. */
export async function stopNodes(nodes: TestNode[]): Promise<void> {
  for (const n of nodes) await n.cluster.shutdown({ deadlineMs: 0 });
}
