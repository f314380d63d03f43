import { MemoryHub } from "../../cluster/memory_backplane.ts";
import { conformance } from "./_conformance.ts";

conformance("memory", () => {
  const hub = new MemoryHub({ retention: 16, maxAppendMany: 64 });
  return Promise.resolve({
    make: () => Promise.resolve(hub.connect()),
    stop: () => Promise.resolve(hub.stop()),
    start: () => Promise.resolve(hub.start()),
    dispose: () => Promise.resolve(),
  });
});
