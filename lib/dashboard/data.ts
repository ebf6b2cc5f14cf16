/**
 * What the dashboard shows, read from one DB: the leases with liveness and
 * activity (watch/status.ts), outcome counts, ship rate and duration per
 * domain, effort and backend, the duration histogram, the runs' counters
 * (ticks, provider errors, reflection write failures: `chump_runs`) and the
 * rows waiting in the spool; and the same as Prometheus text. The grouping
 * and the text are pure functions.
 *
 * @module
 */
import { readHeldBack, readStatusRows, type StatusRow } from "../watch/status.ts";
import {
  queryReflections,
  queryRunTotals,
  type ReflectionRow,
  type ReflectionSource,
  type RunSpending,
  type RunTotals,
} from "../store/query.ts";
import { type ArmSpend, spendByArm } from "../learn/spend.ts";
import { BUDGET_DAY_MS } from "../cost/budget.ts";
import { spoolPaths } from "../store/spool.ts";
import type { Result } from "../util/result.ts";

/** Ship rate and duration of one group of reflections (a domain, an effort or a backend). */
export interface GroupStats {
  key: string;
  dispatches: number;
  shipped: number;
  /** shipped / dispatches, 0..1. */
  shipRate: number;
  /** Median duration in seconds of the group's dispatches; null when none recorded one. */
  medianS: number | null;
}

/** A cumulative histogram of dispatch durations (Prometheus' buckets: count with duration <= le). */
export interface DurationHistogram {
  /** Upper bounds in seconds, ascending; +Inf is implied. */
  le: number[];
  /** Cumulative counts per bound. */
  counts: number[];
  count: number;
  sumS: number;
}

/** What `/api/status` returns (and the event stream sends). */
export interface DashboardStatus {
  db: string;
  generatedAt: string;
  leases: StatusRow[];
  /** Leases per watch state (`watched`, `adopted`, `orphaned`, ...). */
  byWatch: Record<string, number>;
  /** Reflections per outcome (all time). */
  outcomes: Record<string, number>;
  byDomain: GroupStats[];
  byEffort: GroupStats[];
  byBackend: GroupStats[];
  durations: DurationHistogram;
  runs: RunTotals;
  /** Reflections waiting in the spool files (not yet in the DB). */
  spooled: number;
  /** What was spent: per arm, in the last 24 hours, and each live run against its budgets. */
  spend?: DashboardSpend;
  /** Cost and tokens per backend, model and outcome (for /metrics). */
  costs?: CostGroup[];
  /** Gaps held back after failures in a row, and why. */
  heldBack?: { gapId: string; why: string }[];
}

/** The dashboard's spend. */
export interface DashboardSpend {
  byArm: ArmSpend[];
  /** Reflections of the last 24 hours plus live leases' cost so far. */
  lastDayUsd: number;
  runs: RunSpending[];
}

/** Cost and tokens of the dispatches of one backend, model and outcome. */
export interface CostGroup {
  backend: string;
  model: string;
  outcome: string;
  usd: number;
  tokensIn: number;
  tokensOut: number;
  cacheRead: number;
  cacheWrite: number;
}

/** Histogram bounds in seconds: 1 min to 8 h. */
const DURATION_BUCKETS_S: readonly number[] = [60, 300, 900, 1800, 3600, 7200, 14400, 28800];

/**
 * The fleet now, from the DB at `db` (the newest `limit` leases), with the
 * outcomes and charts of `source` (the same DB, or the whole fleet's
 * reflections with `serve --ledger`).
 *
 * @example
 * ```ts
 * const dir = Deno.makeTempDirSync();
 * (await dashboardStatus(`${dir}/none.db`, 10)).ok; // true (nothing recorded)
 * ```
 */
export async function dashboardStatus(
  db: string,
  limit: number,
  source: ReflectionSource = db,
): Promise<Result<DashboardStatus>> {
  const rows = await readStatusRows(db, limit);
  if (!rows.ok) return rows;
  const reflections = queryReflections(source, { limit: Number.MAX_SAFE_INTEGER });
  if (!reflections.ok) return reflections;
  const runs = queryRunTotals(db);
  if (!runs.ok) return runs;
  const leases = rows.value ?? [];
  const refl = reflections.value;
  return {
    ok: true,
    value: {
      db,
      generatedAt: new Date().toISOString(),
      leases,
      byWatch: tally(leases.map((l) => l.watch)),
      outcomes: tally(refl.map((r) => r.outcome)),
      byDomain: groupStats(refl, (r) => r.domain),
      byEffort: groupStats(refl, (r) => r.effort),
      byBackend: groupStats(refl, (r) => r.backend),
      durations: durationHistogram(refl.map((r) => r.durationS)),
      runs: runs.value,
      spooled: await spooledRows(db),
      spend: {
        byArm: spendByArm(refl).filter((a) => a.costed > 0),
        lastDayUsd: lastDaySpend(refl, leases, Date.now()),
        runs: runs.value.spending ?? [],
      },
      costs: costGroups(refl),
      heldBack: await readHeldBack(db),
    },
  };
}

/**
 * What was spent in the 24 hours before `now`: reflections created since,
 * and live leases' cost so far.
 *
 * @example
 * ```ts
 * const r = { createdAt: "2026-12-06 10:00:00", cost: { usd: 1.5, tokensIn: 0, tokensOut: 0, cacheRead: 0, cacheWrite: 0, turns: 1 } };
 * lastDaySpend([r], [], Date.parse("2026-12-06T12:00:00Z")); // 1.5
 * ```
 */
export function lastDaySpend(
  refl: readonly Pick<ReflectionRow, "createdAt" | "cost">[],
  leases: readonly Pick<StatusRow, "state" | "costUsd">[],
  now: number,
): number {
  const since = now - BUDGET_DAY_MS;
  let usd = 0;
  for (const r of refl) {
    const t = Date.parse(`${r.createdAt.replace(" ", "T")}Z`);
    if (t >= since) usd += r.cost?.usd ?? 0;
  }
  for (const l of leases) if (l.state !== "ended") usd += l.costUsd ?? 0;
  return usd;
}

/** Cost and tokens per backend, model and outcome (groups in that order). */
function costGroups(refl: readonly ReflectionRow[]): CostGroup[] {
  const groups = new Map<string, CostGroup>();
  for (const r of refl) {
    if (!r.cost) continue;
    const key = [r.backend, r.model, r.outcome].join("\u0000");
    const g = groups.get(key) ?? {
      backend: r.backend || "unknown",
      model: r.model || "unknown",
      outcome: r.outcome,
      usd: 0,
      tokensIn: 0,
      tokensOut: 0,
      cacheRead: 0,
      cacheWrite: 0,
    };
    g.usd += r.cost.usd ?? 0;
    g.tokensIn += r.cost.tokensIn;
    g.tokensOut += r.cost.tokensOut;
    g.cacheRead += r.cost.cacheRead;
    g.cacheWrite += r.cost.cacheWrite;
    groups.set(key, g);
  }
  return [...groups.keys()].sort().map((k) => groups.get(k)!);
}

/** How many of each key, keys in alphabetical order (the page and /metrics list them stably). */
function tally(keys: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of [...keys].sort()) out[k] = (out[k] ?? 0) + 1;
  return out;
}

/**
 * Ship rate and median duration per key (keys alphabetical; "" reads "unknown").
 *
 * @example
 * ```ts
 * const r = (outcome: string, durationS: number) => ({ outcome, durationS, domain: "a" });
 * groupStats([r("shipped", 10), r("killed", 30)], (x) => x.domain);
 * // [{ key: "a", dispatches: 2, shipped: 1, shipRate: 0.5, medianS: 20 }]
 * ```
 */
export function groupStats<T extends Pick<ReflectionRow, "outcome" | "durationS">>(
  rows: readonly T[],
  keyOf: (row: T) => string,
): GroupStats[] {
  const groups = new Map<string, T[]>();
  for (const r of rows) {
    const key = keyOf(r) || "unknown";
    groups.set(key, [...groups.get(key) ?? [], r]);
  }
  return [...groups.keys()].sort().map((key) => {
    const members = groups.get(key)!;
    const shipped = members.filter((r) => r.outcome === "shipped").length;
    return {
      key,
      dispatches: members.length,
      shipped,
      shipRate: shipped / members.length,
      medianS: median(members.flatMap((r) => r.durationS === null ? [] : [r.durationS])),
    };
  });
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * The cumulative histogram of `durations` (nulls skipped) over {@linkcode DURATION_BUCKETS_S}.
 *
 * @example
 * ```ts
 * durationHistogram([30, 400, null]).counts.slice(0, 3); // [1, 1, 2]
 * ```
 */
export function durationHistogram(durations: readonly (number | null)[]): DurationHistogram {
  const known = durations.filter((d): d is number => d !== null);
  return {
    le: [...DURATION_BUCKETS_S],
    counts: DURATION_BUCKETS_S.map((le) => known.filter((d) => d <= le).length),
    count: known.length,
    sumS: known.reduce((a, b) => a + b, 0),
  };
}

/** A label value as Prometheus' text format escapes it. */
function label(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** Rows waiting in the DB's spool files (one JSON line each). */
async function spooledRows(db: string): Promise<number> {
  let n = 0;
  const { spoolPath, fallbackSpoolPath } = spoolPaths(db);
  for (const path of [spoolPath, fallbackSpoolPath]) {
    try {
      const bytes = await Deno.readFile(path);
      for (const b of bytes) if (b === 10) n++;
    } catch {
      // none
    }
  }
  return n;
}

/**
 * The status in Prometheus' text exposition format (version 0.0.4).
 *
 * @example
 * ```ts
 * const none = { ticks: 0, runs: 0, providerErrors: 0, writeFailures: 0, liveAgents: 0 };
 * metricsText({
 *   db: "x", generatedAt: "", leases: [], byWatch: { watched: 2 }, outcomes: {},
 *   byDomain: [], byEffort: [], byBackend: [], runs: none, spooled: 0,
 *   durations: { le: [60], counts: [0], count: 0, sumS: 0 },
 * });
 * // includes 'chump_leases{watch="watched"} 2'
 * ```
 */
export function metricsText(s: DashboardStatus): string {
  const lines: string[] = [];
  const metric = (name: string, type: string, help: string, samples: [string, number][]) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) lines.push(`${name}${labels} ${value}`);
  };
  metric(
    "chump_leases",
    "gauge",
    "Leases among the newest listed, by who watches them.",
    Object.entries(s.byWatch).map(([w, n]) => [`{watch="${w}"}`, n]),
  );
  metric("chump_agents_alive", "gauge", "Agents whose recorded process is alive.", [[
    "",
    s.leases.filter((l) => l.state !== "ended" && l.pidAlive).length,
  ]]);
  metric(
    "chump_reflections_total",
    "counter",
    "Dispatch reflections written, by outcome.",
    ["shipped", "ci_failed", "stalled", "killed"].map((
      o,
    ) => [`{outcome="${o}"}`, s.outcomes[o] ?? 0]),
  );
  metric("chump_ticks_total", "counter", "Monitor ticks of all recorded runs.", [[
    "",
    s.runs.ticks,
  ]]);
  metric("chump_provider_errors_total", "counter", "PR provider polls that failed.", [[
    "",
    s.runs.providerErrors,
  ]]);
  metric(
    "chump_reflection_write_failures_total",
    "counter",
    "Reflections that could not be written to the DB (spooled or printed instead).",
    [["", s.runs.writeFailures]],
  );
  metric("chump_reflections_spooled", "gauge", "Reflections waiting in the spool.", [[
    "",
    s.spooled,
  ]]);
  const costs = s.costs ?? [];
  const labels = (c: CostGroup, extra = "") =>
    `{backend="${label(c.backend)}",model="${label(c.model)}",outcome="${c.outcome}"${extra}}`;
  metric(
    "chump_cost_usd_total",
    "counter",
    "Dollars spent by dispatches (reported by the agent, else its tokens priced).",
    costs.map((c) => [labels(c), Math.round(c.usd * 1e6) / 1e6]),
  );
  metric(
    "chump_tokens_total",
    "counter",
    "Tokens used by dispatches, by kind (input, output, cache_read, cache_write).",
    costs.flatMap((c) =>
      (
        [["input", c.tokensIn], ["output", c.tokensOut], ["cache_read", c.cacheRead], [
          "cache_write",
          c.cacheWrite,
        ]] as const
      ).map(([kind, n]): [string, number] => [labels(c, `,kind="${kind}"`), n])
    ),
  );
  const h = s.durations;
  metric("chump_dispatch_duration_seconds", "histogram", "Duration of settled dispatches.", [
    ...h.le.map((le, i): [string, number] => [`_bucket{le="${le}"}`, h.counts[i]]),
    [`_bucket{le="+Inf"}`, h.count],
    ["_sum", h.sumS],
    ["_count", h.count],
  ]);
  return lines.join("\n") + "\n";
}
