/**
 * What a run reports: one `OUTCOME:` line per terminal outcome as it
 * happens, the end-of-run summary with the contract's totals line, and the
 * exit code (CONTRACT §4, §6). Pure rendering over plain data.
 *
 * @module
 */
import type { Outcome } from "../store/reflection.ts";
import { oneLine } from "../util/text.ts";
import { formatUsd } from "../cost/prices.ts";
import type { CostFacts } from "../store/notes.ts";

/** One terminal outcome of the run. */
export interface OutcomeRecord {
  gapId: string;
  outcome: Outcome;
  durationS: number;
  prNumber?: number;
  reason: string;
  /** Set when the worktree was kept: where and why. */
  kept?: string;
  /** The gap went on to the next arm of its cascade: this outcome is not its last. */
  retried?: boolean;
  /** What it cost, when its agent spoke a structured session. */
  cost?: CostFacts;
}

/** What a run did. */
export interface RunResult {
  outcomes: OutcomeRecord[];
  failures: { gapId: string; reason: string }[];
  /** Dispatches left running (no --watch). */
  detached: number;
  /** Dispatches another host took over (shared ledger): their outcomes are recorded there. */
  lost?: { gapId: string; by: string }[];
  /** `SIGINT`/`SIGTERM`/`SIGHUP` when the run was interrupted. */
  interrupted?: string;
  /**
   * Agents left running when the run stopped on a hangup (SIGHUP): they
   * outlive it under their waiters, and the next watching run adopts them.
   */
  leftRunning?: number;
}

/**
 * One line per terminal outcome.
 *
 * @example
 * ```ts
 * import { outcomeLine } from "./summary.ts";
 *
 * outcomeLine({ gapId: "A-1", outcome: "shipped", durationS: 42, prNumber: 7, reason: "" });
 * // "OUTCOME: A-1 shipped duration_s=42 pr=#7"
 * ```
 */
export function outcomeLine(o: OutcomeRecord): string {
  const pr = o.prNumber === undefined ? "none" : `#${o.prNumber}`;
  const cost = o.cost?.usd === undefined ? "" : ` cost=${formatUsd(o.cost.usd)}`;
  const reason = o.reason ? ` -- ${oneLine(o.reason, 300)}` : "";
  const kept = o.kept ? ` [worktree kept: ${o.kept}]` : "";
  return `OUTCOME: ${
    oneLine(o.gapId)
  } ${o.outcome} duration_s=${o.durationS} pr=${pr}${cost}${reason}${kept}`;
}

/**
 * What the run spent, when any dispatch spoke a structured session:
 * `spent $3.12 on 7 dispatches ($0.78 per shipped gap)`; undefined when none did.
 *
 * @example
 * ```ts
 * const o = (outcome: "shipped" | "killed", usd: number) => ({ gapId: "A", outcome,
 *   durationS: 1, reason: "", cost: { usd, tokensIn: 0, tokensOut: 0, cacheRead: 0, cacheWrite: 0, turns: 1 } });
 * spentLine({ outcomes: [o("killed", 1), o("shipped", 0.5)], failures: [], detached: 0 });
 * // "spent $1.50 on 2 dispatches ($1.50 per shipped gap)"
 * ```
 */
export function spentLine(result: RunResult): string | undefined {
  const costed = result.outcomes.filter((o) => o.cost !== undefined);
  if (costed.length === 0) return undefined;
  const usd = spentUsd(result);
  const shipped = new Set(
    result.outcomes.filter((o) => o.outcome === "shipped").map((o) => o.gapId),
  );
  const per = shipped.size === 0
    ? "nothing shipped"
    : `${formatUsd(usd / shipped.size)} per shipped gap`;
  const unknown = costed.filter((o) => o.cost?.usd === undefined).length;
  const unpriced = unknown === 0 ? "" : `; ${unknown} with no price for their model (--prices)`;
  return `spent ${formatUsd(usd)} on ${costed.length} dispatch${
    costed.length === 1 ? "" : "es"
  } (${per})${unpriced}`;
}

/** Dollars the run's outcomes cost (those with a known cost). */
export function spentUsd(result: RunResult): number {
  let usd = 0;
  for (const o of result.outcomes) usd += o.cost?.usd ?? 0;
  return usd;
}

/**
 * Each gap's latest outcome, in the order of the gaps' first outcomes, with
 * the outcomes of its earlier attempts (a routing table's cascade retries a
 * gap on its next arm: one gap, several attempts).
 *
 * @example
 * ```ts
 * const o = (outcome: "shipped" | "killed") => ({ gapId: "A-1", outcome, durationS: 1, reason: "" });
 * byGap({ outcomes: [o("killed"), o("shipped")], failures: [], detached: 0 })[0].earlier;
 * // ["killed"]
 * ```
 */
export function byGap(result: RunResult): { last: OutcomeRecord; earlier: Outcome[] }[] {
  const gaps = new Map<string, { last: OutcomeRecord; earlier: Outcome[] }>();
  for (const o of result.outcomes) {
    const seen = gaps.get(o.gapId);
    if (seen) {
      seen.earlier.push(seen.last.outcome);
      seen.last = o;
    } else gaps.set(o.gapId, { last: o, earlier: [] });
  }
  return [...gaps.values()];
}

/**
 * How many gaps of the run have each outcome so far (a gap counts once, by
 * its latest attempt), and its dispatch failures: the totals line, the
 * `run_finished` event and the live view.
 *
 * @example
 * ```ts
 * outcomeCounts({ outcomes: [], failures: [], detached: 0 }).shipped; // 0
 * ```
 */
export function outcomeCounts(result: RunResult): Record<Outcome | "spawn_failures", number> {
  const counts = tally(byGap(result).map((g) => g.last.outcome));
  return { ...counts, spawn_failures: result.failures.length };
}

/** How many of each outcome, every outcome named. */
function tally(outcomes: Outcome[]): Record<Outcome, number> {
  const counts = { shipped: 0, ci_failed: 0, stalled: 0, killed: 0 };
  for (const o of outcomes) counts[o]++;
  return counts;
}

/**
 * The end-of-run summary: one line per gap (its latest outcome, and its
 * earlier attempts when it had some), then the totals line of the contract
 * (gaps), then, when a gap was tried more than once, the attempts' totals.
 *
 * @example
 * ```ts
 * import { summaryLines } from "./summary.ts";
 *
 * summaryLines({ outcomes: [], failures: [], detached: 0 }).at(-1);
 * // "shipped=0  ci_failed=0  stalled=0  killed=0  spawn_failures=0"
 * ```
 */
export function summaryLines(result: RunResult): string[] {
  const lines = ["SUMMARY:"];
  const gaps = byGap(result);
  for (const { last, earlier } of gaps) {
    const before = earlier.length === 0
      ? ""
      : ` [after ${earlier.length} earlier attempt(s): ${earlier.join(", ")}]`;
    lines.push(`  ${outcomeLine(last).slice("OUTCOME: ".length)}${before}`);
  }
  for (const f of result.failures) {
    lines.push(`  ${oneLine(f.gapId)} spawn_failed -- ${oneLine(f.reason, 300)}`);
  }
  for (const l of result.lost ?? []) {
    lines.push(
      `  ${oneLine(l.gapId)} lost -- taken over by ${oneLine(l.by)}, which records its outcome`,
    );
  }
  const n = outcomeCounts(result);
  lines.push(
    `shipped=${n.shipped}  ci_failed=${n.ci_failed}  stalled=${n.stalled}  ` +
      `killed=${n.killed}  spawn_failures=${n.spawn_failures}`,
  );
  if (result.outcomes.length > gaps.length) {
    const a = tally(result.outcomes.map((o) => o.outcome));
    lines.push(
      `attempts: ${result.outcomes.length} for ${gaps.length} gap(s): shipped=${a.shipped}  ` +
        `ci_failed=${a.ci_failed}  stalled=${a.stalled}  killed=${a.killed}`,
    );
  }
  const kept = result.outcomes.filter((o) => o.kept);
  if (kept.length > 0) {
    lines.push(`worktrees kept (they hold work): ${kept.map((o) => o.kept).join("; ")}`);
  }
  const spent = spentLine(result);
  if (result.leftRunning) {
    lines.push(
      `left ${result.leftRunning} agent(s) running: the next 'watch' (or --no-dry-run --watch) ` +
        "adopts them",
    );
  }
  if (spent !== undefined) lines.push(spent);
  return lines;
}

/**
 * Exit code of a run (CONTRACT §6): 130 interrupted, 129 hung up (agents
 * left running for adoption), 1 a dispatch failed, 3 a watched outcome other
 * than shipped (an attempt that a retry on the next arm followed does not count), else 0.
 *
 * @example
 * ```ts
 * import { runExitCode } from "./summary.ts";
 *
 * runExitCode({ outcomes: [], failures: [], detached: 0 }, true); // 0
 * ```
 */
export function runExitCode(result: RunResult, watch: boolean): number {
  if (result.interrupted) return result.interrupted === "SIGHUP" ? 129 : 130;
  if (result.failures.length > 0) return 1;
  if (watch && result.outcomes.some((o) => o.outcome !== "shipped" && !o.retried)) return 3;
  return 0;
}
