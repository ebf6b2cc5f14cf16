/**
 * Adaptive soft deadlines: an effort with at least {@linkcode MIN_SHIPPED}
 * shipped dispatches on record gets clamp(1.5 x p90 of their durations,
 * 5 min, 2 x its configured deadline); a domain x effort cell with that many
 * of its own gets its own. Fewer: the configured deadline. Pure over the rows;
 * the run says at start which deadline each effort uses and why.
 *
 * @module
 */
import { deadlineFor, type Deadlines, EFFORTS, formatDuration } from "../util/duration.ts";

/** Shipped rows an effort (or a domain x effort cell) needs before its deadline adapts. */
const MIN_SHIPPED = 10;

/** An adapted deadline is never under this. */
const MIN_DEADLINE_MS = 5 * 60_000;

/** What the deadlines are made from: the rows' effort, domain, outcome and duration. */
export interface DurationRow {
  effort: string;
  domain: string;
  outcome: string;
  durationS: number | null;
}

/** One deadline and where it came from. */
interface Chosen {
  ms: number;
  /** `configured`, or `p90 of N shipped x 1.5` (clamped when it was). */
  source: string;
}

/** The deadlines of a run. */
export interface AdaptiveDeadlines {
  /** The deadline of a gap of `effort` in `domain`. */
  of(effort: string, domain: string): number;
  /** Per effort, then per adapted domain x effort cell: the deadline and its source. */
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
  const add = (key: string, d: number) => shipped.set(key, [...shipped.get(key) ?? [], d]);
  for (const r of rows) {
    if (r.outcome !== "shipped" || r.durationS === null || !(r.durationS >= 0)) continue;
    const effort = String(r.effort).toLowerCase();
    add(effort, r.durationS);
    add(`${r.domain}/${effort}`, r.durationS);
  }
  const chosen = new Map<string, Chosen>();
  const choose = (key: string, effort: string): Chosen | undefined => {
    const durations = shipped.get(key) ?? [];
    if (durations.length < MIN_SHIPPED) return undefined;
    const cap = 2 * deadlineFor(effort, configured);
    const raw = 1.5 * percentile(durations, 0.9) * 1000;
    const ms = Math.round(Math.min(cap, Math.max(MIN_DEADLINE_MS, raw)) / 1000) * 1000;
    const clamp = ms === cap
      ? ", at its cap (2x configured)"
      : ms === MIN_DEADLINE_MS
      ? ", at the 5 min floor"
      : "";
    return { ms, source: `p90 of ${durations.length} shipped x 1.5${clamp}` };
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
  const cells = [...shipped.keys()].filter((k) => k.includes("/")).sort();
  for (const key of cells) {
    const c = choose(key, key.slice(key.lastIndexOf("/") + 1));
    if (c) chosen.set(key, c);
  }
  return {
    of(effort, domain) {
      const e = String(effort).toLowerCase();
      return chosen.get(`${domain}/${e}`)?.ms ?? chosen.get(e)?.ms ?? deadlineFor(e, configured);
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
