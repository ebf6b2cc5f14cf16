/**
 * The dashboard's one page, in the program (no CDN, no network): a table of
 * the fleet, charts of ship rate and duration per domain, effort and backend
 * (SVG) and the selected agent's log tail. The server draws the first view
 * into the page (dashboard/render.ts), so it shows the fleet at once and
 * without JavaScript; its script ({@linkcode SCRIPT}, served as `/app.js`:
 * the page's Content-Security-Policy allows no inline script or style) then
 * swaps in the fragments of each `view` server-sent event (`/api/events`):
 * no polling loop, no second renderer. A `?token=T` in its address is passed
 * on to its own requests.
 *
 * @module
 */
import { esc, type View } from "./render.ts";

/** The page's style sheet (`/app.css`). */
export const STYLE = `body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; }
th, td { padding: 0.3em 0.7em; border-bottom: 1px solid #ddd; text-align: left; }
tbody tr { cursor: pointer; } tbody tr.selected { background: #eef4ff; }
.watched, .adopted, .shipped { color: #0a6; } .orphaned { color: #c60; } .settled { color: #888; }
.killed, .ci_failed, .stalled { color: #c00; }
meter { width: 60px; height: 10px; margin-left: 0.5em; vertical-align: middle; }
.last { max-width: 28em; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
#charts { display: flex; gap: 2em; flex-wrap: wrap; margin-top: 1.5em; }
figure { margin: 0; } figcaption { font-weight: 600; margin-bottom: 0.3em; }
pre { background: #f6f6f6; padding: 0.7em; max-height: 20em; overflow: auto; font-size: 12px; }
#error { color: #c00; } #conn { color: #888; font-size: 12px; }
#spend li.over { color: #c00; font-weight: 600; } .cost { text-align: right; }
`;

/** The page's script (`/app.js`): swaps in each view, selects a row, shows its log. */
export const SCRIPT = `"use strict";
const token = new URLSearchParams(location.search).get("token");
const withToken = (url) => url + (token ? (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token) : "");
const $ = (id) => document.getElementById(id);
let selected = null;
let isPainted = false;
// The lease whose log was asked for last: an answer for another lease is dropped.
let logLease = null;

function mark() {
  for (const tr of $("leases").rows) tr.classList.toggle("selected", Number(tr.dataset.lease) === selected);
}

function apply(v) {
  $("totals").textContent = v.totals;
  $("counters").textContent = v.counters;
  $("leases").innerHTML = v.rows;
  $("spend").innerHTML = v.spend;
  $("held").innerHTML = v.held;
  for (const [id, c] of Object.entries(v.charts)) {
    const svg = $(id);
    svg.setAttribute("width", c.width);
    svg.setAttribute("height", c.height);
    svg.innerHTML = c.svg;
  }
  $("error").textContent = "";
  if (selected === null) selected = v.firstLive;
  mark();
  if (selected !== null) showLog(selected);
  painted();
}

// When the first fleet is on screen (the bench reads this mark).
function painted() {
  if (isPainted) return;
  isPainted = true;
  requestAnimationFrame(() => performance.mark("chump-fleet-painted"));
}

// The title and the text change together, when the text arrives: a click on a row while another
// row's log is on its way never shows one lease's log under the other's title. Answers for the
// lease asked for last all show (each view event asks again; none waits for another).
async function showLog(lease) {
  logLease = lease;
  let text;
  try {
    const r = await fetch(withToken("/api/log/" + lease + "?lines=40"));
    text = await r.text();
  } catch (e) {
    text = "cannot read the log: " + e;
  }
  if (lease !== logLease) return;
  $("log-title").textContent = "log of lease " + lease;
  $("log").textContent = text;
}

$("leases").addEventListener("click", (e) => {
  const tr = e.target.closest("tr");
  if (!tr) return;
  selected = Number(tr.dataset.lease);
  mark();
  showLog(selected);
});

const first = document.body.dataset.firstLive;
if (document.body.dataset.drawn === "yes") {
  if (first) { selected = Number(first); mark(); showLog(selected); }
  painted();
}
$("conn").textContent = "connecting...";
const events = new EventSource(withToken("/api/events"));
events.addEventListener("view", (e) => {
  $("conn").textContent = "live: updated " + new Date().toLocaleTimeString();
  apply(JSON.parse(e.data));
});
events.addEventListener("failure", (e) => {
  $("error").textContent = "cannot read the status: " + JSON.parse(e.data);
});
events.addEventListener("error", () => { $("conn").textContent = "reconnecting..."; });
`;

/** The page's icon (`/favicon.svg`, also answered at `/favicon.ico`). */
export const FAVICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">` +
  `<rect width="16" height="16" rx="3" fill="#246"/>` +
  `<rect x="3" y="9" width="2" height="4" fill="#4a8"/><rect x="7" y="6" width="2" height="7" ` +
  `fill="#4a8"/><rect x="11" y="3" width="2" height="10" fill="#4a8"/></svg>\n`;

/**
 * The page, with `view` drawn in (undefined: the status could not be read,
 * `problem` says why).
 *
 * @example
 * ```ts
 * pageHtml(undefined, "the DB is locked").includes("the DB is locked"); // true
 * ```
 */
export function pageHtml(view: View | undefined, problem = ""): string {
  const chart = (id: keyof View["charts"]) => {
    const c = view?.charts[id];
    return c
      ? `<svg id="${id}" width="${c.width}" height="${c.height}">${c.svg}</svg>`
      : `<svg id="${id}"></svg>`;
  };
  const body = view
    ? ` data-drawn="yes" data-first-live="${view.firstLive ?? ""}"`
    : ` data-drawn="no" data-first-live=""`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>chump-orchestrator fleet</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/app.css">
</head>
<body${body}>
<h1>Fleet</h1>
<p id="totals">${esc(view?.totals ?? "cannot read the status")}</p>
<p id="counters">${esc(view?.counters ?? "")}</p>
<p id="error">${esc(problem)}</p>
<table>
<thead><tr><th>lease</th><th>gap</th><th>state</th><th>watch</th><th>pid</th><th>alive</th>
<th>elapsed / deadline</th><th>idle</th><th>pr</th><th>cost</th><th>outcome</th><th>last line</th>
<th>log</th></tr></thead>
<tbody id="leases">${view?.rows ?? ""}</tbody>
</table>
<section id="spend">${view?.spend ?? ""}</section>
<section id="held">${view?.held ?? ""}</section>
<section id="charts">
<figure><figcaption>ship rate and median duration by domain</figcaption>${
    chart("by-domain")
  }</figure>
<figure><figcaption>by effort</figcaption>${chart("by-effort")}</figure>
<figure><figcaption>by backend</figcaption>${chart("by-backend")}</figure>
</section>
<h2 id="log-title">log</h2>
<pre id="log">click a row to see its agent's output</pre>
<p id="conn">as of the page's load (live updates need JavaScript)</p>
<script src="/app.js"></script>
</body>
</html>
`;
}
