/**
 * Where a run works: the repo root (`--repo-root`, else the git top level of
 * the cwd, else the cwd), its backlog and its DB. Small on purpose: the task
 * launcher needs it before it starts the program.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { gitTopLevel } from "../git/git.ts";

/** The paths of one run. */
export interface RunPathsResolved {
  repoRoot: string;
  backlog: string;
  /** True when `--backlog` was not given. */
  defaultBacklog: boolean;
  /** `--db`, else `<repo>/sessions/chump_memory.db`. */
  db: string;
}

/**
 * Resolve the repo root, backlog and DB of a run from its options.
 *
 * @example
 * ```ts
 * const { repoRoot, db } = await resolvePaths({ repoRoot: "." });
 * ```
 */
export async function resolvePaths(
  options: { repoRoot?: string; backlog?: string; db?: string },
): Promise<RunPathsResolved> {
  const repoRoot = options.repoRoot !== undefined
    ? resolve(options.repoRoot)
    : (await gitTopLevel(Deno.cwd())) ?? Deno.cwd();
  const backlog = options.backlog ?? resolve(repoRoot, "docs", "gaps.yaml");
  return {
    repoRoot,
    backlog,
    defaultBacklog: options.backlog === undefined,
    db: options.db ?? defaultDb(repoRoot),
  };
}

/**
 * The reflection DB (and lease ledger) of a repo.
 *
 * @example
 * ```ts
 * defaultDb("/repo"); // "/repo/sessions/chump_memory.db"
 * ```
 */
export function defaultDb(repoRoot: string): string {
  return join(repoRoot, "sessions", "chump_memory.db");
}
