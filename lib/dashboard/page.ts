/**
 * The dashboard's one page, in the program (no CDN, no network): a table of
 * the fleet, charts of ship rate and duration per domain, effort and backend
 * (SVG drawn by the page itself) and the selected agent's log tail. It
 * redraws on each `status` server-sent event (`/api/events`): no polling
 * loop. A `?token=T` in its address is passed on to its own requests.
 *
 * @module
 */

/** The page's HTML. */
export const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>chump-orchestrator fleet</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; }
th, td { padding: 0.3em 0.7em; border-bottom: 1px solid #ddd; text-align: left; }
tbody tr { cursor: pointer; } tbody tr.selected { background: #eef4ff; }
.watched, .adopted, .shipped { color: #0a6; } .orphaned { color: #c60; } .settled { color: #888; }
.killed, .ci_failed, .stalled { color: #c00; }
.bar { display: inline-block; width: 60px; height: 8px; background: #eee; margin-left: 0.5em; }
.bar i { display: block; height: 100%; background: #4a8; } .bar i.late { background: #c60; }
.last { max-width: 28em; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
#charts { display: flex; gap: 2em; flex-wrap: wrap; margin-top: 1.5em; }
figure { margin: 0; } figcaption { font-weight: 600; margin-bottom: 0.3em; }
pre { background: #f6f6f6; padding: 0.7em; max-height: 20em; overflow: auto; font-size: 12px; }
#error { color: #c00; } #conn { color: #888; font-size: 12px; }
</style>
</head>
<body>
<h1>Fleet</h1>
<p id="totals">loading...</p>
<p id="counters"></p>
<p id="error"></p>
<table>
<thead><tr><th>lease</th><th>gap</th><th>state</th><th>watch</th><th>pid</th><th>alive</th>
<th>elapsed / deadline</th><th>idle</th><th>pr</th><th>outcome</th><th>last line</th><th>log</th></tr></thead>
<tbody id="leases"></tbody>
</table>
<section id="charts">
<figure><figcaption>ship rate and median duration by domain</figcaption><svg id="by-domain"></svg></figure>
<figure><figcaption>by effort</figcaption><svg id="by-effort"></svg></figure>
<figure><figcaption>by backend</figcaption><svg id="by-backend"></svg></figure>
</section>
<h2 id="log-title">log</h2>
<pre id="log">click a row to see its agent's output</pre>
<p id="conn">connecting...</p>
<script>
const token = new URLSearchParams(location.search).get("token");
const withToken = (url) => url + (token ? (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token) : "");
const $ = (id) => document.getElementById(id);
const el = (tag, attrs, text) => {
  const e = tag.startsWith("svg:")
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
};
const cell = (text, cls) => el("td", cls ? { class: cls } : {}, text);
const span = (s) => s === null || s === undefined ? "" : s < 60 ? Math.round(s) + "s"
  : s < 7200 ? Math.floor(s / 60) + "m" : Math.floor(s / 3600) + "h";
let selected = null;
let lastStatus = null;

function elapsedCell(l) {
  const td = cell(span(l.elapsedS) + (l.deadlineS ? " / " + span(l.deadlineS) : ""));
  if (l.deadlineS && l.state !== "ended") {
    const pct = Math.min(100, Math.round(100 * l.elapsedS / l.deadlineS));
    const bar = el("span", { class: "bar", title: pct + "% of the deadline" });
    bar.append(el("i", { class: pct >= 100 ? "late" : "", style: "width:" + pct + "%" }));
    td.append(bar);
  }
  return td;
}

function logCell(path) {
  const td = cell(path ? path.slice(path.lastIndexOf("/") + 1) : "");
  if (path) td.title = path;
  return td;
}

function chart(svg, groups) {
  // Per group: its ship rate (green, of the full width) and its median duration (grey, against the longest).
  const rowH = 34, width = 300, labelW = 90, barW = 120;
  const longest = Math.max(1, ...groups.map((g) => g.medianS ?? 0));
  svg.setAttribute("width", width);
  svg.setAttribute("height", Math.max(1, groups.length) * rowH);
  svg.replaceChildren(...groups.flatMap((g, i) => {
    const y = i * rowH;
    const rate = Math.round(100 * g.shipRate);
    const durW = Math.round(barW * (g.medianS ?? 0) / longest);
    return [
      el("svg:text", { x: 0, y: y + 15, "font-size": 12 }, g.key),
      el("svg:rect", { x: labelW, y: y + 4, width: barW, height: 12, fill: "#eee" }),
      el("svg:rect", { x: labelW, y: y + 4, width: Math.round(barW * g.shipRate), height: 12, fill: "#4a8", "data-key": g.key }),
      el("svg:rect", { x: labelW, y: y + 19, width: durW, height: 6, fill: "#999", "data-median": g.medianS ?? "" }),
      el("svg:text", { x: labelW + barW + 6, y: y + 15, "font-size": 12 }, rate + "% of " + g.dispatches),
      el("svg:text", { x: labelW + barW + 6, y: y + 27, "font-size": 11, fill: "#666" },
        g.medianS === null ? "" : "median " + span(g.medianS)),
    ];
  }));
}

function draw(s) {
  lastStatus = s;
  $("leases").replaceChildren(...s.leases.map((l) => {
    const tr = el("tr", { "data-gap": l.gap, "data-lease": l.lease, "data-state": l.state });
    if (l.lease === selected) tr.className = "selected";
    tr.append(cell(l.lease), cell(l.gap), cell(l.state), cell(l.watch, l.watch),
      cell(l.pid ?? ""), cell(l.pid === null ? "" : l.pidAlive ? "yes" : "no"),
      elapsedCell(l), cell(span(l.idleS)), cell(l.pr ?? ""), cell(l.outcome ?? "", l.outcome),
      cell(l.lastLine ?? "", "last"), logCell(l.log));
    tr.addEventListener("click", () => { selected = l.lease; draw(lastStatus); });
    return tr;
  }));
  const watch = Object.entries(s.byWatch).map(([k, n]) => k + " " + n).join(", ");
  const out = Object.entries(s.outcomes).map(([k, n]) => k + " " + n).join(", ");
  $("totals").textContent =
    s.leases.length + " lease(s): " + (watch || "none") + "; outcomes: " + (out || "none");
  $("counters").textContent = s.runs.runs + " run(s), " + s.runs.ticks + " tick(s), " +
    s.runs.providerErrors + " provider error(s), " + s.spooled + " reflection(s) spooled";
  chart($("by-domain"), s.byDomain);
  chart($("by-effort"), s.byEffort);
  chart($("by-backend"), s.byBackend);
  $("error").textContent = "";
  if (selected === null) {
    const live = s.leases.find((l) => l.state !== "ended" && l.log);
    if (live) selected = live.lease;
  }
  if (selected !== null) showLog(selected);
}

async function showLog(lease) {
  $("log-title").textContent = "log of lease " + lease;
  try {
    const r = await fetch(withToken("/api/log/" + lease + "?lines=40"));
    $("log").textContent = await r.text();
  } catch (e) {
    $("log").textContent = "cannot read the log: " + e;
  }
}

const events = new EventSource(withToken("/api/events"));
let painted = false;
events.addEventListener("status", (e) => {
  $("conn").textContent = "live: updated " + new Date().toLocaleTimeString();
  draw(JSON.parse(e.data));
  // When the first fleet is on screen (the bench reads this mark).
  if (!painted) requestAnimationFrame(() => performance.mark("chump-fleet-painted"));
  painted = true;
});
events.addEventListener("failure", (e) => {
  $("error").textContent = "cannot read the status: " + JSON.parse(e.data);
});
events.addEventListener("error", () => { $("conn").textContent = "reconnecting..."; });
</script>
</body>
</html>
`;
