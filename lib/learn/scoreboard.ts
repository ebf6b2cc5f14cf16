/**
 * The scoreboard: shipped and not-shipped dispatches per arm and per arm x
 * task class, built from reflection rows (their notes' `backend=`, `model=`
 * and `provider=` lines name the arm). Odd rows (no backend line, an outcome
 * that is not one of the contract's, an unreadable time) are skipped, never
 * an error. Pure over the rows.
 *
 * @module
 */
import { armOfNotes, decodeNotes } from "../store/notes.ts";
import { classify } from "./classify.ts";
import type { ArmRecord, Scores } from "./policy.ts";
import { type RoutingTable, taskClassOf } from "./routing.ts";

/** What the scoreboard reads of a reflection. */
export interface ScoredRow {
  gapId: string;
  outcome: string;
  notes: string;
  /** SQLite's `YYYY-MM-DD HH:MM:SS` (UTC). */
  createdAt: string;
}

/** A scoreboard: {@linkcode Scores} and the rows it counted. */
export interface Scoreboard extends Scores {
  rows: number;
  /** Every (arm, task class) cell with its record, for `route` and `lessons`. */
  cells(): { arm: string; taskClass: string; record: ArmRecord }[];
}

const OUTCOMES = new Set(["shipped", "ci_failed", "stalled", "killed"]);

/**
 * Count `rows` (those at or after `sinceMs`, when given) per arm and task class.
 *
 * @example
 * ```ts
 * const row = { gapId: "COG-1", outcome: "shipped", notes: "backend=claude", createdAt: "2026-12-01 10:00:00" };
 * scoreboardOf([row]).cell("claude", "cognition"); // { successes: 1, failures: 0 }
 * ```
 */
export function scoreboardOf(
  rows: readonly ScoredRow[],
  options: { table?: Pick<RoutingTable, "taskClasses">; sinceMs?: number } = {},
): Scoreboard {
  const byCell = new Map<string, ArmRecord & { arm: string; taskClass: string }>();
  const byArm = new Map<string, ArmRecord>();
  let counted = 0;
  for (const r of rows) {
    if (!OUTCOMES.has(r.outcome)) continue;
    const arm = armOfNotes(String(r.notes ?? ""));
    if (arm === undefined) continue;
    if (options.sinceMs !== undefined && !(createdMs(r.createdAt) >= options.sinceMs)) continue;
    if (r.outcome !== "shipped" && saysNothingOfTheArm(String(r.notes ?? ""))) continue;
    const taskClass = taskClassOf(String(r.gapId), options.table);
    const key = `${arm}\u0000${taskClass}`;
    const cell = byCell.get(key) ?? { arm, taskClass, successes: 0, failures: 0 };
    const all = byArm.get(arm) ?? { successes: 0, failures: 0 };
    if (r.outcome === "shipped") {
      cell.successes++;
      all.successes++;
    } else {
      cell.failures++;
      all.failures++;
    }
    byCell.set(key, cell);
    byArm.set(arm, all);
    counted++;
  }
  const none = (): ArmRecord => ({ successes: 0, failures: 0 });
  return {
    rows: counted,
    cell(arm, taskClass) {
      const c = byCell.get(`${arm}\u0000${taskClass}`);
      return c ? { successes: c.successes, failures: c.failures } : none();
    },
    arm(arm) {
      return { ...(byArm.get(arm) ?? none()) };
    },
    cells() {
      return [...byCell.values()].map((c) => ({
        arm: c.arm,
        taskClass: c.taskClass,
        record: { successes: c.successes, failures: c.failures },
      }));
    },
  };
}

/**
 * A reflection's `created_at` (SQLite's `YYYY-MM-DD HH:MM:SS`, UTC) in ms
 * since the epoch; NaN when unreadable.
 *
 * @example
 * ```ts
 * createdMs("2026-12-06 10:00:00"); // 1796551200000
 * ```
 */
export function createdMs(createdAt: string): number {
  return Date.parse(`${String(createdAt).replace(" ", "T")}Z`);
}

/**
 * A failure that says nothing of the arm's quality: an interrupted stop, a
 * lost orchestrator, an operator's stop, a take-over, or a transient error
 * (the classifier's own rule: learn/classify.ts). A rate limit still counts
 * here (the arm was unavailable; the cascade cools it down).
 *
 * @example
 * ```ts
 * saysNothingOfTheArm("interrupted by SIGINT\nbackend=claude"); // true
 * saysNothingOfTheArm("exit code 1\nbackend=claude\nERROR: read ECONNRESET"); // true
 * saysNothingOfTheArm("exit code 1\nbackend=claude\nERROR: tests failed"); // false
 * ```
 */
export function saysNothingOfTheArm(notes: string): boolean {
  const n = decodeNotes(notes);
  const [reason = "", ...tail] = n.text;
  if (/^stopped by the operator|^lease taken over/.test(reason)) return true;
  const cls = n.class ?? classify("killed", reason, tail);
  return cls === undefined || cls === "transient";
}
