/**
 * The flags of what a run may spend and retry, declared once: what agents
 * speak, token prices, the three budgets, and the backoff and parking of
 * gaps that keep failing. Pure data, as cli/catalog.ts (which composes them).
 *
 * @module
 */
import { AGENT_FORMATS } from "../cost/formats.ts";
import { BUILT_IN_PRICES_SOURCE } from "../cost/prices.ts";
import { fail, ok } from "../util/result.ts";
import { choiceFlag, countFlag, customFlag, durationFlag, switchFlag, textFlag } from "./flags.ts";

/**
 * A budget in USD: a positive decimal, `$` allowed.
 *
 * @example
 * ```ts
 * readUsd("budget-gap", "$1.50"); // { ok: true, value: 1.5 }
 * readUsd("budget-gap", "0"); // fails: must be more than 0
 * ```
 */
export function readUsd(name: string, text: string) {
  const t = text.trim().replace(/^\$/, "");
  const usd = /^\d+(\.\d+)?$|^\.\d+$/.test(t) ? Number(t) : NaN;
  if (!(usd > 0) || !Number.isFinite(usd)) {
    return fail(`--${name} must be an amount in USD more than 0 (e.g. 2.50), got '${text}'`);
  }
  return ok(usd);
}

const usdFlag = <K extends string>(key: K, name: string, help: string) =>
  customFlag(key, name, "USD", help, undefined as number | undefined, (t) => readUsd(name, t));

export const PRICES = textFlag(
  "prices",
  "prices",
  "FILE",
  "token prices (YAML: 'model-prefix: {input: 3, output: 15, cache_read: 0.3, cache_write: " +
    "3.75}', USD per million tokens) over the built-in table, which holds " +
    `${BUILT_IN_PRICES_SOURCE} (not re-read since)`,
);
export const BUDGET_GAP = usdFlag(
  "budgetGapUsd",
  "budget-gap",
  "an agent whose cost passes USD is ended and recorded killed, 'over budget' (needs a " +
    "structured session)",
);

/** What agents speak, what their tokens cost, and the budgets that gate dispatch. */
export const COST_FLAGS = [
  choiceFlag(
    "agentFormat",
    "agent-format",
    AGENT_FORMATS,
    AGENT_FORMATS.join(", "),
    "what the agent's stdout speaks: claude-stream (Claude Code stream-json), codex-json " +
      "(codex exec --json) or plain; a structured session gives tokens and cost per dispatch " +
      "(default: claude-stream for the claude preset, plain for --agent-cmd)",
    undefined,
  ),
  PRICES,
  BUDGET_GAP,
  usdFlag(
    "budgetRunUsd",
    "budget-run",
    "once the run has spent USD (finished plus running agents), nothing new is dispatched",
  ),
  usdFlag(
    "budgetDayUsd",
    "budget-day",
    "the same over the last 24 hours of this host's ledger (the whole fleet's with --ledger)",
  ),
] as const;

/** Gaps that keep failing: held back, then parked (store/backoff.ts). */
export const BACKOFF_FLAGS = [
  durationFlag(
    "retryAfterMs",
    "retry-after",
    "D",
    "a gap whose dispatch failed is not dispatched again (by any host of the ledger) before D, " +
      "doubling with each failure in a row (default 30m; rate limits, transient errors and " +
      "interrupted dispatches do not count)",
    { min: 0, max: 3650 * 86_400_000, fallback: 30 * 60_000 },
  ),
  countFlag(
    "parkAfter",
    "park-after",
    "N",
    "after N failures in a row a gap is parked: no host dispatches it until 'unpark' (default 3)",
    { min: 1, fallback: 3 },
  ),
] as const;

/** Carrying a PR to merge (watch/fix.ts): fix rounds, auto-merge, a red base. */
export const PR_FLAGS = [
  countFlag(
    "fixRounds",
    "fix-rounds",
    "N",
    "an open PR whose checks failed, whose reviewer requested changes or that conflicts goes " +
      "back to its agent (same worktree and branch, told what is wrong) up to N times " +
      "(default 2; 0: never; needs --pr-provider gh)",
    { min: 0, fallback: 2 },
  ),
  switchFlag(
    "autoMerge",
    "auto-merge",
    "once a PR's checks pass and no review blocks it, request auto-merge once " +
      "(gh pr merge --auto --squash)",
  ),
  switchFlag(
    "pauseWhenBaseRed",
    "pause-when-base-red",
    "while the base branch's head commit has failing checks, dispatch nothing new (running " +
      "agents go on; a watching run waits for it to turn green)",
  ),
] as const;
