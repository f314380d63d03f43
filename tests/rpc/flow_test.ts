import assert from "node:assert/strict";
import { Status } from "../../codec/constants.ts";
import { connect } from "../../rpc/client.ts";
import {
  ackHello,
  fakeServer,
  KINDS,
  rawClient,
  rejectsWith,
  rig,
  settled,
  waitFor,
} from "./_rig.ts";
import { callEntry, frame, json, statusOf, T } from "./_wire.ts";

for (const kind of KINDS) {
  for (const window of [4, 16, 64]) {
    Deno.test(`${kind}: a slow reader caps a fast producer at the window (${window})`, async () => {
      await using r = await rig(kind, { server: { window } });
      const reader = r.client.stream("fast", 1_000_000).getReader();
      // Before anything is read, the producer runs ahead on the first credit.
      await r.probe.until(() => r.probe.produced >= window / 2, "the producer running ahead");
      let consumed = 0;
      let maxAhead = r.probe.produced;
      for (let i = 0; i < 4 * window + 50; i++) {
        const { value } = await reader.read();
        assert.equal(value, consumed);
        consumed++;
        // Give the producer every chance to run ahead: a round trip lets the
        // server read the CREDIT sent so far and produce against it.
        if (i % 8 === 0) assert.equal(await r.client.call("echo", i), i);
        maxAhead = Math.max(maxAhead, r.probe.produced - consumed);
        assert.ok(
          r.probe.produced <= consumed + window + 1,
          `produced ${r.probe.produced} with ${consumed} consumed, window ${window}`,
        );
      }
      assert.ok(maxAhead >= window / 2, `the producer did run ahead (${maxAhead})`);
      await reader.cancel();
      await settled(r);
    });
  }
}

for (const kind of KINDS) {
  Deno.test(`${kind}: DATA beyond credit from a caller fails the call with 8`, async () => {
    await using r = await rig(kind, { server: { window: 4 } });
    const { peer, ack } = await rawClient(kind, r.server, r.addr);
    try {
      assert.equal(ack.window, 4);
      const one = json(1);
      await peer.send(
        frame(T.OPEN, 1, callEntry("stall", new Uint8Array(0))),
        ...Array.from({ length: 4 }, () => frame(T.DATA, 1, one)),
      );
      // Within the window: accepted, nothing answered before the PONG.
      assert.deepEqual(await peer.sync(), []);
      await peer.send(frame(T.DATA, 1, one));
      const error = await peer.next();
      assert.equal(error.type, T.ERROR);
      assert.equal(error.seq, 1);
      const { code, message } = statusOf(error.body);
      assert.equal(code, Status.RESOURCE_EXHAUSTED);
      assert.match(message, /beyond granted credit/);
      await r.probe.until(() => r.probe.aborted.length === 1, "the handler aborted");
      assert.deepEqual(r.probe.aborted, [{ method: "stall", code: Status.RESOURCE_EXHAUSTED }]);
      const session = r.server.transport.session(ack.session as string)!;
      await waitFor(() => r.server.peer(session)?.inflight === 0, "server in-flight back to 0");
    } finally {
      await peer.close();
    }
  });

  Deno.test(`${kind}: DATA beyond credit from a callee fails the stream with 8`, async () => {
    const fake = fakeServer(kind);
    const accepted = fake.accepted();
    const connecting = connect("tcp://127.0.0.1:1", { dial: fake.dial, reconnect: false });
    const peer = await accepted;
    try {
      await ackHello(peer, { window: 2 });
      const client = await connecting;
      try {
        const stream = client.stream("numbers");
        const open = await peer.next();
        assert.equal(open.type, T.OPEN);
        // A server stream: the caller closes its own direction at once.
        assert.deepEqual([(await peer.next()).type], [T.END]);
        await peer.send(frame(T.DATA, open.seq, json(1)), frame(T.DATA, open.seq, json(2)));
        // Within the window: nothing sent back before the PONG.
        assert.deepEqual(await peer.sync(), []);
        await peer.send(frame(T.DATA, open.seq, json(3)));
        const cancel = await peer.next();
        assert.equal(cancel.type, T.CANCEL);
        assert.equal(cancel.seq, open.seq);
        assert.equal(statusOf(cancel.body).code, Status.RESOURCE_EXHAUSTED);
        await rejectsWith(Array.fromAsync(stream), Status.RESOURCE_EXHAUSTED);
        assert.equal(client.pending, 0);
      } finally {
        await client.close();
      }
    } finally {
      await peer.close();
      fake.close();
    }
  });
}
