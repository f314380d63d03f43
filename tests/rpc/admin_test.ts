import assert from "node:assert/strict";
import { adminApp } from "../../rpc/admin.ts";
import { connect, type RpcClient } from "../../rpc/client.ts";
import { demoMethods } from "../../rpc/demo.ts";
import { RpcServer } from "../../rpc/server.ts";

const AUTH = { authorization: "Bearer s3cret" };

async function setup(): Promise<
  {
    server: RpcServer;
    clients: RpcClient[];
    http: Deno.HttpServer<Deno.NetAddr>;
    base: string;
    close(): Promise<void>;
  }
> {
  const server: RpcServer = new RpcServer({ methods: demoMethods(() => server) });
  const addr = server.listen({ port: 0 });
  const clients = [
    await connect(addr, { codecs: ["json"] }),
    await connect(addr, { codecs: ["msgpack"] }),
  ];
  const http = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    adminApp(server, { token: "s3cret", maxBodyBytes: 1024, audit: () => {} }).fetch,
  );
  const base = `http://127.0.0.1:${http.addr.port}`;
  return {
    server,
    clients,
    http,
    base,
    async close() {
      await Promise.all(clients.map((c) => c.close()));
      await server.shutdown();
      await http.shutdown();
    },
  };
}

Deno.test("admin API refuses requests without the bearer token", async () => {
  const t = await setup();
  try {
    const res = await fetch(`${t.base}/health`);
    assert.equal(res.status, 401);
    assert.equal((await res.json()).codeName, "unauthenticated");
    const ok = await fetch(`${t.base}/health`, { headers: AUTH });
    assert.deepEqual(await ok.json(), { status: "ok", accepting: true, sessions: 2 });
  } finally {
    await t.close();
  }
});

Deno.test("admin API lists, shows and kicks sessions", async () => {
  const t = await setup();
  try {
    const list = await (await fetch(`${t.base}/sessions?limit=1`, { headers: AUTH })).json();
    assert.equal(list.total, 2);
    assert.equal(list.sessions.length, 1);
    const id = t.clients[0].session!.id;
    const one = await (await fetch(`${t.base}/sessions/${id}`, { headers: AUTH })).json();
    assert.equal(one.id, id);
    assert.equal(one.codec, "json");
    assert.equal(one.state, "active");
    const missing = await fetch(`${t.base}/sessions/nope`, { headers: AUTH });
    assert.equal(missing.status, 404);
    assert.equal((await missing.json()).codeName, "not_found");
    const bad = await fetch(`${t.base}/sessions?limit=100000`, { headers: AUTH });
    assert.equal(bad.status, 400);
    await bad.body?.cancel();

    const closed = t.clients[0].session!.closed;
    const kick = await fetch(`${t.base}/sessions/${id}`, {
      method: "DELETE",
      headers: AUTH,
      body: JSON.stringify({ reason: "maintenance" }),
    });
    assert.equal(kick.status, 204);
    await closed;
    assert.equal(t.server.transport.session(id), undefined);
  } finally {
    await t.close();
  }
});

Deno.test("admin API broadcasts to a topic in each member's codec and notifies one session", async () => {
  const t = await setup();
  try {
    const received: unknown[][] = [[], []];
    for (const [i, client] of t.clients.entries()) {
      await client.call("chat.join", { room: "lobby" });
      client.subscribe("lobby", (params) => received[i].push(params));
    }
    const res = await fetch(`${t.base}/broadcast`, {
      method: "POST",
      headers: AUTH,
      body: JSON.stringify({ method: "lobby", params: { text: "hello" }, topic: "lobby" }),
    });
    assert.deepEqual(await res.json(), { delivered: 2, dropped: 0 });
    const topics = await (await fetch(`${t.base}/topics`, { headers: AUTH })).json();
    assert.deepEqual(topics, { topics: [{ topic: "lobby", members: 2 }] });

    const pushes = t.clients[1].pushes.getReader();
    const id = t.clients[1].session!.id;
    const notify = await fetch(`${t.base}/sessions/${id}/notify`, {
      method: "POST",
      headers: AUTH,
      body: JSON.stringify({ method: "news", params: [1, 2] }),
    });
    assert.deepEqual(await notify.json(), { sent: true });
    const { value } = await pushes.read();
    assert.equal(value?.method, "news");
    assert.deepEqual(value?.params, [1, 2]);
    pushes.releaseLock();
    assert.deepEqual(received, [[{ text: "hello" }], [{ text: "hello" }]]);
  } finally {
    await t.close();
  }
});

Deno.test("admin API rejects bad and oversized bodies with protocol codes", async () => {
  const t = await setup();
  try {
    const bad = await fetch(`${t.base}/broadcast`, { method: "POST", headers: AUTH, body: "{" });
    assert.equal(bad.status, 400);
    assert.equal((await bad.json()).codeName, "invalid_argument");
    const noMethod = await fetch(`${t.base}/broadcast`, {
      method: "POST",
      headers: AUTH,
      body: JSON.stringify({ params: 1 }),
    });
    assert.equal(noMethod.status, 400);
    await noMethod.body?.cancel();
    const big = await fetch(`${t.base}/broadcast`, {
      method: "POST",
      headers: AUTH,
      body: JSON.stringify({ method: "x", params: "y".repeat(4096) }),
    });
    assert.equal(big.status, 413);
    assert.equal((await big.json()).codeName, "resource_exhausted");
  } finally {
    await t.close();
  }
});

Deno.test("admin API exposes Prometheus metrics", async () => {
  const t = await setup();
  try {
    const res = await fetch(`${t.base}/metrics`, { headers: AUTH });
    const text = await res.text();
    assert.match(text, /^streamwire_sessions\{state="active"\} 2$/m);
    assert.match(text, /^streamwire_connections_accepted_total 2$/m);
    assert.match(text, /# TYPE streamwire_broadcasts_total counter/);
  } finally {
    await t.close();
  }
});

Deno.test("admin API answers JSON for every failure: 401 malformed or wrong token, 404 route, 400 query", async () => {
  const t = await setup();
  try {
    const cases: [string, Record<string, string>, number, string, RegExp][] = [
      ["/health", {}, 401, "unauthenticated", /^Missing bearer token$/],
      ["/health", { authorization: "Basic czNjcmV0" }, 401, "unauthenticated", /Malformed/],
      ["/health", { authorization: "Bearer" }, 401, "unauthenticated", /Malformed/],
      ["/health", { authorization: "Bearer wrong" }, 401, "unauthenticated", /^Bad bearer token$/],
      ["/nope", AUTH, 404, "not_found", /^No route 'GET \/nope'$/],
      ["/sessions?offset=abc", AUTH, 400, "invalid_argument", /'offset' .* got 'abc'/],
      ["/sessions?limit=0", AUTH, 400, "invalid_argument", /'limit' must be .* got '0'/],
      ["/sessions?limit=1.5", AUTH, 400, "invalid_argument", /got '1\.5'/],
      ["/sessions?state=happy", AUTH, 400, "invalid_argument", /'state' must be one of/],
      ["/sessions/none", AUTH, 404, "not_found", /^No session 'none'$/],
    ];
    for (const [path, headers, status, codeName, message] of cases) {
      const res = await fetch(`${t.base}${path}`, { headers });
      assert.equal(res.status, status, path);
      assert.match(res.headers.get("content-type") ?? "", /application\/json/, path);
      const body = await res.json();
      assert.equal(body.codeName, codeName, path);
      assert.match(body.message, message, path);
      if (status === 401) assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer/);
    }
  } finally {
    await t.close();
  }
});

Deno.test("admin API filters sessions by state, topic and remote address, with pagination", async () => {
  const t = await setup();
  try {
    await t.clients[0].call("chat.join", { room: "lobby" });
    const get = async (query: string) =>
      await (await fetch(`${t.base}/sessions?${query}`, { headers: AUTH })).json();
    assert.equal((await get("state=active")).total, 2);
    assert.equal((await get("state=connecting")).total, 0);
    const lobby = await get("topic=lobby");
    assert.equal(lobby.total, 1);
    assert.equal(lobby.sessions[0].id, t.clients[0].session?.id);
    assert.equal((await get("remote=tcp://127.0.0.1:")).total, 2);
    assert.equal((await get("remote=tcp://10.")).total, 0);
    const page = await get("state=active&limit=1&offset=1");
    assert.deepEqual([page.total, page.offset, page.sessions.length], [2, 1, 1]);
  } finally {
    await t.close();
  }
});

Deno.test("admin API: /ready follows draining, mutating routes can be turned off, mutations are audited", async () => {
  const server: RpcServer = new RpcServer({ methods: demoMethods(() => server) });
  const client = await connect(server.listen({ port: 0 }), { reconnect: false });
  const entries: unknown[] = [];
  const app = adminApp(server, { audit: (entry) => entries.push(entry) });
  const locked = adminApp(server, { readOnly: true });
  try {
    const ready = await app.request("/ready");
    assert.deepEqual([ready.status, await ready.json()], [200, { ready: true }]);
    const id = client.session!.id;
    const denied = await locked.request(`/sessions/${id}`, { method: "DELETE" });
    assert.equal(denied.status, 403);
    assert.equal((await denied.json()).codeName, "permission_denied");
    assert.equal((await locked.request("/topics")).status, 200); // reading still works
    const sent = await app.request("/broadcast", {
      method: "POST",
      body: JSON.stringify({ method: "news", params: 1 }),
    });
    assert.equal(sent.status, 200);
    await sent.body?.cancel();
    const closed = client.session!.closed;
    const kicked = await app.request(`/sessions/${id}`, {
      method: "DELETE",
      body: JSON.stringify({ reason: "maintenance" }),
    });
    assert.equal(kicked.status, 204);
    await closed;
    assert.deepEqual(
      entries.map((e) => {
        const { action, target, detail } = e as Record<string, unknown>;
        return { action, target, detail };
      }),
      [
        { action: "broadcast", target: "*", detail: { method: "news" } },
        { action: "kick", target: id, detail: { reason: "maintenance" } },
      ],
    );
    const draining = server.shutdown();
    const notReady = await app.request("/ready");
    assert.deepEqual([notReady.status, await notReady.json()], [503, { ready: false }]);
    await draining;
  } finally {
    await client.close();
    await server.shutdown();
  }
});
