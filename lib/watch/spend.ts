/**
 * What a run spends, and the budgets that gate it: each flight's cost (its
 * structured session priced at the run's table, priced again only when the
 * session changed), the run's spend (finished dispatches plus running
 * agents) and the day's (the last 24 hours' recorded spend before this run,
 * plus this run's), the `--budget-gap` check of a running agent, the
 * `--budget-run`/`--budget-day` gate of the fill (one `BUDGET:` line), and
 * the throttled `usage` report of a running agent (its event, and its
 * lease's cost columns).
 *
 * @module
 */
import { overGapBudget, type Spend } from "../cost/budget.ts";
import { budgetReached } from "../cost/budget.ts";
import { BUILT_IN_PRICES, type DispatchCost, dispatchCost, roundUsd } from "../cost/prices.ts";
import type { CostFacts } from "../store/notes.ts";
import type { Flight, RunState } from "./state.ts";

/**
 * A flight's cost now, or undefined when its agent speaks no structured
 * session.
 *
 * @example
 * ```ts ignore
 * flightCost(run, flight)?.usd; // 0.42
 * ```
 */
export function flightCost(run: RunState, flight: Flight): DispatchCost | undefined {
  const session = flight.dispatch.process.session;
  if (!session) return flight.priorCost;
  if (flight.priced?.version !== session.version) {
    const now = dispatchCost(session.usage(), run.config.prices ?? BUILT_IN_PRICES);
    const value = flight.priorCost ? addCosts(flight.priorCost, now) : now;
    flight.priced = { version: session.version, value };
  }
  return flight.priced.value;
}

/**
 * Two rounds' costs as one dispatch's (the later round's session and model).
 *
 * @example
 * ```ts
 * const c = (usd: number) => ({ usd, source: "reported" as const, unpriced: [], turns: 1,
 *   tokens: { input: 1, output: 1, cacheRead: 0, cacheWrite: 0 } });
 * addCosts(c(1), c(0.5)).usd; // 1.5
 * ```
 */
export function addCosts(a: DispatchCost, b: DispatchCost): DispatchCost {
  return {
    usd: a.usd === undefined && b.usd === undefined ? undefined : (a.usd ?? 0) + (b.usd ?? 0),
    source: b.source,
    unpriced: [...new Set([...a.unpriced, ...b.unpriced])],
    tokens: {
      input: a.tokens.input + b.tokens.input,
      output: a.tokens.output + b.tokens.output,
      cacheRead: a.tokens.cacheRead + b.tokens.cacheRead,
      cacheWrite: a.tokens.cacheWrite + b.tokens.cacheWrite,
    },
    turns: a.turns + b.turns,
    sessionId: b.sessionId ?? a.sessionId,
    model: b.model ?? a.model,
  };
}

/**
 * A dispatch's cost as its notes and lease record it.
 *
 * @example
 * ```ts
 * costFacts({ usd: 0.5, source: "reported", unpriced: [], turns: 3, sessionId: "s1",
 *   tokens: { input: 10, output: 20, cacheRead: 30, cacheWrite: 40 } }).tokensOut; // 20
 * ```
 */
export function costFacts(c: DispatchCost): CostFacts {
  return {
    usd: c.usd,
    tokensIn: c.tokens.input,
    tokensOut: c.tokens.output,
    cacheRead: c.tokens.cacheRead,
    cacheWrite: c.tokens.cacheWrite,
    turns: c.turns,
    session: c.sessionId,
    sessionModel: c.model,
  };
}

/**
 * What the run has spent (finished dispatches plus running agents), and
 * the day's spend with it.
 *
 * @example
 * ```ts ignore
 * runSpend(run); // { run: 1.25, day: 7.5 }
 * ```
 */
export function runSpend(run: RunState): Spend {
  let spent = 0;
  for (const o of run.result.outcomes) spent += o.cost?.usd ?? 0;
  for (const f of run.flights.values()) spent += flightCost(run, f)?.usd ?? 0;
  return { run: spent, day: (run.money.dayBefore ?? 0) + spent };
}

/**
 * Why the running agent of `flight` is ended for its cost (`--budget-gap`),
 * or undefined.
 */
export function overBudget(run: RunState, flight: Flight): string | undefined {
  const budget = run.config.budgets?.gapUsd;
  if (budget === undefined) return undefined;
  return overGapBudget(flightCost(run, flight)?.usd, budget);
}

/**
 * May the fill dispatch anything new? Not once `--budget-run` or
 * `--budget-day` is reached: said once (`BUDGET: ...`), and what waits for
 * its next attempt is let go (nothing new will start in this run).
 *
 * @example
 * ```ts ignore
 * if (!budgetAllows(run)) return;
 * ```
 */
export function budgetAllows(run: RunState): boolean {
  const budgets = run.config.budgets;
  if (budgets?.runUsd === undefined && budgets?.dayUsd === undefined) return true;
  if (run.money.reached === undefined) {
    const spent = runSpend(run);
    const reached = budgetReached(spent, budgets);
    if (reached === undefined) return true;
    run.money.reached = reached;
    run.report.report({
      kind: "budget",
      message: reached,
      fields: {
        budget: budgets.runUsd !== undefined && spent.run >= budgets.runUsd ? "run" : "day",
        spent_usd: roundUsd(spent.run),
        day_usd: roundUsd(spent.day),
        running: run.flights.size,
      },
    });
  }
  // Also what went back to wait after the line was said (a cascade's next arm).
  for (const { gap } of run.queue.waiting.values()) {
    run.report.report({ kind: "not_dispatched", gapId: gap.id, why: "budget" });
  }
  run.queue.waiting.clear();
  return false;
}

/** How often a running agent's usage is reported at most (its event and its lease's columns). */
export const USAGE_EVERY_MS = 10_000;

/**
 * Report a running agent's usage when it changed, at most every
 * {@linkcode USAGE_EVERY_MS}: a `usage` event, and the cost columns of its
 * lease (for `status`, the dashboard and other runs' daily budget).
 */
export function reportUsage(run: RunState, flight: Flight, t: number): void {
  const cost = flightCost(run, flight);
  if (!cost || flight.priced === undefined) return;
  if (flight.usageSaid !== undefined) {
    if (flight.usageSaid.version === flight.priced.version) return;
    if (t - flight.usageSaid.at < USAGE_EVERY_MS) return;
  }
  flight.usageSaid = { version: flight.priced.version, at: t };
  const d = flight.dispatch;
  run.report.report({
    kind: "usage",
    ids: { gapId: d.gap.id, leaseId: d.leaseId },
    fields: usageFields(cost),
  });
  if (d.leaseId !== null) run.deps.ledger?.noteCost(d.leaseId, costFacts(cost)).catch(() => {});
}

/**
 * A cost's figures as events carry them.
 *
 * @example
 * ```ts
 * usageFields({ usd: 0.123456, source: "priced", unpriced: [], turns: 2,
 *   tokens: { input: 1, output: 2, cacheRead: 3, cacheWrite: 4 } }).cost_usd; // 0.1235
 * ```
 */
export function usageFields(c: DispatchCost) {
  return {
    cost_usd: c.usd === undefined ? null : roundUsd(c.usd),
    tokens_in: c.tokens.input,
    tokens_out: c.tokens.output,
    tokens_cache_read: c.tokens.cacheRead,
    tokens_cache_write: c.tokens.cacheWrite,
    turns: c.turns,
    session: c.sessionId ?? null,
    model: c.model ?? null,
  };
}
