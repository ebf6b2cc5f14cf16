/**
 * Which gaps are safe to hand to a robot, and in what order (CONTRACT §2).
 * Pure: plain data in, plain data out; no I/O, no clock.
 *
 * A gap is pickable iff its status is `open`, its priority is P0..P2, its
 * effort is not `xl`, every dependency names a gap that is `done` (or shipped
 * earlier in this run), it is not leased by a live dispatch, and its id has
 * not been picked already (first pickable occurrence wins). Comparisons are
 * case-insensitive. Order: priority, then file order (a stable sort).
 *
 * @module
 */
import type { Gap } from "./gap.ts";

/** How to order pickable gaps: by priority (default) or the seed's file order. */
export type PickOrder = "priority" | "file";

/** Inputs to {@linkcode pickGaps} beyond the gaps themselves. */
export interface PickOptions {
  /** Take at most this many. */
  limit: number;
  order?: PickOrder;
  /** Gap ids held by a live dispatch (this run or another orchestrator's). */
  leased?: ReadonlySet<string>;
  /** Ids already dispatched in this run, whatever their outcome. */
  dispatched?: ReadonlySet<string>;
  /** Ids shipped in this run: they count as done for dependencies. */
  shipped?: ReadonlySet<string>;
}

/**
 * Priorities a robot may take, most urgent first, in both cases (no
 * lowercased copy per gap on 100,000 gaps). A Map, not an object literal:
 * a priority written `constructor` or `__proto__` must not find
 * Object.prototype's members.
 */
const PRIORITY_RANK: ReadonlyMap<string, number> = new Map([
  ["p0", 0],
  ["p1", 1],
  ["p2", 2],
  ["P0", 0],
  ["P1", 1],
  ["P2", 2],
]);

/**
 * The ids whose gaps count as done: status `done` anywhere in the backlog,
 * plus `shipped` (done within this run).
 *
 * @example
 * ```ts
 * import { doneIds } from "./picker.ts";
 * import type { Gap } from "./gap.ts";
 *
 * const done: Gap = {
 *   id: "AUTO-001", title: "t", priority: "P1", effort: "s", status: "done", dependsOn: [],
 *   file: "gaps.yaml", line: 2,
 * };
 * doneIds([done]).has("AUTO-001"); // true
 * ```
 */
export function doneIds(gaps: readonly Gap[], shipped?: ReadonlySet<string>): Set<string> {
  const done = new Set<string>(shipped);
  // Indexed: this runs once per load over every gap, mostly before the JIT has compiled it.
  for (let i = 0; i < gaps.length; i++) if (isStatus(gaps[i], "done")) done.add(gaps[i].id);
  return done;
}

/**
 * Why a gap is not pickable on its own merits (rules 1-4), or null if it is.
 *
 * @param gap the gap
 * @param done ids that count as done
 * @example
 * ```ts
 * import { skipReason } from "./picker.ts";
 * import type { Gap } from "./gap.ts";
 *
 * const gap: Gap = {
 *   id: "A-1", title: "t", priority: "P3", effort: "s", status: "open", dependsOn: [],
 *   file: "gaps.yaml", line: 2,
 * };
 * skipReason(gap, new Set()); // "priority P3"
 * ```
 */
export function skipReason(gap: Gap, done: ReadonlySet<string>): string | null {
  switch (skipRule(gap, done)) {
    case null:
      return null;
    case "status":
      return `status ${gap.status || "missing"}`;
    case "priority":
      return `priority ${gap.priority || "missing"}`;
    case "effort":
      return "effort xl needs a human breakdown";
    case "dependencies":
      return `waits for ${gap.dependsOn.filter((x) => !done.has(x)).join(", ")}`;
  }
}

/** The rules a gap can fail on its own merits, in the order they are checked. */
type Rule = "status" | "priority" | "effort" | "dependencies";

/** The first rule `gap` fails, or null (no text built: the picker asks this of every gap). */
function skipRule(gap: Gap, done: ReadonlySet<string>): Rule | null {
  if (!isStatus(gap, "open")) return "status";
  if (!PRIORITY_RANK.has(gap.priority)) return "priority";
  if (gap.effort.length === 2 && gap.effort.toLowerCase() === "xl") return "effort";
  // A loop, not every(): this runs for every gap of a 100,000-gap backlog.
  const deps = gap.dependsOn;
  for (let i = 0; i < deps.length; i++) if (!done.has(deps[i])) return "dependencies";
  return null;
}

/**
 * Is the gap's status `status` (given lowercase), in any case? No lowercased
 * copy when it is written as given.
 *
 * @example
 * ```ts
 * import { isStatus } from "./picker.ts";
 * import type { Gap } from "./gap.ts";
 *
 * const gap: Gap = {
 *   id: "A-1", title: "t", priority: "P1", effort: "s", status: "Open", dependsOn: [],
 *   file: "gaps.yaml", line: 2,
 * };
 * isStatus(gap, "open"); // true
 * ```
 */
export function isStatus(gap: Gap, status: string): boolean {
  return gap.status === status ||
    (gap.status.length === status.length && gap.status.toLowerCase() === status);
}

/**
 * Every pickable gap in dispatch order (no limit applied).
 *
 * @example
 * ```ts
 * import { pickableGaps } from "./picker.ts";
 * import type { Gap } from "./gap.ts";
 *
 * const gap: Gap = {
 *   id: "A-1", title: "t", priority: "P1", effort: "s", status: "open", dependsOn: [],
 *   file: "gaps.yaml", line: 2,
 * };
 * pickableGaps([gap], { limit: Infinity }).length; // 1
 * ```
 */
export function pickableGaps(gaps: readonly Gap[], options: PickOptions): Gap[] {
  const { order = "priority", leased, dispatched, shipped } = options;
  const done = doneIds(gaps, shipped);
  const seen = new Set<string>();
  // One bucket per priority rank (file order inside each): a stable order without a sort.
  const buckets: Gap[][] = order === "priority" ? [[], [], []] : [[]];
  for (let i = 0; i < gaps.length; i++) {
    const gap = gaps[i];
    if (seen.has(gap.id)) continue;
    if (leased?.has(gap.id) || dispatched?.has(gap.id)) continue;
    if (skipRule(gap, done) !== null) continue;
    seen.add(gap.id);
    buckets[order === "priority" ? PRIORITY_RANK.get(gap.priority)! : 0].push(gap);
  }
  return buckets.flat();
}

/**
 * The first `limit` pickable gaps, in dispatch order.
 *
 * @param gaps the backlog, in file order
 * @param options limit, order, and what this run already holds
 * @returns the gaps to dispatch
 * @example
 * ```ts ignore
 * import { loadBacklog } from "./load.ts";
 * import { pickGaps } from "./picker.ts";
 *
 * const backlog = await loadBacklog("docs/gaps.yaml");
 * if (backlog.ok) console.log(pickGaps(backlog.value.gaps, { limit: 2 }));
 * ```
 */
export function pickGaps(gaps: readonly Gap[], options: PickOptions): Gap[] {
  const limit = Math.max(0, options.limit);
  return pickableGaps(gaps, options).slice(0, limit);
}
