/**
 * Lessons from the reflections: per domain x effort x arm, how often it
 * shipped, how long it took, how often it was killed or stalled, and its
 * most frequent failure lines with numbers, paths and hashes folded (so the
 * same failure on other files counts as one); and the short block a gap's
 * prompt gains from its domain's record (Chump's MEM-006: the next agent
 * avoids what failed before). Pure over the rows.
 *
 * @module
 */
import { spendByArm } from "./spend.ts";
import { percentile } from "./deadlines.ts";
import { armOfNotes, decodeNotes } from "../store/notes.ts";

/** What lessons read of a reflection. */
export interface LessonRow {
  gapId: string;
  outcome: string;
  durationS: number | null;
  notes: string;
  effort: string;
  domain: string;
}

/** One failure line and how often it was seen. */
export interface FrequentLine {
  line: string;
  count: number;
}

/** The record of one domain x effort x arm. */
export interface LessonCell {
  domain: string;
  effort: string;
  arm: string;
  dispatches: number;
  shipped: number;
  shipRate: number;
  medianS: number | null;
  p90S: number | null;
  killed: number;
  stalled: number;
  /** What its dispatches cost in all, and per shipped gap; null where no cost is known. */
  spentUsd: number | null;
  usdPerShipped: number | null;
  failures: FrequentLine[];
}

/** Failure lines kept per cell. */
const TOP_LINES = 3;

/** The block a prompt gains is at most this many lines, its delimiters included. */
const MAX_PROMPT_LINES = 10;

/** Rows of a domain a prompt's lessons are drawn from (the most recent). */
const RECENT_ROWS = 50;

/**
 * A failure line with what varies folded: hashes, paths, numbers; spaces squeezed.
 *
 * @example
 * ```ts
 * normaliseFailure("ERROR: src/a.rs:12:3 test failed at 3f9a2c1d after 41 s");
 * // "ERROR: <path> test failed at <hash> after <n> s"
 * ```
 */
export function normaliseFailure(line: string): string {
  return line
    .replace(/(?:\.{0,2}\/)?(?:[\w.-]+\/)+[\w.-]+(?::\d+)*/g, "<path>")
    .replace(/\b[\w-]+\.(?:rs|ts|js|py|go|md|yaml|toml|json)(?::\d+)*\b/g, "<path>")
    .replace(/\b[0-9a-f]{7,64}\b/gi, (h) => /\d/.test(h) && /[a-f]/i.test(h) ? "<hash>" : h)
    .replace(/\b\d+(?:\.\d+)?/g, "<n>")
    .replace(/\s+/g, " ")
    .trim();
}

/** The failure lines of one reflection's notes: its reason and its stderr tail, not its facts. */
function failureLines(notes: string): string[] {
  return decodeNotes(notes).text;
}

function frequent(lines: readonly string[], top: number): FrequentLine[] {
  const counts = new Map<string, number>();
  for (const l of lines) {
    const n = normaliseFailure(l);
    if (n !== "") counts.set(n, (counts.get(n) ?? 0) + 1);
  }
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, top)
    .map(([line, count]) => ({ line, count }));
}

/**
 * Lessons per domain x effort x arm, in that order of keys.
 *
 * @example
 * ```ts
 * const row = { gapId: "A-1", outcome: "killed", durationS: 60, notes: "exit code 1\nbackend=claude", effort: "s", domain: "a" };
 * lessonsTable([row])[0].failures; // [{ line: "exit code <n>", count: 1 }]
 * ```
 */
export function lessonsTable(rows: readonly LessonRow[]): LessonCell[] {
  const cells = new Map<string, LessonRow[]>();
  for (const r of rows) {
    const arm = armOfNotes(String(r.notes ?? "")) ?? "unknown";
    const key = [r.domain || "unknown", r.effort || "unknown", arm].join("\u0000");
    cells.set(key, [...cells.get(key) ?? [], r]);
  }
  return [...cells.keys()].sort().map((key) => {
    const [domain, effort, arm] = key.split("\u0000");
    const members = cells.get(key)!;
    const shipped = members.filter((r) => r.outcome === "shipped").length;
    const durations = members.flatMap((r) => r.durationS === null ? [] : [r.durationS]);
    const [spend] = spendByArm(members);
    return {
      domain,
      effort,
      arm,
      dispatches: members.length,
      shipped,
      shipRate: shipped / members.length,
      medianS: durations.length ? percentile(durations, 0.5) : null,
      p90S: durations.length ? percentile(durations, 0.9) : null,
      killed: members.filter((r) => r.outcome === "killed").length,
      stalled: members.filter((r) => r.outcome === "stalled").length,
      spentUsd: spend.costed > 0 ? spend.spentUsd : null,
      usdPerShipped: spend.usdPerShipped,
      failures: frequent(
        members.filter((r) => r.outcome !== "shipped").flatMap((r) => failureLines(r.notes)),
        TOP_LINES,
      ),
    };
  });
}

/**
 * The lessons block of a gap's prompt: its domain's ship rate and most
 * frequent recent failure lines, at most {@linkcode MAX_PROMPT_LINES} lines,
 * delimited; none when the domain has no record. `rows` newest first.
 *
 * @example
 * ```ts
 * const row = { gapId: "A-1", outcome: "killed", durationS: 60, notes: "exit code 1\nbackend=claude\nERROR: tests failed", effort: "s", domain: "a" };
 * promptLessons([row], "a")[1]; // "Earlier dispatches of a gaps: 0 of 1 shipped (0%)."
 * ```
 */
export function promptLessons(rows: readonly LessonRow[], domain: string): string[] {
  const recent = rows.filter((r) => r.domain === domain).slice(0, RECENT_ROWS);
  if (recent.length === 0) return [];
  const shipped = recent.filter((r) => r.outcome === "shipped").length;
  const lines = [
    "--- lessons from earlier dispatches (chump-orchestrator) ---",
    `Earlier dispatches of ${domain} gaps: ${shipped} of ${recent.length} shipped (${
      Math.round(100 * shipped / recent.length)
    }%).`,
  ];
  const failures = frequent(
    recent.filter((r) => r.outcome !== "shipped").flatMap((r) => failureLines(r.notes)),
    MAX_PROMPT_LINES - 4,
  );
  if (failures.length > 0) {
    lines.push("Their most frequent failures, avoid them:");
    for (const f of failures) lines.push(`- (${f.count}x) ${f.line.slice(0, 200)}`);
  }
  lines.push("--- end of lessons ---");
  return lines;
}
