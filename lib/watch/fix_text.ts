/**
 * A fix round's words (watch/fix.ts), pure: why an open PR goes back to its
 * agent, those reasons for people, the reason of a PR still red after the
 * last round, and the round's prompt.
 *
 * @module
 */
import type { PrReview } from "./providers/types.ts";

/** Why a PR went back to its agent. */
export type FixReason = "ci_failed" | "changes_requested" | "conflict";

/**
 * What is wrong with an open PR, in the order a fix round deals with it.
 *
 * @example
 * ```ts
 * fixReasonsOf({ checks: "failing", failing: [], conflicting: true, comments: [] });
 * // ["ci_failed", "conflict"]
 * ```
 */
export function fixReasonsOf(review: PrReview): FixReason[] {
  const out: FixReason[] = [];
  if (review.checks === "failing") out.push("ci_failed");
  if (review.reviewDecision === "CHANGES_REQUESTED") out.push("changes_requested");
  if (review.conflicting) out.push("conflict");
  return out;
}

/**
 * The reasons for people: `checks failing (lint, test)`, `changes requested`,
 * `conflicts with origin/main`.
 *
 * @example
 * ```ts
 * reasonsText(["ci_failed"], { checks: "failing", failing: [{ name: "lint" }], conflicting: false, comments: [] }, "origin/main");
 * // "checks failing (lint)"
 * ```
 */
export function reasonsText(
  reasons: readonly FixReason[],
  review: PrReview,
  baseRef: string,
): string {
  return reasons.map((r) =>
    r === "ci_failed"
      ? `checks failing (${review.failing.map((f) => f.name).join(", ") || "the rollup"})`
      : r === "changes_requested"
      ? "changes requested"
      : `conflicts with ${baseRef}`
  ).join("; ");
}

/**
 * The reason of a PR still red after the last round: `PR #12: checks still
 * failing after 2 fix rounds`.
 *
 * @example
 * ```ts
 * stalledAfterFixes(12, ["changes_requested"], 2); // "PR #12: changes still requested after 2 fix rounds"
 * ```
 */
export function stalledAfterFixes(
  pr: number | undefined,
  reasons: readonly FixReason[],
  rounds: number,
): string {
  const what = reasons.map((r) =>
    r === "ci_failed"
      ? "checks still failing"
      : r === "changes_requested"
      ? "changes still requested"
      : "still conflicting"
  ).join(", ");
  const label = pr === undefined ? "the PR" : `PR #${pr}`;
  return `${label}: ${what} after ${rounds} fix round${rounds === 1 ? "" : "s"}`;
}

/** What a fix round's prompt is made of. */
export interface FixBrief {
  gapId: string;
  pr?: number;
  round: number;
  rounds: number;
  baseRef: string;
  reasons: readonly FixReason[];
  review: PrReview;
  /** The failed checks' log tails, by check name. */
  logs: ReadonlyMap<string, string>;
}

/**
 * The prompt of a fix round: what is wrong (the failing checks and their log
 * tails, the review comments, the conflict) and what to do.
 *
 * @example
 * ```ts
 * const review = { checks: "failing" as const, failing: [{ name: "test" }], conflicting: false, comments: [] };
 * fixPrompt({ gapId: "A-1", pr: 12, round: 1, rounds: 2, baseRef: "origin/main", reasons: ["ci_failed"], review, logs: new Map() })
 *   .startsWith("Fix round 1 of 2 for gap A-1: its PR #12 cannot merge yet."); // true
 * ```
 */
export function fixPrompt(b: FixBrief): string {
  const pr = b.pr === undefined ? "its PR" : `its PR #${b.pr}`;
  const lines = [
    `Fix round ${b.round} of ${b.rounds} for gap ${b.gapId}: ${pr} cannot merge yet.`,
    "You are in the same worktree, on the same branch. What is wrong:",
  ];
  if (b.reasons.includes("ci_failed")) {
    lines.push("", `- Checks failing: ${b.review.failing.map((f) => f.name).join(", ")}.`);
    for (const f of b.review.failing) {
      const log = b.logs.get(f.name);
      if (log) lines.push(`  The end of the failed log of ${f.name}:`, "```", log, "```");
    }
  }
  if (b.reasons.includes("changes_requested")) {
    lines.push("", "- A reviewer requested changes (their words, quoted from the PR):");
    for (const c of b.review.comments) lines.push(`  > ${c.replaceAll("\n", "\n  > ")}`);
  }
  if (b.reasons.includes("conflict")) {
    lines.push(
      "",
      `- It conflicts with ${b.baseRef}: rebase onto ${b.baseRef} and resolve the conflicts.`,
    );
  }
  lines.push(
    "",
    "Fix it, commit, push to the same branch (the PR updates itself), and reply with only the PR number.",
  );
  return lines.join("\n");
}
