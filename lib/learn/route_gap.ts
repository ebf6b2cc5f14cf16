/**
 * Matching a gap to its route in a routing table (learn/routing.ts reads and
 * checks the table): the gap's task class from its id (upper-cased first,
 * as Chump does), the first route whose match holds (values compared
 * trimmed and case-insensitively), and an arm's label. Pure.
 *
 * @module
 */
import { armLabel } from "../store/notes.ts";
import type { Candidate, Route, RoutingTable } from "./routing.ts";

/** Built-in task classes by gap-id prefix (Chump's). */
const BUILTIN_TASK_CLASSES: readonly [string, string][] = [
  ["EVAL-", "research"],
  ["RESEARCH-", "research"],
  ["COG-", "cognition"],
  ["INFRA-", "coord"],
];

/** How Chump compares match values: trimmed, case-insensitively. */
export function norm(s: string): string {
  return s.trim().toLowerCase();
}

/**
 * The task class of a gap id: the table's prefixes first, then the built-in
 * ones; "" when none applies.
 *
 * @example
 * ```ts
 * taskClassOf("EVAL-074"); // "research"
 * taskClassOf("AUTO-1"); // ""
 * ```
 */
export function taskClassOf(gapId: string, table?: Pick<RoutingTable, "taskClasses">): string {
  // Chump upper-cases the id first: `cog-7` is cognition work as `COG-7` is.
  const id = String(gapId).trim().toUpperCase();
  for (const [prefix, cls] of [...table?.taskClasses ?? [], ...BUILTIN_TASK_CLASSES]) {
    if (id.startsWith(prefix.toUpperCase())) return cls;
  }
  return "";
}

/** What a gap is routed to: its cascade in the file's order, and why. */
export interface Routed {
  taskClass: string;
  /** The matching route; undefined: `default_candidates`. */
  route?: Route;
  candidates: Candidate[];
}

/**
 * The first route whose match holds for the gap, else the defaults.
 *
 * @example
 * ```ts
 * import { parseRouting } from "./routing.ts";
 * const t = parseRouting(
 *   "default_candidates: [{ backend: claude }]\n" +
 *     "routes:\n  - match: { effort: [l, xl] }\n    candidates: [{ backend: chump-local }]\n",
 *   "r.yaml",
 * );
 * if (t.ok) routeGap({ id: "A-1", priority: "P1", effort: "xl" }, t.value).candidates;
 * // [{ backend: "chump-local" }]
 * ```
 */
export function routeGap(
  gap: { id: string; priority: string; effort: string },
  table: RoutingTable,
): Routed {
  const taskClass = taskClassOf(gap.id, table);
  for (const route of table.routes) {
    const m = route.match;
    if (m.unknown) continue;
    if (m.priority !== undefined && !m.priority.includes(norm(gap.priority))) continue;
    if (m.effort !== undefined && !m.effort.includes(norm(gap.effort))) continue;
    // A route for a task class never matches a gap that has none.
    if (m.taskClass !== undefined && (taskClass === "" || !m.taskClass.includes(norm(taskClass)))) {
      continue;
    }
    return { taskClass, route, candidates: route.candidates };
  }
  return { taskClass, candidates: table.defaultCandidates };
}

/**
 * An arm's label: backend, then `/model` when set, `@provider` when set.
 * The notes' `backend=` stays the backend's label; the arm is what the
 * scoreboard counts.
 *
 * @example
 * ```ts
 * armOf({ backend: "chump-local", model: "openai/gpt-oss-120b", providerPfx: "GROQ" });
 * // "chump-local/openai/gpt-oss-120b@GROQ"
 * ```
 */
export function armOf(c: Candidate): string {
  return armLabel({ backend: c.backend, model: c.model, provider: c.providerPfx });
}
