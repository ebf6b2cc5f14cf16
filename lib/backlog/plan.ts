/**
 * The dry run's output (CONTRACT §2): one summary line with totals, then one
 * `WOULD DISPATCH:` line per pick, and with `--explain` one `NOT PICKED:`
 * line per other gap saying why. Pure rendering over plain data.
 *
 * @module
 */
import type { Gap } from "./gap.ts";
import { doneIds, isStatus, type PickOrder, skipReason } from "./picker.ts";
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

/** The summary line: totals over the backlog and the pick. */
function summaryLine(plan: Plan): string {
  const leased = plan.leased ? ` leased=${plan.leased}` : "";
  let open = 0;
  let done = 0;
  // Indexed, not for-of: a one-time loop over every gap, mostly run before the JIT compiles it.
  for (let i = 0; i < plan.gaps.length; i++) {
    if (isStatus(plan.gaps[i], "open")) open++;
    else if (isStatus(plan.gaps[i], "done")) done++;
  }
  return `backlog ${plan.source}: gaps=${plan.gaps.length} open=${open} ` +
    `done=${done} pickable=${plan.pickable}${leased} ` +
    `picked=${plan.picks.length} (max-parallel ${plan.maxParallel}, order ${plan.order})`;
}

/** One `WOULD DISPATCH:` line, exactly as the seed printed it. */
function wouldDispatchLine(gap: Gap, worktree: string): string {
  return `WOULD DISPATCH: ${oneLine(gap.id)} (prio=${oneLine(gap.priority)} ` +
    `effort=${oneLine(gap.effort)}) in ${worktree}  -- ${oneLine(gap.title)}`;
}

/**
 * Every line of the dry run, summary first.
 *
 * @example
 * ```ts
 * import { renderPlan } from "./plan.ts";
 *
 * const lines = renderPlan({
 *   source: "docs/gaps.yaml", gaps: [], pickable: 0, picks: [],
 *   worktreeOf: (id) => `/repo/.claude/worktrees/${id}`, maxParallel: 2, order: "priority",
 * });
 * for (const line of lines) console.log(line);
 * ```
 */
export function renderPlan(plan: Plan): string[] {
  return [
    summaryLine(plan),
    ...plan.picks.map((g) => wouldDispatchLine(g, plan.worktreeOf(g.id))),
  ];
}

/** What {@linkcode explainLines} needs beyond the backlog. */
export interface Explained {
  /** Every pickable gap, in dispatch order. */
  pickable: readonly Gap[];
  /** The gaps taken (the first `maxParallel` of `pickable`). */
  picks: readonly Gap[];
  /** Gap ids held by live dispatches. */
  leased: ReadonlySet<string>;
  maxParallel: number;
  /** Gaps held back after failures in a row, and why (`parked after 3 failures: ...`). */
  heldBack?: ReadonlyMap<string, string>;
}

/**
 * One `NOT PICKED:` line per gap that was not picked, in file order, with
 * the picker's reason: its own (status, priority, effort, dependencies), a
 * live lease, an earlier occurrence of its id taken instead, or the
 * `--max-parallel` cap.
 *
 * @example
 * ```ts
 * import { explainLines } from "./plan.ts";
 *
 * const gap = {
 *   id: "A-1", title: "", priority: "P3", effort: "s", status: "open", dependsOn: [],
 *   file: "gaps.yaml", line: 2,
 * };
 * explainLines([gap], { pickable: [], picks: [], leased: new Set(), maxParallel: 2 });
 * // ["NOT PICKED: A-1 (gaps.yaml:2): priority P3"]
 * ```
 */
export function explainLines(gaps: readonly Gap[], explained: Explained): string[] {
  const { pickable, picks, leased, maxParallel } = explained;
  const taken = new Set(picks);
  const canTake = new Set(pickable);
  const firstTaken = new Map<string, Gap>();
  for (const g of pickable) firstTaken.set(g.id, g);
  const done = doneIds(gaps);
  const lines: string[] = [];
  for (const g of gaps) {
    if (taken.has(g)) continue;
    let why: string;
    if (canTake.has(g)) why = `pickable, but --max-parallel ${maxParallel} were taken first`;
    else if (explained.heldBack?.has(g.id) && skipReason(g, done) === null) {
      why = explained.heldBack.get(g.id)!;
    } else if (leased.has(g.id)) why = "leased by a live dispatch";
    else {
      const first = firstTaken.get(g.id);
      why = skipReason(g, done) ??
        (first
          ? `duplicate id; the first pickable one is at ${first.file}:${first.line}`
          : "not pickable");
    }
    lines.push(`NOT PICKED: ${oneLine(g.id)} (${g.file}:${g.line}): ${oneLine(why)}`);
  }
  return lines;
}
