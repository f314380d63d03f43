// The dashboard page's script, sent inline (no build step, no framework):
// reads `GET /events` and a tap's `GET /sessions/:id/tap` with fetch, so
// that the bearer token goes in a header (EventSource cannot send one),
// draws the charts as SVG paths and keeps the tables current. Plain
// browser JavaScript in a string: Deno type-checks no DOM code. Private to
// rpc/_dashboard_page.tsx.

/** The script. It holds no backtick and no `</script>`. */
export const DASHBOARD_SCRIPT = String.raw`
"use strict";
const body = document.body;
const base = location.pathname.endsWith("/") ? location.pathname : location.pathname + "/";
const TOKEN_KEY = "streamwire-admin-token";
const needsToken = body.dataset.token === "required";
const readOnly = body.dataset.readOnly === "true";
const tapsOn = body.dataset.taps === "on";
const TAP_ROWS = Number(body.dataset.tapRows);
const $ = (id) => document.getElementById(id);

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function headers(extra) {
  const h = Object.assign({}, extra);
  const t = token();
  if (t) h.authorization = "Bearer " + t;
  return h;
}

class Unauthorized extends Error {}

/** Asks for the token (once per tab: it is kept in sessionStorage). */
function askToken(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  $("login-message").textContent = message || "";
  $("login").hidden = false;
  $("token").focus();
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  const value = $("token").value.trim();
  if (!value) return;
  sessionStorage.setItem(TOKEN_KEY, value);
  $("token").value = "";
  $("login").hidden = true;
  startEvents();
});

async function check(res) {
  if (res.status === 401) {
    askToken("The admin API refused the token.");
    throw new Unauthorized("unauthenticated");
  }
  if (!res.ok) {
    let message = res.status + " " + res.statusText;
    try {
      message = (await res.json()).message || message;
    } catch (_) { /* not JSON */ }
    throw new Error(message);
  }
  return res;
}

/** Reads an event stream with fetch; calls onEvent(name, data) per event. */
async function readEvents(path, signal, onEvent) {
  const res = await check(await fetch(base + path, {
    headers: headers({ accept: "text/event-stream" }),
    cache: "no-store",
    signal,
  }));
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length > 0) onEvent(name, JSON.parse(data.join("\n")));
    }
  }
}

// ---- charts ----------------------------------------------------------

const history = [];
const HISTORY = 120;
const CHARTS = [
  { id: "sessions", lines: ["sessions"], unit: "" },
  { id: "calls", lines: ["callsPerSec"], unit: "/s" },
  { id: "errors", lines: ["errorsPerSec"], unit: "/s" },
  { id: "latency", lines: ["p50Ms", "p99Ms"], unit: " ms" },
];

function format(value, unit) {
  if (value === null || value === undefined) return "–";
  const n = Math.abs(value) >= 100 ? Math.round(value) : Math.round(value * 100) / 100;
  return n.toLocaleString("en") + unit;
}

/** One polyline path per series over the kept history; gaps where a value is null. */
function drawChart(chart) {
  const svg = $("chart-" + chart.id);
  const width = 240;
  const height = 60;
  let max = 0;
  for (const s of history) {
    for (const key of chart.lines) if (s[key] > max) max = s[key];
  }
  max = max > 0 ? max * 1.1 : 1;
  // The newest sample at the right edge; at least 30 slots, so that a
  // page open for a few seconds does not stretch them across the chart.
  const slots = Math.min(HISTORY, Math.max(30, history.length));
  const step = width / (slots - 1);
  const offset = slots - history.length;
  chart.lines.forEach((key, n) => {
    // Runs of known values; a run of one point gets a short stroke to be seen.
    let d = "";
    let run = 0;
    history.forEach((s, i) => {
      const v = s[key];
      if (v === null || v === undefined) {
        if (run === 1) d += "h2 ";
        run = 0;
        return;
      }
      const x = ((offset + i) * step).toFixed(1);
      const y = (height - (v / max) * (height - 2) - 1).toFixed(1);
      d += (run === 0 ? "M" : "L") + x + " " + y + " ";
      run++;
    });
    if (run === 1) d += "h-2 ";
    svg.querySelectorAll("path")[n].setAttribute("d", d.trim());
  });
  svg.querySelector(".max").textContent = format(max / 1.1, chart.unit);
  const last = history[history.length - 1] || {};
  const text = chart.lines.map((key) => format(last[key], "")).join(" / ") +
    (last[chart.lines[0]] === null || last[chart.lines[0]] === undefined ? "" : chart.unit);
  const out = $("value-" + chart.id);
  out.textContent = text;
  out.dataset.ready = String(last[chart.lines[0]] !== null && last[chart.lines[0]] !== undefined);
}

// ---- tables ----------------------------------------------------------

const rows = new Map();

function cell(tr, name, text) {
  tr.querySelector("." + name).textContent = text;
}

function sessionRow(s) {
  let tr = rows.get(s.id);
  if (tr === undefined) {
    tr = $("session-row").content.firstElementChild.cloneNode(true);
    tr.dataset.session = s.id;
    const kick = tr.querySelector(".kick");
    const tap = tr.querySelector(".tap");
    kick.hidden = readOnly;
    tap.hidden = !tapsOn;
    kick.addEventListener("click", () => kickSession(s.id, tr));
    tap.addEventListener("click", () => openTap(s.id));
    rows.set(s.id, tr);
  }
  cell(tr, "id", s.id.slice(0, 8));
  tr.querySelector(".id").title = s.id;
  cell(tr, "remote", s.remoteAddr);
  cell(tr, "state", s.state);
  cell(tr, "rtt", s.rttMs === null ? "–" : s.rttMs + " ms");
  cell(
    tr,
    "topics",
    s.topics.join(", ") + (s.topicCount > s.topics.length ? " (+" + (s.topicCount - s.topics.length) + ")" : ""),
  );
  cell(tr, "queue", s.queuedFrames + " / " + s.queuedBytes + " B");
  return tr;
}

function showTables(event) {
  const tbody = $("sessions-body");
  const seen = new Set();
  for (const s of event.rows) {
    seen.add(s.id);
    const tr = sessionRow(s);
    if (tr.parentNode !== tbody) tbody.appendChild(tr);
  }
  for (const [id, tr] of rows) {
    if (!seen.has(id)) {
      tr.remove();
      rows.delete(id);
    }
  }
  $("sessions-total").textContent = event.total > event.rows.length
    ? event.rows.length + " of " + event.total
    : String(event.total);
  const topics = $("topics-body");
  topics.replaceChildren(...event.topics.map((t) => {
    const tr = document.createElement("tr");
    const name = document.createElement("td");
    const members = document.createElement("td");
    name.textContent = t.topic;
    members.textContent = String(t.members);
    members.className = "num";
    tr.append(name, members);
    return tr;
  }));
  $("topics-empty").hidden = event.topics.length > 0;
}

async function kickSession(id, tr) {
  try {
    await check(await fetch(base + "sessions/" + encodeURIComponent(id), {
      method: "DELETE",
      headers: headers({ "content-type": "application/json" }),
      body: JSON.stringify({ reason: "Kicked from the dashboard" }),
    }));
    tr.remove();
    rows.delete(id);
    status("Kicked " + id);
  } catch (error) {
    if (!(error instanceof Unauthorized)) status("Kick failed: " + error.message);
  }
}

// ---- the live numbers -----------------------------------------------

let events;

function status(text) {
  $("status").textContent = text;
}

async function startEvents() {
  events?.abort();
  const controller = events = new AbortController();
  let delay = 1000;
  while (!controller.signal.aborted) {
    try {
      await readEvents("events", controller.signal, (name, event) => {
        if (name !== "stats") return;
        delay = 1000;
        if (event.history) history.splice(0, history.length, ...event.history);
        if (!event.history || history.at(-1)?.t !== event.sample.t) history.push(event.sample);
        while (history.length > HISTORY) history.shift();
        for (const chart of CHARTS) drawChart(chart);
        showTables(event);
        body.dataset.live = "true";
        status("Live, " + new Date(event.sample.t).toLocaleTimeString("en"));
      });
      status("The server ended the stream; reconnecting.");
    } catch (error) {
      if (error instanceof Unauthorized || controller.signal.aborted) return;
      status("Disconnected (" + error.message + "); reconnecting.");
    }
    body.dataset.live = "false";
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 10000);
  }
}

// ---- the wire tap ----------------------------------------------------

let tap;

function closeTap() {
  tap?.abort();
  tap = undefined;
  $("tap").dataset.state = "closed";
  $("tap-close").hidden = true;
}

$("tap-close").addEventListener("click", () => {
  closeTap();
  $("tap-status").textContent = "Tap closed.";
});

async function openTap(id) {
  closeTap();
  const controller = tap = new AbortController();
  $("tap-body").replaceChildren();
  $("tap-dropped").textContent = "0";
  $("tap-title").textContent = id;
  $("tap-status").textContent = "Opening…";
  $("tap-close").hidden = false;
  $("tap").hidden = false;
  try {
    await readEvents("sessions/" + encodeURIComponent(id) + "/tap", controller.signal, (name, e) => {
      if (name === "open") {
        $("tap").dataset.state = "open";
        $("tap-status").textContent = "Tapping (" + e.codec + "). Frames appear as they pass.";
      } else if (name === "frame") {
        addFrame(e);
      } else if (name === "end") {
        $("tap-dropped").textContent = String(e.dropped);
        $("tap-status").textContent = e.reason;
      }
    });
  } catch (error) {
    if (!controller.signal.aborted && !(error instanceof Unauthorized)) {
      $("tap-status").textContent = "Tap failed: " + error.message;
    }
  }
  if (tap === controller) {
    $("tap").dataset.state = "closed";
    $("tap-close").hidden = true;
  }
}

function addFrame(f) {
  const tr = $("frame-row").content.firstElementChild.cloneNode(true);
  tr.dataset.type = f.type;
  cell(tr, "time", new Date(f.t).toLocaleTimeString("en", { hour12: false }) + "." + String(f.t % 1000).padStart(3, "0"));
  cell(tr, "dir", f.direction === "in" ? "→ in" : "← out");
  cell(tr, "type", f.type);
  cell(tr, "seq", String(f.seq));
  cell(tr, "size", String(f.size));
  cell(tr, "method", f.method || "");
  cell(tr, "preview", f.preview);
  const tbody = $("tap-body");
  tbody.prepend(tr);
  while (tbody.children.length > TAP_ROWS) tbody.lastElementChild.remove();
  $("tap-dropped").textContent = String(f.dropped);
}

if (needsToken && !token()) askToken("");
else startEvents();
`;
