/**
 * Why a dispatch did not ship, as a class the cascade acts on: from the
 * outcome, its reason and the stderr tail. `rate_limited` and `transient`
 * are worth another candidate at once (after a backoff); the others are not
 * retried in the same run. Pure.
 *
 * @module
 */

/** The failure classes, in the notes as `class=<name>`. */
export type FailureClass =
  | "rate_limited"
  | "transient"
  | "timeout"
  | "max_turns"
  | "over_budget"
  | "agent_error"
  | "no_pr";

/** What a structured agent session said at its end (cost/session.ts), for the class. */
export interface SessionEnd {
  /** Claude's result `subtype` (`success`, `error_max_turns`, `error_during_execution`). */
  subtype?: string;
  isError?: boolean;
  /** Its result text, or the error it reported. */
  text?: string;
}

/** Classes that move a gap to the next candidate of its cascade. */
export const RETRYABLE: ReadonlySet<FailureClass> = new Set(["rate_limited", "transient"]);

const RATE_LIMITED =
  /\b429\b|rate[ _-]?limit|too many requests|overloaded|quota|resource[ _-]?exhausted|usage limit/i;
const TRANSIENT =
  /ECONNRESET|ECONNREFUSED|ETIMEDOUT|EAI_AGAIN|ENOTFOUND|EPIPE|connection (reset|refused|closed)|socket hang ?up|network (error|is unreachable)|timed? ?out while|\b(HTTP|status)[ :]*5\d\d\b|\b5(00|02|03|04)\b[^\n]*(error|gateway|unavailable)|bad gateway|service unavailable|gateway time-?out|temporarily unavailable|internal server error/i;

/**
 * The class of a dispatch that did not ship; undefined for a shipped one or
 * one that was interrupted (an operator's stop says nothing of the arm).
 *
 * @param outcome the contract's outcome
 * @param reason the first line of the notes (`exit code 1`, `soft-deadline exceeded (...)`, ...)
 * @param tail the stderr tail lines
 * @param session what the agent's structured session said at its end, if it spoke one
 * @example
 * ```ts
 * classify("killed", "exit code 1", ["ERROR: 429 Too Many Requests"]); // "rate_limited"
 * classify("killed", "soft-deadline exceeded (1200s x 2)", []); // "timeout"
 * classify("killed", "exit code 1", [], { subtype: "error_max_turns", isError: true }); // "max_turns"
 * ```
 */
export function classify(
  outcome: string,
  reason: string,
  tail: readonly string[],
  session?: SessionEnd,
): FailureClass | undefined {
  if (outcome === "shipped") return undefined;
  if (/^interrupted by|^orchestrator lost/.test(reason)) return undefined;
  const said = session?.isError || session?.subtype?.startsWith("error") ? session.text ?? "" : "";
  const text = [reason, ...tail, said].join("\n");
  if (RATE_LIMITED.test(text)) return "rate_limited";
  if (TRANSIENT.test(text)) return "transient";
  if (session?.subtype === "error_max_turns") return "max_turns";
  if (/^over budget/.test(reason)) return "over_budget";
  if (/soft-deadline exceeded|^idle for|^ended early|still open/.test(reason)) return "timeout";
  if (/without a PR/.test(reason)) return "no_pr";
  return "agent_error";
}

/**
 * What an outcome does to its gap's backoff (store/backoff.ts): a ship
 * clears it; a failure counts, but not one that says nothing of the gap (an
 * interrupted or lost dispatch, an operator's stop, a take-over, a rate
 * limit, a transient error).
 *
 * @example
 * ```ts
 * backoffEffect("killed", "exit code 1", "agent_error"); // "fail"
 * backoffEffect("killed", "exit code 1", "rate_limited"); // "none"
 * backoffEffect("killed", "interrupted by SIGINT", undefined); // "none"
 * backoffEffect("shipped", "", undefined); // "reset"
 * ```
 */
export function backoffEffect(
  outcome: string,
  reason: string,
  cls: FailureClass | undefined,
): "fail" | "reset" | "none" {
  if (outcome === "shipped") return "reset";
  if (cls === undefined || RETRYABLE.has(cls)) return "none";
  if (/^stopped by the operator|^lease taken over/.test(reason)) return "none";
  return "fail";
}

/**
 * The wait before attempt `n + 1` of a gap, and an arm's n-th cool-down:
 * min(10 s x 2^(n-1), 5 min).
 *
 * @example
 * ```ts
 * [1, 2, 3, 6, 7].map(backoffMs); // [10000, 20000, 40000, 300000, 300000]
 * ```
 */
export function backoffMs(n: number): number {
  return Math.min(10_000 * 2 ** Math.max(0, n - 1), 300_000);
}

/**
 * Arms that are cooling down after a rate limit, fleet-wide for one run:
 * each consecutive hit doubles the wait ({@linkcode backoffMs}); a success
 * resets it. The clock is given.
 */
export class Cooldowns {
  #hits = new Map<string, { n: number; until: number }>();

  /** `arm` was rate limited at `now`: until when it cools down. */
  hit(arm: string, now: number): number {
    const n = (this.#hits.get(arm)?.n ?? 0) + 1;
    const until = now + backoffMs(n);
    this.#hits.set(arm, { n, until });
    return until;
  }

  /** `arm` shipped: its next hit starts from the first wait again. */
  success(arm: string): void {
    this.#hits.delete(arm);
  }

  /** Until when `arm` cools down (ms since the epoch), or undefined when it does not at `now`. */
  coolingUntil(arm: string, now: number): number | undefined {
    const h = this.#hits.get(arm);
    return h !== undefined && h.until > now ? h.until : undefined;
  }
}
