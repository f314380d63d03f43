/** @jsxImportSource hono/jsx */
// The dashboard page of the admin API, rendered on the server with Hono's
// JSX: markup and style only, with no data in it (the page is served
// without the token; its script fetches everything with it). Private to
// rpc/admin.ts.

import { DASHBOARD_SCRIPT } from "./_dashboard_script.ts";

/** What the page needs to know of the admin app. */
export interface PageOptions {
  /** Whether the API wants a bearer token (the page then asks for it). */
  tokenRequired: boolean;
  /** Mutating routes are off: no kick buttons. */
  readOnly: boolean;
  /** Taps can be opened. */
  taps: boolean;
  /** Tap rows kept on the page. */
  tapRows: number;
  /** Nonce of the inline script and style, allowed by the response's CSP. */
  nonce: string;
}

const STYLE = `
:root { color-scheme: light dark; --fg: #1d232a; --muted: #66707a; --line: #d8dde2; --bg: #fff;
  --panel: #f5f7f9; --a: #2563eb; --b: #d97706; --bad: #dc2626; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e9ec; --muted: #9aa4ad; --line: #38414a;
  --bg: #15191d; --panel: #1e2429; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; gap: 1rem; align-items: baseline; padding: .6rem 1rem; border-bottom: 1px solid var(--line); }
header h1 { font-size: 1.05rem; margin: 0; }
#status { color: var(--muted); font-size: .85rem; }
main { padding: .8rem 1rem; display: grid; gap: 1rem; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(230px, 1fr)); gap: .8rem; }
figure { margin: 0; padding: .5rem .6rem; background: var(--panel); border-radius: 6px; }
figcaption { display: flex; justify-content: space-between; font-size: .8rem; color: var(--muted); }
figcaption output { font-size: 1.05rem; color: var(--fg); font-variant-numeric: tabular-nums; }
svg { display: block; width: 100%; height: 60px; margin-top: .2rem; }
svg path { fill: none; stroke: var(--a); stroke-width: 1.5; vector-effect: non-scaling-stroke; }
svg path.second { stroke: var(--b); }
svg line { stroke: var(--line); }
svg text { fill: var(--muted); font-size: 9px; }
.legend-a { color: var(--a); } .legend-b { color: var(--b); }
section h2 { font-size: .95rem; margin: 0 0 .4rem; }
.tables { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 1fr); gap: 1rem; }
table { border-collapse: collapse; width: 100%; font-size: .85rem; }
th, td { text-align: left; padding: .25rem .45rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { color: var(--muted); font-weight: 500; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.preview { white-space: pre-wrap; word-break: break-all; font-family: ui-monospace, monospace; font-size: .8rem; }
td.id { font-family: ui-monospace, monospace; }
button { font: inherit; font-size: .8rem; padding: .1rem .5rem; border-radius: 4px; border: 1px solid var(--line);
  background: var(--bg); color: var(--fg); cursor: pointer; }
button.kick { border-color: var(--bad); color: var(--bad); }
#login { position: fixed; inset: 0; display: grid; place-items: center; background: rgb(0 0 0 / .45); }
#login[hidden] { display: none; }
#login div { background: var(--bg); padding: 1.2rem; border-radius: 8px; display: grid; gap: .5rem; min-width: 18rem; }
#tap .meta { color: var(--muted); font-size: .85rem; display: flex; gap: 1rem; align-items: center; }
.tap-scroll { max-height: 22rem; overflow: auto; }
@media (max-width: 800px) { .tables { grid-template-columns: 1fr; } }
`;

function Chart(props: { id: string; title: string; second?: string }) {
  return (
    <figure>
      <figcaption>
        <span>
          {props.second === undefined ? props.title : (
            <>
              {props.title} <span class="legend-a">p50</span> / <span class="legend-b">p99</span>
            </>
          )}
        </span>
        <output id={`value-${props.id}`} data-ready="false">–</output>
      </figcaption>
      <svg id={`chart-${props.id}`} viewBox="0 0 240 60" preserveAspectRatio="none" role="img">
        <line x1="0" y1="59.5" x2="240" y2="59.5" />
        <text class="max" x="2" y="9"></text>
        <path d="" />
        {props.second === undefined ? null : <path class="second" d="" />}
      </svg>
    </figure>
  );
}

/**
 * The page as HTML text.
 *
 * @param options What the page shows and how it authenticates.
 * @returns The document.
 */
export function dashboardPage(options: PageOptions): string {
  const page = (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>streamwire admin</title>
        <style nonce={options.nonce} dangerouslySetInnerHTML={{ __html: STYLE }} />
      </head>
      <body
        data-token={options.tokenRequired ? "required" : "none"}
        data-read-only={String(options.readOnly)}
        data-taps={options.taps ? "on" : "off"}
        data-tap-rows={String(options.tapRows)}
        data-live="false"
      >
        <header>
          <h1>streamwire</h1>
          <span id="status">Connecting…</span>
        </header>
        <main>
          <div class="charts">
            <Chart id="sessions" title="Sessions" />
            <Chart id="calls" title="Calls/s" />
            <Chart id="errors" title="Errors/s" />
            <Chart id="latency" title="Latency" second="p99" />
          </div>
          <div class="tables">
            <section>
              <h2>
                Sessions (<span id="sessions-total">0</span>)
              </h2>
              <table>
                <thead>
                  <tr>
                    <th>Id</th>
                    <th>Remote address</th>
                    <th>State</th>
                    <th class="num">RTT</th>
                    <th>Topics</th>
                    <th class="num">Queue</th>
                    <th></th>
                  </tr>
                </thead>
                <tbody id="sessions-body"></tbody>
              </table>
            </section>
            <section>
              <h2>Topics</h2>
              <table>
                <thead>
                  <tr>
                    <th>Topic</th>
                    <th class="num">Members</th>
                  </tr>
                </thead>
                <tbody id="topics-body"></tbody>
              </table>
              <p id="topics-empty">No topic has members.</p>
            </section>
          </div>
          <section id="tap" hidden data-state="closed">
            <h2>
              Wire tap <span id="tap-title"></span>
            </h2>
            <div class="meta">
              <span id="tap-status"></span>
              <span>
                dropped: <output id="tap-dropped">0</output>
              </span>
              <button type="button" id="tap-close" hidden>Close tap</button>
            </div>
            <div class="tap-scroll">
              <table>
                <thead>
                  <tr>
                    <th>Time</th>
                    <th>Dir</th>
                    <th>Type</th>
                    <th class="num">Seq</th>
                    <th class="num">Size</th>
                    <th>Method</th>
                    <th>Payload</th>
                  </tr>
                </thead>
                <tbody id="tap-body"></tbody>
              </table>
            </div>
          </section>
        </main>
        <form id="login" hidden>
          <div>
            <label for="token">Admin token</label>
            <input id="token" type="password" autocomplete="off" />
            <span id="login-message"></span>
            <button type="submit">Sign in</button>
          </div>
        </form>
        <template id="session-row">
          <tr>
            <td class="id"></td>
            <td class="remote"></td>
            <td class="state"></td>
            <td class="rtt num"></td>
            <td class="topics"></td>
            <td class="queue num"></td>
            <td>
              <button type="button" class="kick">Kick</button>{" "}
              <button type="button" class="tap">Tap</button>
            </td>
          </tr>
        </template>
        <template id="frame-row">
          <tr>
            <td class="time"></td>
            <td class="dir"></td>
            <td class="type"></td>
            <td class="seq num"></td>
            <td class="size num"></td>
            <td class="method"></td>
            <td class="preview"></td>
          </tr>
        </template>
        <script nonce={options.nonce} dangerouslySetInnerHTML={{ __html: DASHBOARD_SCRIPT }} />
      </body>
    </html>
  );
  return `<!doctype html>${page}`;
}
