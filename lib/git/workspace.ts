/**
 * The target repository's worktrees (CONTRACT §3.1, §4): creating one per
 * dispatch on its own branch, the claim script, and the worktree rule that
 * decides, after an outcome, whether a worktree may go (work is never
 * deleted).
 *
 * @module
 */
import { join, relative, resolve } from "node:path";
import { WORKTREES_DIR } from "../dispatch/slug.ts";
import { errorMessage, fail, ok, type Result } from "../util/result.ts";
import { runHelper } from "../process/helper.ts";
import { commitsBeyond, git, gitReason } from "./git.ts";

/** Where the claim script lives inside a worktree (as the seed). */
export const CLAIM_SCRIPT = join("scripts", "gap-claim.sh");

/** A claim script that runs longer than this is stopped and the dispatch fails. */
const CLAIM_TIMEOUT_MS = 120_000;

/** Git operations on the target repository. */
export interface Workspace {
  readonly repoRoot: string;
  /** Create `path` on a new branch from `startCommit`. */
  addWorktree(branch: string, path: string, startCommit: string): Promise<Result<void>>;
  /** Remove the worktree, and its branch when given (callers check for work first). */
  removeWorktree(path: string, branch?: string): Promise<Result<void>>;
  /** Commits on `branch` beyond `startCommit`; undefined when git cannot say. */
  commitsBeyond(startCommit: string, branch: string): Promise<number | undefined>;
  /** True when the worktree has uncommitted changes (undefined when git cannot say). */
  isDirty(worktree: string): Promise<boolean | undefined>;
  /**
   * Run the claim script in the worktree if it has one; ok(false) when it has
   * none. `signal` aborting (the run was interrupted) ends it at once.
   */
  claim(
    worktree: string,
    gapId: string,
    options?: { signal?: AbortSignal },
  ): Promise<Result<boolean>>;
}

/**
 * The real workspace: `git worktree add -b`, `git worktree remove`, `bash scripts/gap-claim.sh`.
 *
 * @example
 * ```ts
 * const ws = gitWorkspace("/repo");
 * ```
 */
export function gitWorkspace(repoRoot: string): Workspace {
  return {
    repoRoot,
    async addWorktree(branch, path, startCommit) {
      const guard = await checkWorktreesDir(repoRoot, path);
      if (!guard.ok) return guard;
      const r = await git(["worktree", "add", "-b", branch, "--", path, startCommit], repoRoot);
      if (r.code !== 0) return fail(`git worktree add ${branch}: ${gitReason(r)}`);
      return ok(undefined);
    },
    async removeWorktree(path, branch) {
      const rm = await git(["worktree", "remove", "--force", "--", path], repoRoot);
      if (rm.code !== 0) return fail(`git worktree remove ${path}: ${gitReason(rm)}`);
      if (branch === undefined) return ok(undefined);
      const del = await git(["branch", "-D", "--", branch], repoRoot);
      if (del.code !== 0) return fail(`git branch -D ${branch}: ${gitReason(del)}`);
      return ok(undefined);
    },
    commitsBeyond: (start, branch) => commitsBeyond(repoRoot, start, branch),
    async isDirty(worktree) {
      const r = await git(["status", "--porcelain", "--untracked-files=normal"], worktree);
      return r.code === 0 ? r.stdout !== "" : undefined;
    },
    async claim(worktree, gapId, options = {}) {
      try {
        await Deno.stat(join(worktree, CLAIM_SCRIPT));
      } catch {
        return ok(false);
      }
      // Its own process group, ended (with whatever it left in the background)
      // when it exits, times out or the run is interrupted.
      const out = await runHelper("bash", [CLAIM_SCRIPT, gapId], {
        cwd: worktree,
        timeoutMs: CLAIM_TIMEOUT_MS,
        signal: options.signal,
        endGroupOnExit: true,
      });
      if (!out.started) return fail(`cannot run the claim script: ${errorMessage(out.error)}`);
      if (out.stopped === "timeout") {
        return fail(`claim script timed out after ${CLAIM_TIMEOUT_MS / 1000}s`);
      }
      if (out.stopped === "aborted") return fail("claim script stopped: the run was interrupted");
      if (out.code !== 0) {
        const why = new TextDecoder().decode(out.stderr).trim().split("\n").pop() ?? "";
        return fail(`claim script exited ${out.code}${why ? `: ${why}` : ""}`);
      }
      return ok(true);
    },
  };
}

/**
 * Refuse to create worktrees through a symlinked `.claude` or
 * `.claude/worktrees`, or anywhere but directly inside it.
 */
async function checkWorktreesDir(repoRoot: string, path: string): Promise<Result<void>> {
  const dir = resolve(repoRoot, WORKTREES_DIR);
  const rel = relative(dir, resolve(path));
  if (rel === "" || rel.startsWith("..") || rel.includes("/")) {
    return fail(`worktree path ${path} is not directly inside ${dir}`);
  }
  for (const p of [join(repoRoot, ".claude"), dir]) {
    try {
      const info = await Deno.lstat(p);
      if (info.isSymlink) return fail(`refusing to create worktrees: ${p} is a symlink`);
      if (!info.isDirectory) return fail(`refusing to create worktrees: ${p} is not a directory`);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) {
        return fail(`cannot check ${p}: ${errorMessage(e)}`);
      }
      try {
        await Deno.mkdir(p);
      } catch (e2) {
        if (!(e2 instanceof Deno.errors.AlreadyExists)) {
          return fail(`cannot create ${p}: ${errorMessage(e2)}`);
        }
      }
    }
  }
  return ok(undefined);
}

/**
 * The worktree rule (CONTRACT §4): after a run ends badly, remove the
 * worktree and its branch only when the branch has no commits beyond
 * `startCommit` and the worktree no uncommitted changes (work is never
 * deleted). After a ship the work is merged: the worktree directory goes
 * (unless it has uncommitted changes) and the branch stays. Returns what was
 * kept and why, or undefined when the worktree was removed.
 *
 * @example
 * ```ts
 * const kept = await cleanUpWorktree(ws, { worktree, branch, startCommit }, { shipped: false });
 * ```
 */
export async function cleanUpWorktree(
  workspace: Workspace,
  where: { worktree: string; branch: string; startCommit: string },
  options: { shipped: boolean },
): Promise<string | undefined> {
  const { worktree, branch, startCommit } = where;
  if (!options.shipped) {
    const n = await workspace.commitsBeyond(startCommit, branch);
    if (n === undefined) return `${worktree} (could not count commits on ${branch})`;
    if (n > 0) return `${worktree} (${n} commit${n === 1 ? "" : "s"} on ${branch})`;
  }
  const dirty = await workspace.isDirty(worktree);
  if (dirty !== false) {
    return `${worktree} (${dirty ? "uncommitted changes" : "could not read its status"})`;
  }
  const removed = await workspace.removeWorktree(worktree, options.shipped ? undefined : branch);
  if (!removed.ok) return `${worktree} (${removed.error})`;
  return undefined;
}
