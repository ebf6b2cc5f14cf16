/**
 * What a run (or `route`) learns from before it dispatches: the routing
 * table, when the repo has one (or `--routing` names one), and what the
 * reflections teach (learn/learner.ts: the scoreboard, the adaptive
 * deadlines, the lessons; within `--learn-window`, when given).
 *
 * @module
 */
import { resolve } from "../util/path.ts";
import { statable } from "../util/fs.ts";
import { queryReflections, type ReflectionSource } from "../store/query.ts";
import { type Deadlines, DEFAULT_DEADLINES } from "../util/duration.ts";
import { fail, ok, type Result } from "../util/result.ts";
import { Learned, type LearnRow } from "./learner.ts";
import {
  BUILTIN_ROUTING_NAME,
  defaultRoutingPath,
  loadRouting,
  type RoutingTable,
} from "./routing.ts";

/** The routing table (undefined: none, today's single backend) and what the reflections teach. */
export interface Learning {
  /** Where the table was looked for. */
  routingPath: string;
  table?: RoutingTable;
  learned: Learned;
}

/**
 * The reflections of `source` as the learning reads them, newest first.
 *
 * @example
 * ```ts
 * const dir = Deno.makeTempDirSync();
 * readLearnRows(`${dir}/none.db`); // { ok: true, value: [] }
 * ```
 */
export function readLearnRows(source: ReflectionSource): Result<LearnRow[]> {
  const rows = queryReflections(source, { limit: Number.MAX_SAFE_INTEGER });
  return rows.ok ? ok(rows.value) : fail(rows.error);
}

/**
 * Load the routing table (`routing`, else `<repo>/docs/dispatch/routing.yaml`;
 * a missing default file is no table, a missing named one an error) and
 * what the reflections of `db` teach.
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
  /** Read no table (an explicit agent command runs every gap). */
  noTable?: boolean;
  /** Count only reflections this recent. */
  windowMs?: number;
  /** The configured deadlines (what adaptive ones start from); default the contract's. */
  deadlines?: Deadlines;
  /** Read the reflections again (the heartbeat's refresh); default: never. */
  reload?: () => Promise<Result<LearnRow[]>>;
  warn?: (message: string) => void;
  now?: () => number;
}): Promise<Result<Learning>> {
  const routingPath = options.routing === BUILTIN_ROUTING_NAME
    ? BUILTIN_ROUTING_NAME
    : options.routing !== undefined
    ? resolve(options.routing)
    : defaultRoutingPath(options.repoRoot);
  let table: RoutingTable | undefined;
  const exists = routingPath === BUILTIN_ROUTING_NAME ||
    statable(routingPath);
  if (!options.noTable && (exists || options.routing !== undefined)) {
    const loaded = await loadRouting(routingPath);
    if (!loaded.ok) return loaded;
    table = loaded.value;
  }
  const rows = readLearnRows(options.db);
  // Reflections that cannot be read teach nothing; the run goes on (a warning says so).
  if (!rows.ok) options.warn?.(`${rows.error}; no scoreboard, adaptive deadlines or lessons`);
  const learned = new Learned({
    rows: rows.ok ? rows.value : [],
    reload: options.reload,
    table,
    configured: options.deadlines ?? DEFAULT_DEADLINES,
    windowMs: options.windowMs,
    now: options.now ?? Date.now,
    warn: options.warn,
  });
  return ok({ routingPath, table, learned });
}
