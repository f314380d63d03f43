import { MemoryHub } from "../../cluster/memory_backplane.ts";
import { clusterCases } from "./_cases.ts";

clusterCases("memory", () => {
  const hub = new MemoryHub();
  return Promise.resolve({
    make: () => Promise.resolve(hub.connect()),
    dispose: () => Promise.resolve(),
  });
});
