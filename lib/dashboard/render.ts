/**
 * The dashboard's one renderer (pure): a {@linkcode DashboardStatus} as the
 * page's fragments (totals, counters, the rows of the fleet's table, the
 * charts as SVG). The server draws the first view into the page with them
 * (so the page shows the fleet without JavaScript, and at once), and sends
 * them again in each `view` event, which the page's script only swaps in:
 * nothing is rendered twice in two languages.
 *
 * @module
 */
import type { DashboardSpend, DashboardStatus, GroupStats } from "./data.ts";
import { formatUsd } from "../cost/prices.ts";
import type { StatusRow } from "../watch/status.ts";
import { exactDuration } from "../util/duration.ts";

/** One chart: its size and its SVG content. */
export interface ChartView {
  width: number;
  height: number;
  svg: string;
}

/** The page's fragments for one status (what a `view` event carries). */
export interface View {
  totals: string;
  counters: string;
  /** The table's `<tr>` rows (HTML). */
  rows: string;
  /** What was spent, against each live run's budgets, and per arm (HTML). */
  spend: string;
  /** The gaps held back after failures in a row (HTML). */
  held: string;
  charts: { "by-domain": ChartView; "by-effort": ChartView; "by-backend": ChartView };
  /** The lease whose log to show when none is selected: the newest live one with a log. */
  firstLive: number | null;
}

/**
 * The fragments of `s`.
 *
 * @example
 * ```ts
 * import type { DashboardStatus } from "./data.ts";
 *
 * declare const status: DashboardStatus;
 * renderView(status).totals; // "3 lease(s): watched 1, settled 2; outcomes: shipped 2"
 * ```
 */
export function renderView(s: DashboardStatus): View {
  const watch = Object.entries(s.byWatch).map(([k, n]) => `${k} ${n}`).join(", ");
  const outcomes = Object.entries(s.outcomes).map(([k, n]) => `${k} ${n}`).join(", ");
  return {
    totals: `${s.leases.length} lease(s): ${watch || "none"}; outcomes: ${outcomes || "none"}`,
    counters: `${s.runs.runs} run(s), ${s.runs.ticks} tick(s), ` +
      `${s.runs.providerErrors} provider error(s), ${s.spooled} reflection(s) spooled`,
    rows: s.leases.map(row).join("\n"),
    spend: spendView(s.spend),
    held: (s.heldBack ?? []).length === 0 ? "" : "<h2>held back</h2><ul>" +
      s.heldBack!.map((h) => `<li>${esc(`${h.gapId}: ${h.why}`)}</li>`).join("") + "</ul>",
    charts: {
      "by-domain": chart(s.byDomain),
      "by-effort": chart(s.byEffort),
      "by-backend": chart(s.byBackend),
    },
    firstLive: s.leases.find((l) => l.state !== "ended" && l.log)?.lease ?? null,
  };
}

/** One lease's row. */
function row(l: StatusRow): string {
  const cells = [
    td(String(l.lease)),
    td(l.gap),
    td(l.state + (l.fixRound ? ` (fix ${l.fixRound})` : "")),
    td(l.watch, l.watch),
    td(l.pid === null ? "" : String(l.pid)),
    td(l.pid === null ? "" : l.pidAlive ? "yes" : "no"),
    elapsedCell(l),
    td(span(l.idleS)),
    td(l.pr ?? ""),
    td(l.costUsd === null ? "" : formatUsd(l.costUsd), "cost"),
    td(l.outcome ?? "", l.outcome ?? undefined),
    td(l.lastLine ?? "", "last"),
    logCell(l.log),
  ];
  return `<tr data-gap="${esc(l.gap)}" data-lease="${l.lease}" data-state="${esc(l.state)}">` +
    `${cells.join("")}</tr>`;
}

/**
 * What was spent: the last 24 hours, each live run against its budgets,
 * and a table of the arms' spend and dollars per shipped gap; blank when
 * nothing ever spoke a structured session.
 */
function spendView(spend: DashboardSpend | undefined): string {
  if (!spend || (spend.byArm.length === 0 && spend.runs.length === 0)) return "";
  const usd = (x: number | null) => (x === null ? "-" : formatUsd(x));
  const runs = spend.runs.map((r) => {
    const parts = [`run ${r.runId.slice(0, 8)} on ${r.host}: ${usd(r.spentUsd ?? 0)} spent`];
    if (r.budgetRunUsd !== null) parts.push(`of ${usd(r.budgetRunUsd)} (run budget)`);
    if (r.budgetDayUsd !== null) {
      parts.push(`; ${usd(spend.lastDayUsd)} of ${usd(r.budgetDayUsd)} a day`);
    }
    if (r.budgetGapUsd !== null) parts.push(`; at most ${usd(r.budgetGapUsd)} an agent`);
    const over = (r.budgetRunUsd !== null && (r.spentUsd ?? 0) >= r.budgetRunUsd) ||
      (r.budgetDayUsd !== null && spend.lastDayUsd >= r.budgetDayUsd);
    return `<li${over ? ` class="over"` : ""}>${esc(parts.join(" "))}</li>`;
  });
  const arms = spend.byArm.map((a) =>
    `<tr>${td(a.arm)}${td(String(a.dispatches))}${td(String(a.shipped))}${
      td(formatUsd(a.spentUsd))
    }${td(usd(a.usdPerShipped))}</tr>`
  );
  return `<h2>spend</h2><p>last 24 hours: ${esc(formatUsd(spend.lastDayUsd))}</p>` +
    (runs.length > 0 ? `<ul>${runs.join("")}</ul>` : "") +
    (arms.length > 0
      ? "<table><thead><tr><th>arm</th><th>dispatches</th><th>shipped gaps</th><th>spent</th>" +
        `<th>$ per shipped gap</th></tr></thead><tbody>${arms.join("")}</tbody></table>`
      : "");
}

/** Elapsed against the deadline, with a bar while the lease is live. */
function elapsedCell(l: StatusRow): string {
  const text = span(l.elapsedS) + (l.deadlineS ? ` / ${exactDuration(l.deadlineS * 1000)}` : "");
  if (!l.deadlineS || l.state === "ended") return td(text);
  const pct = Math.min(100, Math.round((100 * l.elapsedS) / l.deadlineS));
  const late = pct >= 100 ? ` class="late"` : "";
  return `<td>${esc(text)}<meter${late} min="0" max="100" value="${pct}" ` +
    `title="${pct}% of the deadline"></meter></td>`;
}

/** The log file's name, its path as the title. */
function logCell(path: string | null): string {
  if (!path) return td("");
  return `<td title="${esc(path)}">${esc(path.slice(path.lastIndexOf("/") + 1))}</td>`;
}

/** Per group: its ship rate (green, of the full width) and its median duration (grey, against the longest). */
function chart(groups: readonly GroupStats[]): ChartView {
  const rowH = 34, width = 300, labelW = 90, barW = 120;
  const longest = Math.max(1, ...groups.map((g) => g.medianS ?? 0));
  const parts = groups.map((g, i) => {
    const y = i * rowH;
    const rate = Math.round(100 * g.shipRate);
    const durW = Math.round((barW * (g.medianS ?? 0)) / longest);
    return [
      `<text x="0" y="${y + 15}" font-size="12">${esc(g.key)}</text>`,
      `<rect x="${labelW}" y="${y + 4}" width="${barW}" height="12" fill="#eee"></rect>`,
      `<rect x="${labelW}" y="${y + 4}" width="${Math.round(barW * g.shipRate)}" height="12" ` +
      `fill="#4a8" data-key="${esc(g.key)}"></rect>`,
      `<rect x="${labelW}" y="${y + 19}" width="${durW}" height="6" fill="#999" ` +
      `data-median="${g.medianS ?? ""}"></rect>`,
      `<text x="${labelW + barW + 6}" y="${y + 15}" font-size="12">` +
      `${rate}% of ${g.dispatches}</text>`,
      `<text x="${labelW + barW + 6}" y="${y + 27}" font-size="11" fill="#666">` +
      `${g.medianS === null ? "" : `median ${span(g.medianS)}`}</text>`,
    ].join("");
  });
  return { width, height: Math.max(1, groups.length) * rowH, svg: parts.join("") };
}

/** A cell of `text`, with class `cls`. */
function td(text: string, cls?: string): string {
  return cls ? `<td class="${esc(cls)}">${esc(text)}</td>` : `<td>${esc(text)}</td>`;
}

/**
 * Seconds as the page shows them: `42s`, `12m`, `3h`; blank for none.
 *
 * @example
 * ```ts
 * span(90); // "1m"
 * ```
 */
export function span(s: number | null | undefined): string {
  if (s === null || s === undefined) return "";
  if (s < 60) return `${Math.round(s)}s`;
  return s < 7200 ? `${Math.floor(s / 60)}m` : `${Math.floor(s / 3600)}h`;
}

/**
 * `text` safe inside HTML text and double-quoted attributes.
 *
 * @example
 * ```ts
 * esc(`<a href="x">&`); // "&lt;a href=&quot;x&quot;&gt;&amp;"
 * ```
 */
export function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c]);
}

const ENTITIES: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};
