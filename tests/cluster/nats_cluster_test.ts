import { NatsBackplane } from "../../cluster/nats_backplane.ts";
import { clusterCases } from "./_cases.ts";
import { faultCases } from "./_faults.ts";
import { NatsProcess } from "./_nats.ts";

clusterCases("nats", async () => {
  const nats = await NatsProcess.start();
  return {
    make: () => NatsBackplane.connect(nats.url, { prefix: "cases" }),
    dispose: () => nats.stop(),
  };
});

faultCases("nats", async () => {
  const nats = await NatsProcess.start();
  return {
    url: nats.url,
    make: (prefix) => NatsBackplane.connect(nats.url, prefix ? { prefix } : {}),
    stop: () => nats.stop(),
    resume: () => nats.resume(),
    dispose: () => nats.stop(),
  };
});
