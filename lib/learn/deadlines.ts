/**
 * Adaptive soft deadlines: an effort with at least {@linkcode MIN_SHIPPED}
 * shipped dispatches on record gets clamp(1.5 x p90 of their durations,
 * 5 min, its configured deadline): an adapted deadline is never longer than
 * the configured one (a wide spread of shipped durations would otherwise
 * raise it, and the waste with it). A domain x effort cell with that many of
 * its own gets its own, and an arm x effort cell (`claude/sonnet@m`) its own
 * before that. Where a deadline adapted, a hopeless agent ends early: at
 * {@linkcode EARLY_END_P90} x p90 when it has gone idle or its stderr shows a
 * known failure class (`earlyEnd`), rather than at twice the deadline. Fewer
 * rows: the configured deadline, no early end. Pure over the rows; the run
 * says at start which deadline each effort uses and why.
 *
 * @module
 */
import { deadlineFor, type Deadlines, EFFORTS, formatDuration } from "../util/duration.ts";

/** Shipped rows an effort (or a domain x effort cell) needs before its deadline adapts. */
const MIN_SHIPPED = 10;

/** An adapted deadline (and an early end) is never under this. */
const MIN_DEADLINE_MS = 5 * 60_000;

/** An idle (or visibly failing) agent past this x p90 of shipped durations ends early. */
export const EARLY_END_P90 = 1.2;

/** What the deadlines are made from: the rows' effort, domain, arm, outcome and duration. */
export interface DurationRow {
  effort: string;
  domain: string;
  /** The arm that ran it (routed runs); absent: not counted per arm. */
  arm?: string;
  outcome: string;
  durationS: number | null;
}

/** One deadline and where it came from. */
interface Chosen {
  ms: number;
  /** 1.2 x p90 of the shipped durations; absent where the deadline did not adapt. */
  earlyEndMs?: number;
  /** `configured`, or `p90 of N shipped x 1.5` (clamped when it was). */
  source: string;
}

/** The deadlines of a run. */
export interface AdaptiveDeadlines {
  /** The deadline of a gap of `effort` in `domain` (on `arm`, when routed). */
  of(effort: string, domain: string, arm?: string): number;
  /** When an idle or visibly failing agent of that kind ends; undefined: at twice the deadline. */
  earlyEnd(effort: string, domain: string, arm?: string): number | undefined;
  /** Per effort, then per adapted cell: the deadline and its source. */
  explain(): { key: string; chosen: Chosen }[];
}

/**
 * The p-th percentile of `values` (nearest rank).
 *
 * @example
 * ```ts
 * percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9); // 9
 * ```
 */
export function percentile(values: readonly number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil(p * s.length) - 1)];
}

/**
 * Deadlines adapted from `rows` over `configured`.
 *
 * @example
 * ```ts
 * import { DEFAULT_DEADLINES } from "../util/duration.ts";
 * const rows = Array.from({ length: 10 }, (_, i) => ({
 *   effort: "s", domain: "auto", outcome: "shipped", durationS: 300 + 60 * i,
 * }));
 * adaptiveDeadlines(rows, DEFAULT_DEADLINES).of("s", "auto"); // 1.5 x 780 s = 1170000 ms
 * ```
 */
export function adaptiveDeadlines(
  rows: readonly DurationRow[],
  configured: Deadlines,
): AdaptiveDeadlines {
  const shipped = new Map<string, number[]>();
  const add = (key: string, d: number) => {
    const list = shipped.get(key);
    if (list) list.push(d);
    else shipped.set(key, [d]);
  };
  for (const r of rows) {
    if (r.outcome !== "shipped" || r.durationS === null || !(r.durationS >= 0)) continue;
    const effort = String(r.effort).toLowerCase();
    add(effort, r.durationS);
    add(`${r.domain}/${effort}`, r.durationS);
    if (r.arm) add(`${r.arm}@${effort}`, r.durationS);
  }
  const chosen = new Map<string, Chosen>();
  const choose = (key: string, effort: string): Chosen | undefined => {
    const durations = shipped.get(key) ?? [];
    if (durations.length < MIN_SHIPPED) return undefined;
    const cap = deadlineFor(effort, configured);
    const p90 = percentile(durations, 0.9) * 1000;
    const ms = Math.round(Math.min(cap, Math.max(MIN_DEADLINE_MS, 1.5 * p90)) / 1000) * 1000;
    const clamp = ms === cap
      ? ", at its cap (the configured deadline)"
      : ms === MIN_DEADLINE_MS
      ? ", at the 5 min floor"
      : "";
    const earlyEndMs = Math.round(Math.max(MIN_DEADLINE_MS, EARLY_END_P90 * p90) / 1000) * 1000;
    return {
      ms,
      earlyEndMs,
      source: `p90 of ${durations.length} shipped x 1.5${clamp}; idle ends at ${
        formatDuration(earlyEndMs)
      }`,
    };
  };
  for (const effort of EFFORTS) {
    chosen.set(
      effort,
      choose(effort, effort) ?? {
        ms: configured[effort],
        source: `configured (${
          (shipped.get(effort) ?? []).length
        } shipped, fewer than ${MIN_SHIPPED})`,
      },
    );
  }
  const cells = [...shipped.keys()].filter((k) => /[/@]/.test(k)).sort();
  for (const key of cells) {
    const c = choose(key, key.slice(Math.max(key.lastIndexOf("/"), key.lastIndexOf("@")) + 1));
    if (c) chosen.set(key, c);
  }
  const pick = (effort: string, domain: string, arm?: string) => {
    const e = String(effort).toLowerCase();
    return (arm === undefined ? undefined : chosen.get(`${arm}@${e}`)) ??
      chosen.get(`${domain}/${e}`) ?? chosen.get(e);
  };
  return {
    of(effort, domain, arm) {
      return pick(effort, domain, arm)?.ms ?? deadlineFor(String(effort), configured);
    },
    earlyEnd(effort, domain, arm) {
      return pick(effort, domain, arm)?.earlyEndMs;
    },
    explain() {
      return [...chosen.entries()].map(([key, c]) => ({ key, chosen: c }));
    },
  };
}

/**
 * The one line a run prints about its deadlines.
 *
 * @example
 * ```ts
 * import { DEFAULT_DEADLINES } from "../util/duration.ts";
 * deadlinesLine(adaptiveDeadlines([], DEFAULT_DEADLINES)).startsWith("deadlines: xs=20m (configured"); // true
 * ```
 */
export function deadlinesLine(d: AdaptiveDeadlines): string {
  return "deadlines: " +
    d.explain().map(({ key, chosen }) => `${key}=${formatDuration(chosen.ms)} (${chosen.source})`)
      .join(", ");
}
