/**
 * What a run (or `route`) learns from before it dispatches: the routing
 * table, when the repo has one (or `--routing` names one), and the
 * scoreboard of the reflection DB (within `--learn-window`, when given).
 *
 * @module
 */
import { resolve } from "node:path";
import { queryReflections, type ReflectionSource } from "../store/query.ts";
import { fail, ok, type Result } from "../util/result.ts";
import {
  BUILTIN_ROUTING_NAME,
  defaultRoutingPath,
  loadRouting,
  type RoutingTable,
} from "./routing.ts";
import { type Scoreboard, scoreboardOf } from "./scoreboard.ts";

/** The routing table (undefined: none, today's single backend) and the scoreboard. */
export interface Learning {
  /** Where the table was looked for. */
  routingPath: string;
  table?: RoutingTable;
  scoreboard: Scoreboard;
}

/**
 * Load the routing table (`routing`, else `<repo>/docs/dispatch/routing.yaml`;
 * a missing default file is no table, a missing named one an error) and the
 * scoreboard of `db`.
 *
 * @example
 * ```ts ignore
 * const l = await loadLearning({ repoRoot: "/repo", db: "/repo/sessions/chump_memory.db" });
 * ```
 */
export async function loadLearning(options: {
  repoRoot: string;
  /** The reflections: the local DB, or the fleet's (`--ledger`). */
  db: ReflectionSource;
  routing?: string;
  /** Count only reflections this recent. */
  windowMs?: number;
  now?: number;
}): Promise<Result<Learning>> {
  const routingPath = options.routing === BUILTIN_ROUTING_NAME
    ? BUILTIN_ROUTING_NAME
    : options.routing !== undefined
    ? resolve(options.routing)
    : defaultRoutingPath(options.repoRoot);
  let table: RoutingTable | undefined;
  const exists = routingPath === BUILTIN_ROUTING_NAME ||
    await Deno.stat(routingPath).then(() => true, () => false);
  if (exists || options.routing !== undefined) {
    const loaded = await loadRouting(routingPath);
    if (!loaded.ok) return loaded;
    table = loaded.value;
  }
  const rows = queryReflections(options.db, { limit: Number.MAX_SAFE_INTEGER });
  if (!rows.ok) return fail(rows.error);
  const sinceMs = options.windowMs === undefined
    ? undefined
    : (options.now ?? Date.now()) - options.windowMs;
  return ok({ routingPath, table, scoreboard: scoreboardOf(rows.value, { table, sinceMs }) });
}
