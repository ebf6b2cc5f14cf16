/**
 * Durations as operators type them (`500ms`, `30s`, `20m`, `3h`; a bare
 * number is seconds) and per-effort soft deadlines (CONTRACT §4).
 *
 * @module
 */
import { fail, ok, type Result } from "./result.ts";

// Maps, not object literals: text from the command line or a backlog (`constructor`,
// `__proto__`) must never find Object.prototype's members.
const UNIT_MS: ReadonlyMap<string, number> = new Map([
  ["ms", 1],
  ["s", 1000],
  ["m", 60_000],
  ["h", 3_600_000],
  ["d", 86_400_000],
]);

/** Effort classes with a deadline of their own, smallest first. */
export const EFFORTS = ["xs", "s", "m", "l", "xl"] as const;

/** One of {@linkcode EFFORTS}. */
type Effort = typeof EFFORTS[number];

/**
 * Is `text` (already lowercased) one of the {@linkcode EFFORTS}?
 *
 * @example
 * ```ts
 * import { isEffort } from "./duration.ts";
 *
 * isEffort("xl"); // true
 * isEffort("constructor"); // false
 * ```
 */
export function isEffort(text: string): text is Effort {
  return (EFFORTS as readonly string[]).includes(text);
}

/**
 * Parse a duration into milliseconds.
 *
 * @example
 * ```ts
 * parseDuration("20m"); // { ok: true, value: 1200000 }
 * ```
 */
export function parseDuration(text: string): Result<number> {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!m) return fail(`not a duration: '${text}' (use e.g. 500ms, 30s, 20m, 3h)`);
  const ms = Number(m[1]) * UNIT_MS.get(m[2] ?? "s")!;
  if (!Number.isFinite(ms)) return fail(`not a duration: '${text}'`);
  return ok(Math.round(ms));
}

/**
 * Render milliseconds the way {@linkcode parseDuration} reads them, shortest unit that is exact.
 *
 * @example
 * ```ts
 * formatDuration(1_200_000); // "20m"
 * ```
 */
export function formatDuration(ms: number): string {
  for (const unit of ["h", "m", "s"]) {
    const size = UNIT_MS.get(unit)!;
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/**
 * Render an elapsed time for people, rounded down: seconds under a minute,
 * minutes under two hours, else hours and minutes.
 *
 * @example
 * ```ts
 * roughDuration(2_520_000); // "42m"
 * roughDuration(9_000_000); // "2h30m"
 * ```
 */
export function roughDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 120) return `${m}m`;
  return `${Math.floor(m / 60)}h${m % 60 === 0 ? "" : `${m % 60}m`}`;
}

/**
 * A set length (a deadline) for people, to the second: never rounded to a
 * coarser unit that would misstate it (`90s`, not `1m`).
 *
 * @example
 * ```ts
 * exactDuration(90_000); // "90s"
 * exactDuration(1_200_000); // "20m"
 * exactDuration(5_430_000); // "90m30s"
 * exactDuration(9_000_000); // "2h30m"
 * ```
 */
export function exactDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (s % 60 !== 0) return `${m}m${s % 60}s`;
  if (m < 120) return `${m}m`;
  return m % 60 === 0 ? `${m / 60}h` : `${Math.floor(m / 60)}h${m % 60}m`;
}

/** Soft deadline per effort class, in milliseconds. */
export type Deadlines = Readonly<Record<Effort, number>>;

/** The contract's defaults: xs/s 20m, m 60m (also unknown efforts), l 180m, xl 360m. */
export const DEFAULT_DEADLINES: Deadlines = {
  xs: 20 * 60_000,
  s: 20 * 60_000,
  m: 60 * 60_000,
  l: 180 * 60_000,
  xl: 360 * 60_000,
};

/**
 * Parse `--deadline s=20m,m=60m,l=180m` over the defaults. Setting `s`
 * also sets `xs` unless `xs` is given too.
 *
 * @example
 * ```ts
 * parseDeadlines("s=1m,l=2h");
 * ```
 */
export function parseDeadlines(
  text: string,
  base: Deadlines = DEFAULT_DEADLINES,
): Result<Deadlines> {
  const out: Record<Effort, number> = { ...base };
  const given = new Set<Effort>();
  for (const part of text.split(",")) {
    if (part.trim() === "") continue;
    const eq = part.indexOf("=");
    const key = (eq < 0 ? "" : part.slice(0, eq)).trim().toLowerCase();
    if (!isEffort(key)) {
      return fail(`--deadline: expected effort=duration (efforts xs, s, m, l, xl), got '${part}'`);
    }
    if (given.has(key)) return fail(`--deadline: ${key} is given twice in '${text}'`);
    const d = parseDuration(part.slice(eq + 1));
    if (!d.ok) return fail(`--deadline ${key}: ${d.error}`);
    if (d.value <= 0) return fail(`--deadline ${key}: must be longer than 0`);
    out[key] = d.value;
    given.add(key);
  }
  if (given.has("s") && !given.has("xs")) out.xs = out.s;
  return ok(out);
}

/**
 * The soft deadline of an effort; unknown or missing efforts count as `m`.
 *
 * @example
 * ```ts
 * deadlineFor("L", DEFAULT_DEADLINES); // 10800000
 * ```
 */
export function deadlineFor(effort: string, deadlines: Deadlines): number {
  const key = effort.toLowerCase();
  return isEffort(key) ? deadlines[key] : deadlines.m;
}
