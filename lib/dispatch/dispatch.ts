/**
 * Dispatching one gap (CONTRACT §3): lease -> worktree + branch -> claim ->
 * agent. A failing step aborts that gap only, undoes what it made (a
 * worktree is removed only while it holds no commits) and ends its lease.
 *
 * Git work sits behind {@linkcode Workspace}, process starts behind
 * `Spawner`, so the order of steps can be tested without either.
 *
 * @module
 */
import { join, relative, resolve } from "node:path";
import type { AgentCommand } from "./agent.ts";
import type { Gap } from "../backlog/load.ts";
import { commitsBeyond, git, gitReason } from "../git/git.ts";
import type { Ledger } from "../store/ledger.ts";
import type { AgentProcess, Spawner } from "../process/spawn.ts";
import { errorMessage, fail, ok, type Result } from "../util/result.ts";
import { WORKTREES_DIR } from "./slug.ts";

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
  /** Run the claim script in the worktree if it has one; ok(false) when it has none. */
  claim(worktree: string, gapId: string): Promise<Result<boolean>>;
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
    async claim(worktree, gapId) {
      try {
        await Deno.stat(join(worktree, CLAIM_SCRIPT));
      } catch {
        return ok(false);
      }
      try {
        const out = await new Deno.Command("bash", {
          args: [CLAIM_SCRIPT, gapId],
          cwd: worktree,
          stdin: "null",
          stdout: "null",
          stderr: "piped",
          signal: AbortSignal.timeout(CLAIM_TIMEOUT_MS),
        }).output();
        if (out.code !== 0) {
          const why = new TextDecoder().decode(out.stderr).trim().split("\n").pop() ?? "";
          return fail(`claim script exited ${out.code}${why ? `: ${why}` : ""}`);
        }
        return ok(true);
      } catch (e) {
        return fail(`cannot run the claim script: ${errorMessage(e)}`);
      }
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

/** One gap about to be dispatched. */
export interface DispatchRequest {
  gap: Gap;
  slug: string;
  branch: string;
  worktree: string;
  /** The base ref's commit; the branch starts here. */
  startCommit: string;
  /** The base ref (e.g. `origin/main`), told to the agent as `CHUMP_BASE_REF`. */
  baseRef: string;
  agent: AgentCommand;
  /** True when nobody will watch the agent (no --watch). */
  detached: boolean;
}

/** A dispatch whose agent is running. */
export interface Dispatch extends DispatchRequest {
  leaseId: number | null;
  process: AgentProcess;
  /** ms since the epoch. */
  startedAt: number;
}

/** What {@linkcode dispatchGap} needs. */
export interface DispatchDeps {
  workspace: Workspace;
  spawner: Spawner;
  /** Absent only in tests that do not care about leases. */
  ledger?: Ledger;
  now?: () => number;
}

/**
 * Dispatch one gap: lease, worktree, claim, spawn, in that order.
 *
 * @returns the running dispatch, or one line saying which step failed
 * @example
 * ```ts
 * const d = await dispatchGap(request, { workspace, spawner, ledger });
 * ```
 */
export async function dispatchGap(
  request: DispatchRequest,
  deps: DispatchDeps,
): Promise<Result<Dispatch>> {
  const { workspace, spawner, ledger, now = Date.now } = deps;
  const { gap, branch, worktree, startCommit, agent } = request;

  let leaseId: number | null = null;
  if (ledger) {
    const lease = await ledger.begin({
      gapId: gap.id,
      repoRoot: workspace.repoRoot,
      branch,
      worktree,
      baseCommit: startCommit,
      effort: gap.effort,
      backend: agent.label,
    });
    if (!lease.ok) return lease;
    leaseId = lease.value;
  }
  const abandon = async (why: string, madeWorktree: boolean): Promise<Result<Dispatch>> => {
    let reason = why;
    if (madeWorktree) {
      const kept = await cleanUpWorktree(workspace, { worktree, branch, startCommit }, {
        shipped: false,
      });
      if (kept) reason += `; worktree kept: ${kept}`;
    }
    if (leaseId !== null) await ledger?.end(leaseId, null, `dispatch failed: ${reason}`);
    return fail(reason);
  };

  const added = await workspace.addWorktree(branch, worktree, startCommit);
  if (!added.ok) return await abandon(added.error, false);

  const claimed = await workspace.claim(worktree, gap.id);
  if (!claimed.ok) return await abandon(claimed.error, true);

  const started = spawner.spawn({
    argv: agent.argv,
    cwd: worktree,
    env: {
      CHUMP_DISPATCH_DEPTH: "1",
      CHUMP_GAP_ID: gap.id,
      CHUMP_BRANCH: branch,
      CHUMP_WORKTREE: worktree,
      CHUMP_BASE_REF: request.baseRef,
      ...(leaseId !== null ? { CHUMP_LEASE_ID: String(leaseId) } : {}),
    },
    stdin: agent.stdin,
    unwatched: request.detached,
  });
  if (!started.ok) return await abandon(started.error, true);

  const proc = started.value;
  if (leaseId !== null) {
    // The agent runs either way; a ledger that cannot take the pid is reported by the caller.
    ledger?.running(leaseId, proc.pid, proc.startTime, request.detached);
  }
  return ok({ ...request, leaseId, process: proc, startedAt: now() });
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
