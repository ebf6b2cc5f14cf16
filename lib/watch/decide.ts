/**
 * What to do with one in-flight dispatch at one tick (CONTRACT §4): a pure
 * function of what was observed, read top to bottom like the contract's
 * table; the first row that matches wins.
 *
 * | state at a tick                                   | result                          |
 * | ------------------------------------------------- | ------------------------------- |
 * | PR merged                                         | shipped (PR number)             |
 * | PR closed unmerged                                | ci_failed (PR number)           |
 * | running, its cost past `--budget-gap`             | kill, then killed `over budget` |
 * | PR open, red, agent exited, fix rounds left       | fix: the agent again, told why  |
 * | PR open, red, agent exited, no round left         | stalled `... after N fix rounds`|
 * | PR open                                           | watch until max-watch, stalled  |
 * | exited non-zero, no PR                            | killed, `exit code N`           |
 * | exited 0, no PR after the exit grace              | stalled, `exited 0 without a PR`|
 * | running, no PR, silent > 2x idle timeout         | kill, then killed `idle for D`  |
 * | running, no PR, silent > idle timeout             | IDLE warning once, keep watching|
 * | running, no PR, past its early end, idle or failing quietly | kill, killed `ended early` |
 * | running, no PR, elapsed > 2x deadline             | kill, then killed               |
 * | running, no PR, elapsed > 1x deadline             | warn once, keep watching        |
 *
 * The 2x row is checked before the 1x row: "elapsed > 2x" implies "> 1x",
 * and the 1x row only warns, so reading the 1x row first would make the
 * kill unreachable (the seed's bug).
 *
 * When the provider failed this tick the PR state is unknown. A merged PR
 * outranks the exit code, so an agent that exited is settled by the
 * provider's answer however late it comes (a GitHub outage must not turn
 * ships into failures), bounded by max-watch; meanwhile it holds no slot
 * ({@linkcode awaitsProvider}: the run dispatches as if it had ended):
 *
 * | PR state unknown (provider failed this tick)                | result                                   |
 * | ----------------------------------------------------------- | ---------------------------------------- |
 * | exited N, elapsed > max-watch                                | non-zero: killed `exit code N`; 0: stalled `exited 0; PR state unknown: ...` |
 * | running, elapsed > max-watch                                 | stalled, `PR state unknown: ...`         |
 * | running, elapsed > 2x deadline, 3 failed polls in a row      | kill, then killed (the contract's reason)|
 * | otherwise                                                    | keep watching                            |
 *
 * {@linkcode decideAtStop} is the same "settle by the exit code" rule for an
 * interrupted run: what was known is recorded, not `interrupted`.
 *
 * @module
 */
import type { PrState } from "./providers/types.ts";
import type { Outcome } from "../store/reflection.ts";
import { formatDuration } from "../util/duration.ts";
import { type FixReason, stalledAfterFixes } from "./fix_text.ts";

/**
 * Failed polls in a row that mean "the provider is down", not "a blip": only
 * then does an unknown PR state stop holding back a decision (3 ticks: a
 * rate-limit window or a flaky network recovers within that; a logged-out
 * or unreachable provider does not).
 */
export const PROVIDER_DOWN_TICKS = 3;

/** The reason recorded when the PR state could not be learned. */
export const PR_UNKNOWN = "PR state unknown: the provider kept failing";

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
  /** Provider polls failed in a row, this tick's included (0 when this tick's poll worked). */
  failedPolls: number;
  /** Time since the agent's last output byte. */
  idleMs?: number;
  /** `--idle-timeout` (undefined: off). */
  idleTimeoutMs?: number;
  /** The IDLE warning was already emitted. */
  idleWarned?: boolean;
  /**
   * Where its deadline adapted (learn/deadlines.ts): 1.2 x p90 of its kind's
   * shipped durations, and the failure class its latest stderr lines show, if any.
   */
  earlyEnd?: { afterMs: number; failing?: string };
  /** Why its running cost is past `--budget-gap` (`over budget ($1.04 > $1.00)`); undefined: it is not. */
  overBudget?: string;
  /**
   * With `--fix-rounds`: what is wrong with its open PR (watch/fix.ts), the
   * rounds used and allowed; undefined when its PR cannot go back to it.
   */
  fix?: { reasons: readonly FixReason[]; used: number; max: number };
}

/** What to do about it. */
export type TickDecision =
  | { kind: "watch" }
  | { kind: "warn"; message: string }
  | { kind: "idle"; message: string }
  | { kind: "terminal"; outcome: Outcome; prNumber?: number; reason: string }
  | { kind: "kill"; reason: string }
  | { kind: "fix"; reasons: readonly FixReason[] };

/**
 * Decide one dispatch's fate at one tick.
 *
 * @param t what was observed
 * @returns watch, warn (once), terminal with an outcome, or kill
 * @example
 * ```ts
 * decideTick({ pr: { state: "merged", number: 7 }, exitCode: 1, ticksSinceExit: 0,
 *   elapsedMs: 1000, deadlineMs: 60_000, maxWatchMs: 240_000, exitGraceTicks: 2, warned: false,
 *   failedPolls: 0 });
 * // { kind: "terminal", outcome: "shipped", prNumber: 7, reason: "" }
 * ```
 */
export function decideTick(t: TickInput): TickDecision {
  const pr = t.pr;
  const ended = prEnded(pr);
  if (ended) return ended;
  if (t.exitCode === null && t.overBudget !== undefined) {
    // Its cost is known here whatever the provider says: an agent still spending is ended.
    const open = pr?.state === "open" ? ` (PR ${prLabel(pr.number)} still open)` : "";
    return { kind: "kill", reason: `${t.overBudget}${open}` };
  }
  if (pr?.state === "open") {
    const red = redAfterExit(t);
    if (red) {
      if (t.fix!.used < t.fix!.max) return { kind: "fix", reasons: red };
      return {
        kind: "terminal",
        outcome: "stalled",
        prNumber: pr.number,
        reason: stalledAfterFixes(pr.number, red, t.fix!.used),
      };
    }
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
      if (t.exitCode !== null) return byExitCode(t.exitCode, PR_UNKNOWN);
      return { kind: "terminal", outcome: "stalled", reason: PR_UNKNOWN };
    }
    if (
      t.exitCode === null && t.elapsedMs > 2 * t.deadlineMs &&
      t.failedPolls >= PROVIDER_DOWN_TICKS
    ) {
      return { kind: "kill", reason: deadlineReason(t.deadlineMs) };
    }
    return { kind: "watch" };
  }
  // No PR.
  if (t.exitCode !== null && t.exitCode !== 0) {
    return { kind: "terminal", outcome: "killed", reason: exitReason(t.exitCode) };
  }
  if (t.exitCode === 0) {
    if (t.ticksSinceExit >= t.exitGraceTicks) {
      return { kind: "terminal", outcome: "stalled", reason: "exited 0 without a PR" };
    }
    return { kind: "watch" };
  }
  if (t.idleTimeoutMs !== undefined && t.idleMs !== undefined) {
    if (t.idleMs > 2 * t.idleTimeoutMs) {
      return { kind: "kill", reason: `idle for ${formatDuration(t.idleTimeoutMs)}` };
    }
    if (t.idleMs > t.idleTimeoutMs && !t.idleWarned) {
      return {
        kind: "idle",
        message: `no output for ${formatDuration(t.idleTimeoutMs)} (killed at twice that)`,
      };
    }
  }
  const early = earlyEndReason(t);
  if (early !== undefined) return { kind: "kill", reason: early };
  if (t.elapsedMs > 2 * t.deadlineMs) {
    return { kind: "kill", reason: deadlineReason(t.deadlineMs) };
  }
  if (t.elapsedMs > t.deadlineMs && !t.warned) {
    return {
      kind: "warn",
      message: `running past its soft deadline (${Math.round(t.deadlineMs / 1000)}s) without a PR`,
    };
  }
  return { kind: "watch" };
}

/**
 * What is wrong with an open PR whose agent has exited, when it may go back
 * to it: a round's agent gets the exit grace first (its push needs a moment
 * to show in the PR's checks).
 */
function redAfterExit(t: TickInput): readonly FixReason[] | undefined {
  if (!t.fix || t.fix.max <= 0 || t.exitCode === null || t.fix.reasons.length === 0) {
    return undefined;
  }
  if (t.fix.used > 0 && t.ticksSinceExit < t.exitGraceTicks) return undefined;
  return t.fix.reasons;
}

/**
 * The agent has exited and only the PR provider's answer is awaited (it
 * failed at the last poll): the dispatch holds no agent slot meanwhile.
 *
 * @param exitCode the agent's exit code, or null while it runs
 * @param pr the PR state of the last poll (undefined: that poll failed)
 * @example
 * ```ts
 * awaitsProvider(0, undefined); // true
 * awaitsProvider(null, undefined); // false
 * ```
 */
export function awaitsProvider(exitCode: number | null, pr: PrState | undefined): boolean {
  return exitCode !== null && pr === undefined;
}

/**
 * The run is stopping (SIGINT/SIGTERM) and this agent had already exited:
 * record what was known, not "interrupted". An open PR seen at the last
 * successful poll is `stalled`, `PR #N still open` (as at max-watch); else a
 * non-zero exit is `killed` with `exit code N`, and exit 0 is `stalled` (its
 * PR, if any, was never seen). An agent still running gets undefined: the
 * interrupt ends it.
 *
 * @param exitCode the agent's exit code, or null while it runs
 * @param signalName the signal that stopped the run, e.g. `SIGINT`
 * @param lastPr the PR state of the last successful poll, if any
 * @example
 * ```ts
 * decideAtStop(1, "SIGINT"); // { kind: "terminal", outcome: "killed", reason: "exit code 1" }
 * decideAtStop(null, "SIGINT"); // undefined
 * ```
 */
export function decideAtStop(
  exitCode: number | null,
  signalName: string,
  lastPr?: PrState,
): Extract<TickDecision, { kind: "terminal" }> | undefined {
  if (exitCode === null) return undefined;
  if (lastPr?.state === "open") {
    return {
      kind: "terminal",
      outcome: "stalled",
      prNumber: lastPr.number,
      reason: `PR ${prLabel(lastPr.number)} still open`,
    };
  }
  return byExitCode(exitCode, `PR state unknown: interrupted by ${signalName}`);
}

/** Rows 1 and 2: a merged PR is `shipped`, a closed one `ci_failed`. */
function prEnded(pr: PrState | undefined): Extract<TickDecision, { kind: "terminal" }> | undefined {
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
  return undefined;
}

/** Settle an exited agent whose PR state could not be learned. */
function byExitCode(
  exitCode: number,
  why: string,
): Extract<TickDecision, { kind: "terminal" }> {
  if (exitCode !== 0) {
    return { kind: "terminal", outcome: "killed", reason: exitReason(exitCode) };
  }
  return { kind: "terminal", outcome: "stalled", reason: `exited 0; ${why}` };
}

/**
 * `exit code N`; a negative code means the agent ended while nobody could
 * record its status (see process/spawn.ts `EXIT_UNRECORDED`).
 */
function exitReason(code: number): string {
  return code < 0 ? "exit status not recorded (the agent ended unwatched)" : `exit code ${code}`;
}

/**
 * The reason of a deadline kill (the contract's): `soft-deadline exceeded (<N>s x 2)`.
 *
 * @example
 * ```ts
 * deadlineReason(1_200_000); // "soft-deadline exceeded (1200s x 2)"
 * ```
 */
export function deadlineReason(deadlineMs: number): string {
  return `soft-deadline exceeded (${Math.round(deadlineMs / 1000)}s x 2)`;
}

/**
 * An agent silent this long past its early end has gone idle (or `--idle-timeout`, when longer):
 * a long tool call (a test suite) can be silent a few minutes.
 */
export const EARLY_END_IDLE_MS = 5 * 60_000;

/** An agent whose latest stderr shows a failure class, and quiet this long, is failing. */
export const EARLY_END_FAILING_QUIET_MS = 60_000;

/**
 * Why a running agent without a PR ends early: past 1.2 x p90 of its kind's
 * shipped durations, and idle ({@linkcode EARLY_END_IDLE_MS}, or the idle
 * timeout when longer), or quiet a minute after its latest stderr lines
 * showed a known failure class; undefined: it does not.
 *
 * @example
 * ```ts
 * earlyEndReason({ elapsedMs: 700_000, idleMs: 360_000, earlyEnd: { afterMs: 600_000 } });
 * // "ended early: idle 6m past 10m (1.2 x p90 of shipped)"
 * ```
 */
export function earlyEndReason(
  t: Pick<TickInput, "elapsedMs" | "idleMs" | "idleTimeoutMs" | "earlyEnd">,
): string | undefined {
  const e = t.earlyEnd;
  if (e === undefined || t.elapsedMs <= e.afterMs || t.idleMs === undefined) return undefined;
  const past = `past ${formatDuration(e.afterMs)} (1.2 x p90 of shipped)`;
  if (e.failing !== undefined && t.idleMs >= EARLY_END_FAILING_QUIET_MS) {
    return `ended early: stderr shows ${e.failing} ${past}`;
  }
  if (t.idleMs >= Math.max(EARLY_END_IDLE_MS, t.idleTimeoutMs ?? 0)) {
    return `ended early: idle ${formatDuration(t.idleMs)} ${past}`;
  }
  return undefined;
}

function prLabel(n: number | undefined): string {
  return n === undefined ? "(no number)" : `#${n}`;
}

/**
 * The outcome of a dispatch whose orchestrator was lost (see watch/reap.ts),
 * from one PR poll after the fact: a PR that merged or closed while nobody
 * watched decides it as at a tick (`shipped`, `ci_failed`); otherwise it is
 * `killed` with `reason` (`orchestrator lost`), naming a PR still open.
 *
 * @param pr the branch's PR state, or undefined when the provider failed
 * @param reason why it ended otherwise
 * @example
 * ```ts
 * decideReaped({ state: "merged", number: 4 }, "orchestrator lost");
 * // { kind: "terminal", outcome: "shipped", prNumber: 4, reason: "" }
 * decideReaped(undefined, "orchestrator lost");
 * // { kind: "terminal", outcome: "killed", reason: "orchestrator lost" }
 * ```
 */
export function decideReaped(
  pr: PrState | undefined,
  reason: string,
): Extract<TickDecision, { kind: "terminal" }> {
  const ended = prEnded(pr);
  if (ended) return ended;
  if (pr?.state === "open") {
    return {
      kind: "terminal",
      outcome: "killed",
      prNumber: pr.number,
      reason: `${reason} (PR ${prLabel(pr.number)} still open)`,
    };
  }
  return { kind: "terminal", outcome: "killed", reason };
}
