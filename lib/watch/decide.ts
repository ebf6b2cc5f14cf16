/**
 * What to do with one in-flight dispatch at one tick (CONTRACT §4): a pure
 * function of what was observed, read top to bottom like the contract's
 * table; the first row that matches wins.
 *
 * | state at a tick                                   | result                          |
 * | ------------------------------------------------- | ------------------------------- |
 * | PR merged                                         | shipped (PR number)             |
 * | PR closed unmerged                                | ci_failed (PR number)           |
 * | PR open                                           | watch until max-watch, stalled  |
 * | exited non-zero, no PR                            | killed, `exit code N`           |
 * | exited 0, no PR after the exit grace              | stalled, `exited 0 without a PR`|
 * | running, no PR, elapsed > 2x deadline             | kill, then killed               |
 * | running, no PR, elapsed > 1x deadline             | warn once, keep watching        |
 *
 * The 2x row is checked before the 1x row: "elapsed > 2x" implies "> 1x",
 * and the 1x row only warns, so reading the 1x row first would make the
 * kill unreachable (the seed's bug). When the provider failed this tick the
 * PR state is unknown: nothing is concluded from it except the max-watch bound.
 *
 * @module
 */
import type { PrState } from "./providers/types.ts";
import type { Outcome } from "../store/reflection.ts";

/** What the monitor observed about one dispatch at one tick. */
export interface TickInput {
  /** PR state of its branch; undefined when the provider failed this tick. */
  pr: PrState | undefined;
  /** Exit code once the agent exited, else null. */
  exitCode: number | null;
  /** Ticks since the exit was first seen (0 at that tick). */
  ticksSinceExit: number;
  elapsedMs: number;
  /** The gap's soft deadline. */
  deadlineMs: number;
  /** How long an open PR (or an unknown PR state) is watched. */
  maxWatchMs: number;
  /** Ticks to wait for a PR after a clean exit. */
  exitGraceTicks: number;
  /** The stalled warning was already emitted. */
  warned: boolean;
}

/** What to do about it. */
export type TickDecision =
  | { kind: "watch" }
  | { kind: "warn"; message: string }
  | { kind: "terminal"; outcome: Outcome; prNumber?: number; reason: string }
  | { kind: "kill"; reason: string };

/**
 * Decide one dispatch's fate at one tick.
 *
 * @param t what was observed
 * @returns watch, warn (once), terminal with an outcome, or kill
 * @example
 * ```ts
 * decideTick({ pr: { state: "merged", number: 7 }, exitCode: 1, ticksSinceExit: 0,
 *   elapsedMs: 1000, deadlineMs: 60_000, maxWatchMs: 240_000, exitGraceTicks: 2, warned: false });
 * // { kind: "terminal", outcome: "shipped", prNumber: 7, reason: "" }
 * ```
 */
export function decideTick(t: TickInput): TickDecision {
  const pr = t.pr;
  if (pr?.state === "merged") {
    return { kind: "terminal", outcome: "shipped", prNumber: pr.number, reason: "" };
  }
  if (pr?.state === "closed") {
    return {
      kind: "terminal",
      outcome: "ci_failed",
      prNumber: pr.number,
      reason: `PR ${prLabel(pr.number)} closed without merging`,
    };
  }
  if (pr?.state === "open") {
    if (t.elapsedMs > t.maxWatchMs) {
      return {
        kind: "terminal",
        outcome: "stalled",
        prNumber: pr.number,
        reason: `PR ${prLabel(pr.number)} still open`,
      };
    }
    return { kind: "watch" };
  }
  if (pr === undefined) {
    if (t.elapsedMs > t.maxWatchMs) {
      return {
        kind: "terminal",
        outcome: "stalled",
        reason: "PR state unknown: the provider kept failing",
      };
    }
    return { kind: "watch" };
  }
  // No PR.
  if (t.exitCode !== null && t.exitCode !== 0) {
    return { kind: "terminal", outcome: "killed", reason: `exit code ${t.exitCode}` };
  }
  if (t.exitCode === 0) {
    if (t.ticksSinceExit >= t.exitGraceTicks) {
      return { kind: "terminal", outcome: "stalled", reason: "exited 0 without a PR" };
    }
    return { kind: "watch" };
  }
  if (t.elapsedMs > 2 * t.deadlineMs) {
    return {
      kind: "kill",
      reason: `soft-deadline exceeded (${Math.round(t.deadlineMs / 1000)}s x 2)`,
    };
  }
  if (t.elapsedMs > t.deadlineMs && !t.warned) {
    return {
      kind: "warn",
      message: `running past its soft deadline (${Math.round(t.deadlineMs / 1000)}s) without a PR`,
    };
  }
  return { kind: "watch" };
}

function prLabel(n: number | undefined): string {
  return n === undefined ? "(no number)" : `#${n}`;
}
