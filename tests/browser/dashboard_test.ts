// The admin dashboard in headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core) against the demo server as `serve` runs it,
// with a token and TCP clients making calls: the page asks for the token,
// its charts and session table fill in and change, the kick button removes
// a session whose client sees the reason, and a tap shows the frames of a
// call made during the test. Its screenshot is kept in
// tests/browser/artifacts/ (gitignored); with STREAMWIRE_UPDATE_SCREENSHOT=1
// it also replaces docs/dashboard.png.

import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { DEFAULT_CONFIG } from "../../cli/config.ts";
import { runServer } from "../../cli/run_server.ts";
import { connect, type RpcClient } from "../../rpc/client.ts";
import { SseReader } from "../rpc/_sse.ts";

const CHROMIUM = Deno.env.get("STREAMWIRE_CHROMIUM") ?? "/usr/bin/chromium";
const SCREENSHOT = new URL("../../docs/dashboard.png", import.meta.url);
const UPDATE_SCREENSHOT = Deno.env.get("STREAMWIRE_UPDATE_SCREENSHOT") === "1";
const ARTIFACTS = new URL("./artifacts/", import.meta.url);
const AUTH = { authorization: "Bearer s3cret" };

/**
 * Traffic paced by the dashboard's own events: after each one (a second
 * apart), a burst of calls of a size that varies, one in five failing, so
 * that the charts have something to draw. No timer of its own.
 */
function pace(
  events: SseReader,
  client: RpcClient,
): { ticks(n: number): Promise<void>; stop(): Promise<void> } {
  let seen = 0;
  const waiting: { n: number; resolve(): void }[] = [];
  const running = (async () => {
    while (await events.next() !== undefined) {
      seen++;
      for (const w of waiting.filter((w) => w.n <= seen)) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve();
      }
      const calls = 20 + (seen % 4) * 15;
      for (let i = 0; i < calls; i++) {
        await (i % 5 === 4
          ? client.call("add", "not numbers").catch(() => {})
          : client.call("add", [i, seen]));
      }
    }
  })();
  return {
    ticks: (n) =>
      n <= seen ? Promise.resolve() : new Promise((resolve) => waiting.push({ n, resolve })),
    async stop() {
      await events.cancel();
      await running;
    },
  };
}

Deno.test("the admin dashboard shows live numbers, kicks a session and taps another", async () => {
  const running = runServer(
    // A short heartbeat: the server pings an idle session soon, and the table shows its RTT.
    {
      ...DEFAULT_CONFIG,
      port: 0,
      wsPort: 0,
      adminPort: 0,
      adminToken: "s3cret",
      heartbeatMs: 2000,
    },
    { logger: () => {} },
  );
  const clients = await Promise.all([
    connect(running.addr, { codecs: ["json"] }),
    connect(running.addr, { codecs: ["msgpack"] }),
    // Not back after the kick: the sessions chart then counts 2.
    connect(running.addr, { codecs: ["json"], reconnect: false }),
  ]);
  const [ann, bob, cid] = clients;
  const browser = await chromium.launch({ executablePath: CHROMIUM });
  const traffic = pace(
    new SseReader(await fetch(`${running.adminAddr}/events`, { headers: AUTH })),
    bob,
  );
  try {
    await ann.call("chat.join", { room: "lobby" });
    await bob.call("chat.join", { room: "lobby" });
    await bob.call("chat.join", { room: "news" });

    const page = await browser.newPage({ viewport: { width: 1100, height: 640 } });
    const failures: string[] = [];
    page.on("pageerror", (error) => failures.push(error.message));
    await page.goto(`${running.adminAddr}/`);
    // A token is set: the page asks for it before it reads anything.
    await page.locator("#login").waitFor();
    await page.fill("#token", "s3cret");
    await page.click('#login button[type="submit"]');
    await page.locator('body[data-live="true"]').waitFor();
    assert.equal(
      await page.evaluate(() => sessionStorage.getItem("streamwire-admin-token")),
      "s3cret",
    );

    // Any digit but 0: the rates of bob's calls (the page's CSP forbids
    // eval, so locators rather than waitForFunction).
    await page.locator("#value-calls", { hasText: /[1-9]/ }).waitFor();
    await page.locator("#value-errors", { hasText: /[1-9]/ }).waitFor();
    await page.locator("#value-latency", { hasText: /^[\d.]+ \/ [\d.]+ ms$/ }).waitFor();
    assert.equal(await page.textContent("#value-sessions"), "3");
    const before = await page.textContent("#value-calls");
    await page.locator("#value-calls", { hasNotText: before! }).waitFor();
    assert.match(
      (await page.locator("#chart-calls path").first().getAttribute("d"))!,
      /^M[\d.]+ [\d.]+ L/,
    );
    const row = (id: string) => page.locator(`#sessions-body tr[data-session="${id}"]`);
    await row(cid.session!.id).waitFor();
    assert.equal(await page.locator("#sessions-body tr").count(), 3);
    assert.equal(await row(bob.session!.id).locator(".state").textContent(), "active");
    assert.equal(await row(bob.session!.id).locator(".topics").textContent(), "lobby, news");
    assert.match(
      (await row(ann.session!.id).locator(".remote").textContent())!,
      /^tcp:\/\/127\.0\.0\.1:\d+$/,
    );
    assert.deepEqual(
      await page.locator("#topics-body tr").evaluateAll((rows) =>
        rows.map((r) => [...r.children].map((td) => td.textContent))
      ),
      [["lobby", "2"], ["news", "1"]],
    );

    // Kick: the row goes, the sessions chart follows, the client sees the reason.
    const kicked = cid.session!;
    await row(kicked.id).locator("button.kick").click();
    await row(kicked.id).waitFor({ state: "detached" });
    await kicked.closed;
    assert.equal(kicked.closeReason?.codeName, "aborted");
    assert.equal(kicked.closeReason?.message, "Kicked from the dashboard");
    await page.locator("#value-sessions", { hasText: /^2$/ }).waitFor();

    // Tap ann's session, then call: the REQUEST and its RESPONSE appear.
    await row(ann.session!.id).locator("button.tap").click();
    await page.locator('#tap[data-state="open"]').waitFor();
    assert.deepEqual(await ann.call("echo", { note: "seen on the tap" }), {
      note: "seen on the tap",
    });
    const request = page.locator('#tap-body tr[data-type="REQUEST"]', {
      hasText: "seen on the tap",
    });
    const response = page.locator('#tap-body tr[data-type="RESPONSE"]', {
      hasText: "seen on the tap",
    });
    await request.waitFor();
    await response.waitFor();
    assert.equal(await request.locator(".method").textContent(), "echo");
    assert.equal(await request.locator(".dir").textContent(), "→ in");
    assert.equal(await response.locator(".dir").textContent(), "← out");
    assert.equal(
      await request.locator(".seq").textContent(),
      await response.locator(".seq").textContent(),
    );
    assert.equal(await request.locator(".preview").textContent(), '{"note":"seen on the tap"}');
    assert.equal(await page.textContent("#tap-dropped"), "0");

    // Idle, ann is pinged: the tap shows the PONG, the table its RTT.
    await page.locator('#tap-body tr[data-type="PONG"]').first().waitFor();
    await row(ann.session!.id).locator(".rtt", { hasText: /^\d+ ms$/ }).waitFor();
    // A few more seconds of traffic on the charts, then the picture.
    await traffic.ticks(10);
    const picture = await page.screenshot();
    // A PNG (its signature), of the whole viewport: the page rendered.
    assert.deepEqual([...picture.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    assert.ok(picture.length > 10_000, `screenshot of ${picture.length} bytes`);
    await Deno.mkdir(ARTIFACTS, { recursive: true });
    await Deno.writeFile(new URL("dashboard.png", ARTIFACTS), picture);
    if (UPDATE_SCREENSHOT) await Deno.writeFile(SCREENSHOT, picture);
    assert.deepEqual(failures, []);

    await page.click("#tap-close");
    await page.locator('#tap[data-state="closed"]').waitFor();
    await page.close();
  } finally {
    await traffic.stop();
    await browser.close();
    await Promise.all(clients.map((c) => c.close()));
    await running.shutdown();
  }
});
