/**
 * The demo page as HTTP routes, for the demo server: `/demo` (the page,
 * with its module script inline) and `/streamwire.js` (the browser bundle,
 * built on the first request and then kept in memory). The admin port
 * serves the admin dashboard at `/`, so the demo page lives beside it.
 *
 * @module
 */

import { buildBundle } from "./bundle.ts";

/** Options of {@linkcode demoAssets}. */
export interface DemoAssetsOptions {
  /** Makes the bundle served at `/streamwire.js`. @default {buildBundle} */
  bundle?: () => Promise<Uint8Array>;
  /**
   * Where the page's client connects, when not to the page's own origin:
   * the WebSocket listener's port and path, on the host the page was
   * requested from (`wss:` when `secure`).
   *
   * @default {undefined: ws(s)://<the page's host>/}
   */
  webSocket?: { port: number; path: string; secure?: boolean };
}

/** Answers one request, or returns `undefined` for a path it does not serve. */
export type AssetHandler = (request: Request) => Promise<Response> | undefined;

const FILES: Record<string, [file: string, type: string]> = {
  "/demo": ["./demo/index.html", "text/html; charset=utf-8"],
  "/demo/": ["./demo/index.html", "text/html; charset=utf-8"],
};
const JS = "text/javascript; charset=utf-8";

/**
 * The demo page's routes. The bundle is built once, on the first request
 * for `/streamwire.js` (concurrent requests wait for the same build); a
 * failed build answers 500 with the bundler's message and is tried again
 * on the next request.
 *
 * @param options How the bundle is made.
 * @returns A handler for `GET` and `HEAD` of the page's paths.
 *
 * @example Serve the page next to other routes
 * ```ts
 * import { demoAssets } from "./demo_assets.ts";
 * import assert from "node:assert/strict";
 *
 * const assets = demoAssets({ bundle: () => Promise.resolve(new TextEncoder().encode("export {};")) });
 * const page = await assets(new Request("http://localhost/demo"))!;
 * assert.match(await page.text(), /import \{ connect, demoContract \} from "\/streamwire.js"/);
 * assert.equal(await (await assets(new Request("http://localhost/streamwire.js"))!).text(), "export {};");
 * assert.equal(assets(new Request("http://localhost/health")), undefined);
 * assert.equal(assets(new Request("http://localhost/")), undefined); // the admin dashboard's
 *
 * const elsewhere = demoAssets({ webSocket: { port: 9002, path: "/" } });
 * const html = await (await elsewhere(new Request("http://127.0.0.1:9001/demo"))!).text();
 * assert.match(html, /content="ws:\/\/127\.0\.0\.1:9002\/"/);
 * ```
 */
export function demoAssets(options: DemoAssetsOptions = {}): AssetHandler {
  const make = options.bundle ?? (() => buildBundle());
  let bundle: Promise<Uint8Array> | undefined;
  return (request) => {
    if (request.method !== "GET" && request.method !== "HEAD") return undefined;
    const path = new URL(request.url).pathname;
    if (path === "/streamwire.js") {
      bundle ??= make();
      const building = bundle;
      return building.then(
        (bytes) => respond(request, bytes, JS),
        (error) => {
          if (bundle === building) bundle = undefined;
          return new Response(`Cannot build /streamwire.js: ${(error as Error).message}\n`, {
            status: 500,
          });
        },
      );
    }
    const file = FILES[path];
    if (file === undefined) return undefined;
    return fetch(new URL(file[0], import.meta.url)).then(async (response) => {
      let page = await response.text();
      const ws = options.webSocket;
      if (ws !== undefined) {
        const url = `${ws.secure ? "wss" : "ws"}://${hostOf(request)}:${ws.port}${ws.path}`;
        page = page.replace(
          '<meta name="streamwire-websocket" content="">',
          `<meta name="streamwire-websocket" content="${escapeAttribute(url)}">`,
        );
      }
      return respond(request, new TextEncoder().encode(page), file[1]);
    });
  };
}

/** The host name the request was made to, bracketed if IPv6. */
function hostOf(request: Request): string {
  return new URL(request.url).hostname;
}

function escapeAttribute(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");
}

function respond(request: Request, bytes: Uint8Array, type: string): Response {
  return new Response(request.method === "HEAD" ? null : bytes as Uint8Array<ArrayBuffer>, {
    headers: { "content-type": type, "cache-control": "no-cache" },
  });
}
