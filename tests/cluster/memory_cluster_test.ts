import { type MemoryBackplane, MemoryHub } from "../../cluster/memory_backplane.ts";
import { connect } from "../../rpc/client.ts";
import { once } from "../transport/_helpers.ts";
import { clusterCases } from "./_cases.ts";
import { until } from "./_conformance.ts";
import { startNodes, stopNodes } from "./_nodes.ts";

clusterCases("memory", () => {
  const hub = new MemoryHub();
  return Promise.resolve({
    make: () => Promise.resolve(hub.connect()),
    dispose: () => Promise.resolve(),
  });
});

Deno.test("memory cluster: a node back from an outage of its own drops the entries of sessions closed meanwhile", async () => {
  const hub = new MemoryHub();
  const backplanes: MemoryBackplane[] = [];
  const nodes = await startNodes(2, () => {
    const backplane = hub.connect();
    backplanes.push(backplane);
    return Promise.resolve(backplane);
  });
  const [a, b] = nodes;
  const client = await connect(a.addr);
  try {
    const listed = async (n: number) => (await b.cluster.sessions()).length === n;
    await until(() => listed(1), "the session in the directory");
    // Only a's backplane goes away; the hub keeps its data.
    const back = once(a.cluster, "status", (s) => s === "connected");
    backplanes[0]._setStatus("down");
    await client.close();
    await until(() => Promise.resolve(a.server.transport.sessionCount === 0), "the session closed");
    backplanes[0]._setStatus("up");
    await back;
    await until(() => listed(0), "its directory entry gone");
  } finally {
    await client.close();
    await stopNodes(nodes);
  }
});
