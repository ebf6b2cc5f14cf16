/**
 * Budgets that gate dispatch, pure: `--budget-gap` ends an agent whose
 * running cost passes it, `--budget-run` stops the fill once the run's
 * spend (finished plus running) reaches it, `--budget-day` the same over the
 * last 24 hours (the whole fleet's, with a shared ledger).
 *
 * @module
 */
import { formatUsd } from "./prices.ts";

/** The window of `--budget-day` (and of the dashboard's "last 24 hours"). */
export const BUDGET_DAY_MS = 24 * 3_600_000;

/** The budgets of a run, in USD (undefined: none). */
export interface Budgets {
  gapUsd?: number;
  runUsd?: number;
  dayUsd?: number;
}

/**
 * Why an agent that has cost `usd` so far is ended, or undefined while it is within `budget`.
 *
 * @example
 * ```ts
 * overGapBudget(1.04, 1); // "over budget ($1.04 > $1.00)"
 * overGapBudget(0.5, 1); // undefined
 * overGapBudget(5, undefined); // undefined
 * ```
 */
export function overGapBudget(
  usd: number | undefined,
  budget: number | undefined,
): string | undefined {
  if (budget === undefined || usd === undefined || !(usd > budget)) return undefined;
  return `over budget (${formatUsd(usd)} > ${formatUsd(budget)})`;
}

/** What has been spent, in USD. */
export interface Spend {
  /** This run: finished dispatches plus running agents. */
  run: number;
  /** The last 24 hours: recorded reflections (the fleet's with a ledger) plus this run's running agents. */
  day: number;
}

/**
 * Which budget stops new dispatches, as the text of the run's one
 * `BUDGET:` line, or undefined while both hold.
 *
 * @example
 * ```ts
 * budgetReached({ run: 5.02, day: 9 }, { runUsd: 5 });
 * // "run budget reached: $5.02 spent of $5.00; nothing new is dispatched, running agents finish"
 * budgetReached({ run: 1, day: 20.5 }, { runUsd: 5, dayUsd: 20 });
 * // "daily budget reached: $20.50 spent in the last 24h of $20.00; nothing new is dispatched, running agents finish"
 * budgetReached({ run: 1, day: 1 }, { runUsd: 5 }); // undefined
 * ```
 */
export function budgetReached(spent: Spend, b: Budgets): string | undefined {
  const tail = "nothing new is dispatched, running agents finish";
  if (b.runUsd !== undefined && spent.run >= b.runUsd) {
    return `run budget reached: ${formatUsd(spent.run)} spent of ${formatUsd(b.runUsd)}; ${tail}`;
  }
  if (b.dayUsd !== undefined && spent.day >= b.dayUsd) {
    return `daily budget reached: ${formatUsd(spent.day)} spent in the last 24h of ${
      formatUsd(b.dayUsd)
    }; ${tail}`;
  }
  return undefined;
}
