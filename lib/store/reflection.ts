/**
 * A reflection, the learning loop's contract (CONTRACT §5): the outcome
 * strings, the schema of `chump_reflections` + `chump_improvement_targets`
 * (byte-compatible with the seed) and the text of every column. Pure: no I/O.
 *
 * Choices the contract leaves open: the directive is one line whatever the
 * caller passes (control characters and U+2028/U+2029 in its field values
 * become a space; everything else, ids included, is kept as written);
 * durations and sibling counts are written as whole non-negative numbers
 * (the seed's u64).
 *
 * @module
 */
import { controlsToSpaces } from "../util/text.ts";

/** Stable outcome strings; the synthesis layer matches on them. */
export type Outcome = "shipped" | "ci_failed" | "stalled" | "killed";

/**
 * Every {@linkcode Outcome}, in the order the contract lists them.
 *
 * @example
 * ```ts
 * OUTCOMES.includes("stalled"); // true
 * ```
 */
export const OUTCOMES: readonly Outcome[] = ["shipped", "ci_failed", "stalled", "killed"];

import type { OutcomeBackoff } from "./backoff.ts";

/** One dispatch outcome, ready to be written. */
export interface DispatchReflection {
  gapId: string;
  /** The gap's effort as written (`s`, `m`, ...), `unknown` when missing. */
  effort: string;
  /** {@linkcode gapDomain} of the id. */
  domain: string;
  outcome: Outcome;
  durationS: number;
  /** Other dispatches still in flight at that tick. */
  parallelSiblings: number;
  prNumber?: number;
  /** Reason line (if any), then `backend=<label>`, then the stderr tail lines. */
  notes: string;
  /**
   * The lease this outcome ends. Not a DB column: it travels with a spooled
   * row so the run that imports the spool can end the lease (instead of a
   * reap taking it for an orphan and writing a second reflection).
   */
  leaseId?: number;
  /**
   * The lease's generation when this outcome was decided (0 for the run that
   * dispatched it, +1 per adoption): a row of a generation that is no longer
   * the lease's is not written (exactly one reflection per dispatch).
   */
  leaseGeneration?: number;
  /**
   * Its lease in the shared PostgreSQL ledger (`--ledger`): the fleet writer
   * (store/pg/fleet.ts) records the row there too, in the transaction that
   * ends that lease, and only while this host still holds it.
   */
  sharedLeaseId?: number;
  /**
   * What this outcome does to its gap's backoff (store/backoff.ts), written
   * in the same transaction as the row, in the local ledger and the shared one.
   */
  backoff?: OutcomeBackoff;
}

/**
 * The contract's schema, verbatim (the same columns, types, defaults and order
 * as the seed, which other tools of the learning loop read).
 *
 * @example
 * ```ts
 * REFLECTION_SCHEMA.startsWith("CREATE TABLE IF NOT EXISTS chump_reflections ("); // true
 * ```
 */
export const REFLECTION_SCHEMA: string = `CREATE TABLE IF NOT EXISTS chump_reflections (
  id INTEGER PRIMARY KEY AUTOINCREMENT, episode_id INTEGER, task_id INTEGER,
  intended_goal TEXT NOT NULL DEFAULT '', observed_outcome TEXT NOT NULL DEFAULT '',
  outcome_class TEXT NOT NULL DEFAULT 'failure', error_pattern TEXT,
  hypothesis TEXT NOT NULL DEFAULT '', surprisal_at_reflect REAL,
  confidence_at_reflect REAL, created_at TEXT NOT NULL DEFAULT (datetime('now')));
CREATE TABLE IF NOT EXISTS chump_improvement_targets (
  id INTEGER PRIMARY KEY AUTOINCREMENT, reflection_id INTEGER NOT NULL,
  directive TEXT NOT NULL, priority TEXT NOT NULL DEFAULT 'medium', scope TEXT,
  actioned_as TEXT, created_at TEXT NOT NULL DEFAULT (datetime('now')));
`;

/** The `error_pattern` that tags dispatch reflections (the synthesis layer filters on it). */
export const DISPATCH_ERROR_PATTERN = "orchestrator_dispatch";

/** `intended_goal` is this prefix followed by the gap id. */
export const GOAL_PREFIX = "ship gap ";

/**
 * The domain bucket of a gap id: the prefix before the first `-`, ASCII
 * lowercased (as the seed); `unknown` without a `-` or with nothing before it.
 *
 * @example
 * ```ts
 * gapDomain("AUTO-013"); // "auto"
 * gapDomain("EVAL-027c"); // "eval"
 * gapDomain("noprefix"); // "unknown"
 * gapDomain("-x"); // "unknown"
 * ```
 */
export function gapDomain(gapId: string): string {
  const dash = gapId.indexOf("-");
  if (dash <= 0) return "unknown";
  return gapId.slice(0, dash).replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/**
 * The improvement target's directive, one line:
 * `dispatched gap=<ID> effort=<e> domain=<d> outcome=<o> duration_s=<n> parallel_siblings=<n> pr_number=<Some(N)|None> notes=<first line of notes, trimmed>`.
 * Control characters in field values become spaces (see the module notes).
 *
 * @example
 * ```ts
 * directive({
 *   gapId: "AUTO-013", effort: "m", domain: "auto", outcome: "killed", durationS: 61,
 *   parallelSiblings: 1, notes: "exit code 1\nbackend=claude",
 * });
 * // "dispatched gap=AUTO-013 effort=m domain=auto outcome=killed duration_s=61 parallel_siblings=1 pr_number=None notes=exit code 1"
 * ```
 */
export function directive(r: DispatchReflection): string {
  return [
    "dispatched",
    `gap=${controlsToSpaces(r.gapId)}`,
    `effort=${controlsToSpaces(r.effort)}`,
    `domain=${controlsToSpaces(r.domain)}`,
    `outcome=${controlsToSpaces(r.outcome)}`,
    `duration_s=${wholeNumber(r.durationS)}`,
    `parallel_siblings=${wholeNumber(r.parallelSiblings)}`,
    `pr_number=${rustOption(r.prNumber)}`,
    `notes=${controlsToSpaces(firstLine(r.notes))}`,
  ].join(" ");
}

/**
 * The reflection's `observed_outcome`: `outcome=<o> duration_s=<d> pr=<Some(N)|None>`.
 *
 * @example
 * ```ts
 * observedOutcome({
 *   gapId: "AUTO-013", effort: "m", domain: "auto", outcome: "shipped", durationS: 90,
 *   parallelSiblings: 0, prNumber: 12, notes: "",
 * });
 * // "outcome=shipped duration_s=90 pr=Some(12)"
 * ```
 */
export function observedOutcome(r: DispatchReflection): string {
  return `outcome=${controlsToSpaces(r.outcome)} duration_s=${wholeNumber(r.durationS)} pr=${
    rustOption(r.prNumber)
  }`;
}

/**
 * The reflection's `outcome_class`: `success` only for `shipped`.
 *
 * @example
 * ```ts
 * outcomeClass("shipped"); // "success"
 * outcomeClass("stalled"); // "failure"
 * ```
 */
export function outcomeClass(outcome: Outcome): "success" | "failure" {
  return outcome === "shipped" ? "success" : "failure";
}

/**
 * The improvement target's priority: failures surface first in the next
 * synthesised prompt.
 *
 * @example
 * ```ts
 * targetPriority("ci_failed"); // "high"
 * targetPriority("stalled"); // "medium"
 * targetPriority("shipped"); // "low"
 * ```
 */
export function targetPriority(outcome: Outcome): "high" | "medium" | "low" {
  if (outcome === "killed" || outcome === "ci_failed") return "high";
  if (outcome === "stalled") return "medium";
  return "low";
}

/** The first line of notes, trimmed (the seed's `lines().next().trim()`). */
function firstLine(notes: string): string {
  return String(notes).split("\n", 1)[0].trim();
}

/** A count or a duration as the seed's unsigned integer. */
function wholeNumber(n: number): number {
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
}

/** `Some(N)` / `None`, as the seed's `{:?}` of an `Option<u32>`. */
function rustOption(n: number | undefined): string {
  return typeof n === "number" && Number.isFinite(n) ? `Some(${wholeNumber(n)})` : "None";
}
