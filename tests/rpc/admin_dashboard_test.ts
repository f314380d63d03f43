// The admin API's dashboard routes: the page, the `GET /events` stream of
// live numbers and the wire tap of one session, through adminApp().request
// and a real Deno.serve on port 0.

import assert from "node:assert/strict";
import { adminApp, type AdminOptions } from "../../rpc/admin.ts";
import { connect, type RpcClient } from "../../rpc/client.ts";
import { demoMethods } from "../../rpc/demo.ts";
import { Methods } from "../../rpc/methods.ts";
import { RpcServer } from "../../rpc/server.ts";
import { DashboardFeed, quantileMs } from "../../rpc/_dashboard_feed.ts";
import { SseReader } from "./_sse.ts";

const AUTH = { authorization: "Bearer s3cret" };

interface Rig {
  server: RpcServer;
  clients: RpcClient[];
  app: ReturnType<typeof adminApp>;
  close(): Promise<void>;
}

async function rig(options: AdminOptions = {}, codecs = ["json", "msgpack"]): Promise<Rig> {
  const server: RpcServer = new RpcServer({ methods: demoMethods(() => server) });
  const addr = server.listen({ port: 0 });
  const clients = await Promise.all(
    codecs.map((codec) => connect(addr, { codecs: [codec as "json"] })),
  );
  const app = adminApp(server, { token: "s3cret", audit: () => {}, ...options });
  return {
    server,
    clients,
    app,
    async close() {
      await Promise.all(clients.map((c) => c.close()));
      await server.shutdown();
    },
  };
}

async function open(app: Rig["app"], path: string): Promise<SseReader> {
  const res = await app.request(path, { headers: AUTH });
  assert.equal(res.status, 200, `${path}: ${res.status}`);
  assert.match(res.headers.get("content-type")!, /^text\/event-stream/);
  return new SseReader(res);
}

Deno.test("the dashboard page is served without the token and asks for it; its data needs the token", async () => {
  const t = await rig();
  try {
    const page = await t.app.request("/");
    assert.equal(page.status, 200);
    const csp = page.headers.get("content-security-policy")!;
    const nonce = /script-src 'nonce-([0-9a-f]+)'/.exec(csp)![1];
    const html = await page.text();
    assert.match(html, /^<!doctype html><html lang="en">/);
    assert.match(html, /data-token="required"/);
    assert.ok(html.includes(`<script nonce="${nonce}">`));
    assert.match(html, /id="chart-latency"/);
    for (const path of ["/events", `/sessions/${t.clients[0].session!.id}/tap`]) {
      const res = await t.app.request(path);
      assert.equal(res.status, 401, path);
      assert.equal((await res.json()).codeName, "unauthenticated");
    }
    const wrong = await t.app.request("/events", { headers: { authorization: "Bearer nope" } });
    assert.equal(wrong.status, 401);
    await wrong.body?.cancel();
    assert.match(await (await adminApp(t.server).request("/")).text(), /data-token="none"/);
  } finally {
    await t.close();
  }
});

Deno.test("GET /events sends the tables at once, then calls/s, errors/s and latency each second", async () => {
  const t = await rig();
  try {
    const [json, msgpack] = t.clients;
    await json.call("chat.join", { room: "lobby" });
    await msgpack.call("chat.join", { room: "lobby" });
    await msgpack.call("chat.join", { room: "news" });
    const events = await open(t.app, "/events");
    const first = (await events.nextOf("stats")).data;
    assert.deepEqual(first.history, []);
    assert.equal(first.total, 2);
    assert.equal(first.sample.sessions, 2);
    const row = first.rows.find((r: { id: string }) => r.id === msgpack.session!.id);
    assert.equal(row.state, "active");
    assert.equal(row.codec, "msgpack");
    assert.match(row.remoteAddr, /^tcp:\/\/127\.0\.0\.1:\d+$/);
    assert.deepEqual(row.topics.toSorted(), ["lobby", "news"]);
    assert.equal(row.topicCount, 2);
    assert.equal(row.queuedFrames, 0);
    assert.deepEqual(first.topics, [{ topic: "lobby", members: 2 }, { topic: "news", members: 1 }]);

    for (let i = 0; i < 20; i++) await json.call("add", [i, 1]);
    await assert.rejects(json.call("add", "not numbers"));
    const next = (await events.nextOf("stats")).data;
    assert.equal(next.history, undefined);
    assert.ok(next.sample.callsPerSec > 0, JSON.stringify(next.sample));
    assert.ok(next.sample.errorsPerSec > 0, JSON.stringify(next.sample));
    assert.ok(next.sample.p50Ms > 0 && next.sample.p99Ms >= next.sample.p50Ms);
    assert.equal(next.sample.sessions, 2);
    // A page connecting now gets the history so far.
    const late = await open(t.app, "/events");
    assert.deepEqual((await late.nextOf("stats")).data.history, [next.sample]);
    await late.cancel();
    await events.cancel();
  } finally {
    await t.close();
  }
});

Deno.test("event streams are bounded by maxEventStreams, and a closed one frees its place", async () => {
  const t = await rig({ maxEventStreams: 2 });
  try {
    const a = await open(t.app, "/events");
    const b = await open(t.app, "/events");
    const refused = await t.app.request("/events", { headers: AUTH });
    assert.equal(refused.status, 429);
    assert.match((await refused.json()).message, /maxEventStreams/);
    await a.cancel();
    const c = await open(t.app, "/events");
    await Promise.all([b.cancel(), c.cancel()]);
  } finally {
    await t.close();
  }
});

Deno.test("a wire tap shows a call's REQUEST and RESPONSE with the method and a decoded preview", async () => {
  const t = await rig();
  try {
    const client = t.clients[1]; // msgpack: the preview is decoded with the session's codec
    const tap = await open(t.app, `/sessions/${client.session!.id}/tap`);
    assert.deepEqual((await tap.nextOf("open")).data, {
      session: client.session!.id,
      codec: "msgpack",
    });
    assert.equal(await client.call("add", [40, 2]), 42);
    const request = (await tap.nextOf("frame")).data;
    const response = (await tap.nextOf("frame")).data;
    assert.deepEqual(
      { ...request, t: 0 },
      {
        t: 0,
        direction: "in",
        type: "REQUEST",
        seq: request.seq,
        size: request.size,
        method: "add",
        preview: "[40,2]",
        dropped: 0,
      },
    );
    assert.ok(request.size > 17);
    assert.deepEqual(
      [response.direction, response.type, response.seq, response.method, response.preview],
      ["out", "RESPONSE", request.seq, "add", "42"],
    );
    // A broadcast is encoded once for all sessions; the tap reads it back.
    await client.call("chat.join", { room: "lobby" });
    await t.clients[0].call("chat.join", { room: "lobby" });
    await t.clients[0].call("chat.say", { room: "lobby", text: "hello" });
    const broadcast = (await tap.until((e) => e.data.type === "BROADCAST")).at(-1)!.data;
    assert.equal(broadcast.direction, "out");
    assert.equal(broadcast.method, "lobby");
    assert.match(broadcast.preview, /"text":"hello"/);
    await tap.cancel();
  } finally {
    await t.close();
  }
});

Deno.test("the redact hook makes the preview the tap shows", async () => {
  const seen: string[] = [];
  const t = await rig({
    redact: (frame) => {
      seen.push(`${frame.direction} ${frame.type} ${frame.method}`);
      return frame.method === "echo"
        ? frame.preview.replace(/"password":"[^"]*"/, '"password":"***"')
        : frame.preview;
    },
  });
  try {
    const client = t.clients[0];
    const tap = await open(t.app, `/sessions/${client.session!.id}/tap`);
    await client.call("echo", { user: "ann", password: "hunter2" });
    const frames = [(await tap.nextOf("frame")).data, (await tap.nextOf("frame")).data];
    for (const frame of frames) {
      assert.equal(frame.preview, '{"user":"ann","password":"***"}');
    }
    assert.deepEqual(seen, ["in REQUEST echo", "out RESPONSE echo"]);
    await tap.cancel();
  } finally {
    await t.close();
  }
});

Deno.test("a tap holds at most tapBuffer frames, drops the oldest and counts them; maxTaps bounds taps", async () => {
  const t = await rig({ tapBuffer: 4, maxTaps: 1 });
  try {
    const client = t.clients[0];
    const id = client.session!.id;
    // Not read until the calls are done: the tap keeps the last 4 events.
    const tap = await open(t.app, `/sessions/${id}/tap`);
    const second = await t.app.request(`/sessions/${t.clients[1].session!.id}/tap`, {
      headers: AUTH,
    });
    assert.equal(second.status, 429);
    assert.match((await second.json()).message, /maxTaps/);
    for (let i = 0; i < 10; i++) await client.call("echo", i);
    // The open event went to the reader's pipe at once (it holds one chunk
    // and then pushes back); of the 20 frames that followed, 4 are left.
    await tap.nextOf("open");
    const frames = await tap.until((e) => e.data.preview === "9" && e.data.type === "RESPONSE");
    assert.deepEqual(
      frames.map((e) => `${e.data.type} ${e.data.preview} ${e.data.dropped}`),
      ["REQUEST 8 16", "RESPONSE 8 16", "REQUEST 9 16", "RESPONSE 9 16"],
    );
    await tap.cancel();
    // The tap is gone with its reader: the session's hook is clear and a tap may open.
    assert.equal(t.server.transport.session(id)!.tap, undefined);
    const again = await open(t.app, `/sessions/${t.clients[1].session!.id}/tap`);
    await again.cancel();
  } finally {
    await t.close();
  }
});

Deno.test("a tap ends with its session; two taps share a session; taps can be turned off", async () => {
  const t = await rig();
  try {
    const client = t.clients[0];
    const session = t.server.transport.session(client.session!.id)!;
    const one = await open(t.app, `/sessions/${session.id}/tap`);
    const two = await open(t.app, `/sessions/${session.id}/tap`);
    await client.call("echo", "both");
    for (const tap of [one, two]) {
      assert.equal((await tap.nextOf("frame")).data.preview, '"both"');
    }
    await two.cancel();
    assert.notEqual(session.tap, undefined);
    const kicked = await t.app.request(`/sessions/${session.id}`, {
      method: "DELETE",
      headers: AUTH,
      body: JSON.stringify({ reason: "maintenance" }),
    });
    assert.equal(kicked.status, 204);
    const events = await one.until((e) => e.event === "end");
    const error = events.find((e) => e.data.type === "ERROR")!.data;
    assert.deepEqual([error.direction, error.seq], ["out", 0]);
    assert.match(error.preview, /"code":"aborted","message":"maintenance"/);
    assert.match(events.at(-1)!.data.reason, /^Session closed: aborted: maintenance$/);
    assert.equal(await one.next(), undefined);
    assert.equal(session.tap, undefined);

    const off = adminApp(t.server, { maxTaps: 0 });
    const refused = await off.request(`/sessions/${t.clients[1].session!.id}/tap`);
    assert.equal(refused.status, 403);
    assert.match(await (await off.request("/")).text(), /data-taps="off"/);
  } finally {
    await t.close();
  }
});

Deno.test("the signal ends every event stream and tap, over a real HTTP server", async () => {
  const stop = new AbortController();
  const t = await rig({ signal: stop.signal });
  const http = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, t.app.fetch);
  try {
    const base = `http://127.0.0.1:${http.addr.port}`;
    const events = new SseReader(await fetch(`${base}/events`, { headers: AUTH }));
    await events.nextOf("stats");
    const tap = new SseReader(
      await fetch(`${base}/sessions/${t.clients[0].session!.id}/tap`, { headers: AUTH }),
    );
    await tap.nextOf("open");
    stop.abort();
    assert.equal((await tap.nextOf("end")).data.reason, "Admin API closing");
    assert.equal(await tap.next(), undefined);
    assert.equal(await events.next(), undefined);
    const late = await fetch(`${base}/events`, { headers: AUTH });
    assert.equal(late.status, 503);
    await late.body?.cancel();
  } finally {
    await t.close();
    await http.shutdown();
  }
});

Deno.test("event streams end when the server shuts down", async () => {
  const t = await rig();
  const events = await open(t.app, "/events");
  await events.nextOf("stats");
  await t.close();
  // The next tick sees the server no longer accepting and ends the stream.
  while (await events.next() !== undefined) { /* read to the end */ }
  const res = await t.app.request("/events", { headers: AUTH });
  assert.equal(res.status, 503);
  await res.body?.cancel();
});

Deno.test("a stream read late gets the history as it was when it opened, then each sample once", async () => {
  const server = new RpcServer({ methods: new Methods() });
  const feed = new DashboardFeed(server, { maxStreams: 2, rows: 10, history: 50, intervalMs: 20 });
  try {
    const first = new SseReader(feed.open());
    await first.nextOf("stats");
    await first.nextOf("stats"); // a sample in the history
    const response = feed.open();
    await new Promise((resolve) => setTimeout(resolve, 60)); // ticks before it is read
    const late = new SseReader(response);
    const opened = (await late.nextOf("stats")).data;
    const times = opened.history.map((s: { t: number }) => s.t);
    assert.ok(times.length > 0);
    assert.ok(times.every((t: number) => t <= opened.sample.t), JSON.stringify(opened));
    const next = (await late.nextOf("stats")).data;
    assert.ok(next.history === undefined && next.sample.t > times.at(-1)!);
    await first.cancel();
    await late.cancel();
  } finally {
    feed.close();
    await server.shutdown();
  }
});

Deno.test("quantileMs interpolates inside the bucket holding the rank", () => {
  // Buckets: 0.5 ms, 1 ms, 2.5 ms, …; 10 calls in the first, 10 in the second.
  const counts = new Array(15).fill(0);
  counts[0] = 10;
  counts[1] = 10;
  assert.equal(quantileMs(0.5, counts), 0.5);
  assert.equal(quantileMs(0.75, counts), 0.75);
  assert.equal(quantileMs(0.25, counts), 0.25);
  assert.equal(quantileMs(0.5, new Array(15).fill(0)), null);
  const slow = new Array(15).fill(0);
  slow[14] = 1; // past the last bound (10 s)
  assert.equal(quantileMs(0.99, slow), 10_000);
});
