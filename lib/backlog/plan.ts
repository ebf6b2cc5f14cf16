/**
 * The dry run's output (CONTRACT §2): one summary line with totals, then one
 * `WOULD DISPATCH:` line per pick. Pure rendering over plain data.
 *
 * @module
 */
import type { Gap } from "./load.ts";
import type { PickOrder } from "./picker.ts";
import { oneLine } from "../util/text.ts";

/** What the dry run shows. */
export interface Plan {
  source: string;
  gaps: readonly Gap[];
  pickable: number;
  picks: readonly Gap[];
  /** Worktree path of each picked id. */
  worktreeOf: (id: string) => string;
  maxParallel: number;
  order: PickOrder;
  /** Gaps left out because a live dispatch holds them. */
  leased?: number;
}

/**
 * Count gaps whose status is `s` (case-insensitive).
 *
 * @example
 * ```ts
 * countStatus(gaps, "open");
 * ```
 */
export function countStatus(gaps: readonly Gap[], s: string): number {
  let n = 0;
  for (const g of gaps) if (g.status.toLowerCase() === s) n++;
  return n;
}

/**
 * The summary line: totals over the backlog and the pick.
 *
 * @example
 * ```ts
 * summaryLine(plan); // "backlog docs/gaps.yaml: gaps=193 open=41 done=147 pickable=15 picked=2 ..."
 * ```
 */
export function summaryLine(plan: Plan): string {
  const leased = plan.leased ? ` leased=${plan.leased}` : "";
  return `backlog ${plan.source}: gaps=${plan.gaps.length} open=${
    countStatus(plan.gaps, "open")
  } ` +
    `done=${countStatus(plan.gaps, "done")} pickable=${plan.pickable}${leased} ` +
    `picked=${plan.picks.length} (max-parallel ${plan.maxParallel}, order ${plan.order})`;
}

/**
 * One `WOULD DISPATCH:` line, exactly as the seed printed it.
 *
 * @example
 * ```ts
 * wouldDispatchLine(gap, "/repo/.claude/worktrees/auto-013");
 * ```
 */
export function wouldDispatchLine(gap: Gap, worktree: string): string {
  return `WOULD DISPATCH: ${oneLine(gap.id)} (prio=${oneLine(gap.priority)} ` +
    `effort=${oneLine(gap.effort)}) in ${worktree}  -- ${oneLine(gap.title)}`;
}

/**
 * Every line of the dry run, summary first.
 *
 * @example
 * ```ts
 * for (const line of renderPlan(plan)) console.log(line);
 * ```
 */
export function renderPlan(plan: Plan): string[] {
  return [
    summaryLine(plan),
    ...plan.picks.map((g) => wouldDispatchLine(g, plan.worktreeOf(g.id))),
  ];
}
