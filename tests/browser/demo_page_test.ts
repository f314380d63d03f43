// The demo page in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core) against a live demo server: chat between two pages, a
// count stream to 100%, reconnection after a restart, zlib from the server.
// A screenshot of the page is kept in tests/browser/artifacts/ (gitignored).

import assert from "node:assert/strict";
import { type Browser, chromium, type Page } from "playwright-core";
import { type DemoServer, startDemoServer, startZlibServer } from "./_demo_server.ts";

const CHROMIUM = Deno.env.get("STREAMWIRE_CHROMIUM") ?? "/usr/bin/chromium";
const ARTIFACTS = new URL("./artifacts/", import.meta.url);

/** Runs `body` with a fresh browser and demo server, and stops both afterwards. */
async function withDemo(
  body: (browser: Browser, server: { current: DemoServer }) => Promise<void>,
  start: () => DemoServer = startDemoServer,
): Promise<void> {
  const server = { current: start() };
  const browser = await chromium.launch({ executablePath: CHROMIUM });
  try {
    await body(browser, server);
  } finally {
    await browser.close();
    await server.current.stop();
  }
}

/** Opens the demo page and waits until its client is ready. */
async function openDemo(browser: Browser, url: string): Promise<Page> {
  const page = await browser.newPage();
  const failures: string[] = [];
  page.on("pageerror", (error) => failures.push(error.message));
  await page.goto(url);
  try {
    await page.locator('#state[data-state="ready"]').waitFor();
  } catch (error) {
    throw new Error(`The page did not get ready: ${failures.join("; ")}`, { cause: error });
  }
  return page;
}

async function join(page: Page, room: string): Promise<void> {
  await page.fill("#room", room);
  await page.click("#join");
  await page.locator("#joined", { hasText: `joined ${room}` }).waitFor();
}

async function say(page: Page, text: string): Promise<void> {
  await page.fill("#text", text);
  await page.click("#say");
}

Deno.test("two demo pages join a room and see each other's messages", async () => {
  await withDemo(async (browser, server) => {
    const [ann, bob] = await Promise.all([
      openDemo(browser, server.current.url),
      openDemo(browser, server.current.url),
    ]);
    await join(ann, "lobby");
    await join(bob, "lobby");
    await say(ann, "hello from ann");
    await bob.locator("#messages li", { hasText: "hello from ann" }).waitFor();
    await say(bob, "hi ann");
    await ann.locator("#messages li", { hasText: "hi ann" }).waitFor();
    // Each page sees its own message too (it is a member of the room).
    assert.deepEqual(
      await ann.locator("#messages li").evaluateAll((items) =>
        items.map((item) => item.textContent?.replace(/^.*: /, ""))
      ),
      ["hello from ann", "hi ann"],
    );
  });
});

Deno.test("the demo page reads a count stream until its progress bar is full", async () => {
  await withDemo(async (browser, server) => {
    const page = await openDemo(browser, server.current.url);
    await page.fill("#n", "20000");
    await page.click("#count");
    await page.locator("#count-status", { hasText: "20000 / 20000 (100%) done" }).waitFor();
    const progress = await page.$eval("#progress", (bar) => {
      const p = bar as unknown as { value: number; max: number };
      return [p.value, p.max];
    });
    assert.deepEqual(progress, [20000, 20000]);
    await join(page, "lobby");
    await say(page, "a message on the screenshot");
    await page.locator("#messages li").waitFor();
    await Deno.mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({
      path: decodeURIComponent(new URL("demo_page.png", ARTIFACTS).pathname),
      fullPage: true,
    });
  });
});

Deno.test("the demo page reconnects after the server restarts and its calls go on", async () => {
  await withDemo(async (browser, server) => {
    const page = await openDemo(browser, server.current.url);
    await join(page, "lobby");
    const ports = server.current.ports;
    await server.current.stop();
    await page.locator('#state:not([data-state="ready"])').waitFor();
    server.current = startDemoServer(ports);
    await page.locator('#state[data-state="ready"]').waitFor();
    // A call, a stream and the room (joined again by the page on the new session).
    assert.equal(
      await page.evaluate(() =>
        (globalThis as unknown as { streamwire: { demo: { add(p: number[]): Promise<number> } } })
          .streamwire.demo.add([2, 40])
      ),
      42,
    );
    await page.fill("#n", "1000");
    await page.click("#count");
    await page.locator("#count-status", { hasText: "1000 / 1000 (100%) done" }).waitFor();
    await page.waitForFunction(
      "document.querySelector('#joined').dataset.session === streamwire.client.session?.id",
    );
    await say(page, "back again");
    await page.locator("#messages li", { hasText: "back again" }).waitFor();
  });
});

Deno.test("a page inflates the server's zlib frames asynchronously, in order", async () => {
  await withDemo(async (browser, server) => {
    const page = await openDemo(browser, server.current.url);
    const result = await page.evaluate(async () => {
      const { client } = (globalThis as unknown as {
        streamwire: {
          client: {
            call(method: string, params: unknown): Promise<unknown>;
            session: { settings: { compression: string[] }; stats: { bytesIn: number } };
          };
        };
      }).streamwire;
      const big = (i: number) => `${i}:` + "streamwire compresses repetitive text. ".repeat(5000);
      const before = client.session.stats.bytesIn;
      // Large and small answers interleaved: the small ones must wait for the large before them.
      const answers = await Promise.all(
        [0, 1, 2, 3, 4, 5].map((i) => client.call("echo", i % 2 === 0 ? big(i) : i)),
      );
      return {
        compression: client.session.settings.compression,
        bytesIn: client.session.stats.bytesIn - before,
        ok: answers.every((answer, i) => answer === (i % 2 === 0 ? big(i) : i)),
        size: (answers[0] as string).length,
      };
    });
    assert.deepEqual(result.compression, ["zlib"]);
    assert.equal(result.ok, true);
    // Three answers of about 195 KB arrived in far fewer bytes.
    assert.ok(result.bytesIn < result.size / 10, `bytesIn ${result.bytesIn}`);
  }, startZlibServer);
});
