/**
 * Where a run works: the repo root (the git top level of `--repo-root`, else
 * of the cwd; else that directory itself), its backlog and its DB. Small on
 * purpose: the launch (lib/commands/launch.ts) needs it before a command runs.
 *
 * @module
 */
import { join, resolve } from "../util/path.ts";
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
  // The top level even when --repo-root names a folder inside the repo: worktrees and
  // the DB must never land inside the tracked tree.
  const start = options.repoRoot !== undefined ? resolve(options.repoRoot) : Deno.cwd();
  const repoRoot = (await gitTopLevel(start)) ?? start;
  const backlog = options.backlog ?? resolve(repoRoot, "docs", "gaps.yaml");
  return {
    repoRoot,
    backlog,
    defaultBacklog: options.backlog === undefined,
    db: options.db ?? defaultDb(repoRoot),
  };
}

/** The reflection DB (and lease ledger) of a repo. */
function defaultDb(repoRoot: string): string {
  return join(repoRoot, "sessions", "chump_memory.db");
}
