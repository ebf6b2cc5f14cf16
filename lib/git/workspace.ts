/**
 * The target repository's worktrees (CONTRACT §3.1, §4): creating one per
 * dispatch on its own branch, the claim script, and the worktree rule that
 * decides, after an outcome, whether a worktree may go (work is never
 * deleted).
 *
 * @module
 */
import { join, relative, resolve } from "../util/path.ts";
import { WORKTREES_DIR } from "./slug.ts";
import { errorMessage, fail, ok, type Result } from "../util/result.ts";
import { runHelper } from "../process/helper.ts";
import {
  branchTip,
  commitsBeyond,
  countOnly,
  git,
  gitReason,
  ownRefsOf,
  registeredHead,
  registeredWorktree,
} from "./git.ts";
import { pathState } from "../util/fs.ts";

/** Where the claim script lives inside a worktree (as the seed). */
const CLAIM_SCRIPT = join("scripts", "gap-claim.sh");

/** A claim script that runs longer than this is stopped and the dispatch fails. */
const CLAIM_TIMEOUT_MS = 120_000;

/**
 * Commits a worktree and its branch hold beyond the start commit: what
 * removing them would lose.
 */
export interface Work {
  /** The worktree directory is gone (deleted by hand, or by an earlier cleanup). */
  gone: boolean;
  /**
   * A gone worktree's path as git's registration of it recorded it (the one
   * to remove: git's own lookup of another spelling could take another
   * registration); undefined when git holds none for it.
   */
  registered?: string;
  /** Commits on the branch beyond the start commit. */
  onBranch: number;
  /**
   * Commits of the worktree's HEAD that are on neither the branch nor the
   * start commit: an agent that detached HEAD and committed. Removing the
   * worktree would leave them dangling.
   */
  onHead: number;
  /**
   * Commits only the worktree's own refs reach (`refs/worktree/*`,
   * `refs/bisect/*`, `refs/rewritten/*`: removing the worktree drops them).
   */
  onOwnRefs: number;
  /**
   * Commits only the worktree's HEAD reflog or the branch's reflog still
   * reaches (a reset, a rebase, a checkout away from a detached commit).
   * Removing the worktree drops its HEAD reflog and deleting the branch drops
   * the branch's, so these would be lost with them.
   */
  inReflog: number;
}

/** Git operations on the target repository. */
export interface Workspace {
  readonly repoRoot: string;
  /**
   * Create `path` on a new branch from `startCommit`. A leftover branch of
   * that name is reused when it has no commits beyond `startCommit`, and
   * refused (left as it is) when it has; a branch this call created is
   * deleted again when the worktree cannot be added.
   */
  addWorktree(branch: string, path: string, startCommit: string): Promise<Result<void>>;
  /**
   * Remove the worktree at `path` (also when its directory is gone; none when
   * undefined), and its branch when given (callers check for work first).
   */
  removeWorktree(path: string | undefined, branch?: string): Promise<Result<void>>;
  /** The work held beyond `startCommit` (see {@linkcode Work}); undefined when git cannot say. */
  workBeyond(startCommit: string, branch: string, worktree: string): Promise<Work | undefined>;
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
    addWorktree: (branch, path, startCommit) => addWorktree(repoRoot, branch, path, startCommit),
    removeWorktree: (path, branch) => removeWorktree(repoRoot, path, branch),
    workBeyond: (start, branch, worktree) => workBeyond(repoRoot, start, branch, worktree),
    async isDirty(worktree) {
      const r = await git(["status", "--porcelain", "--untracked-files=normal"], worktree);
      return r.code === 0 ? r.stdout !== "" : undefined;
    },
    claim: (worktree, gapId, options = {}) => runClaim(worktree, gapId, options.signal),
  };
}

/** A worktree on a new branch (or on a leftover branch that holds no work) at `startCommit`. */
async function addWorktree(
  repoRoot: string,
  branch: string,
  path: string,
  startCommit: string,
): Promise<Result<void>> {
  const guard = await checkWorktreesDir(repoRoot, path);
  if (!guard.ok) return guard;
  const before = await branchTip(repoRoot, branch);
  if (before === undefined) return fail(`cannot read branch ${branch}`);
  if (before !== "") {
    // A leftover of an earlier run: reusable only while it holds no work.
    const n = await commitsBeyond(repoRoot, startCommit, before);
    const refused = `git worktree add ${branch}: refused: branch ${branch} already exists`;
    if (n === undefined) return fail(`${refused} and its commits cannot be counted`);
    if (n > 0) {
      return fail(
        `${refused} with ${plural(n, "commit")} beyond the base ` +
          "(left as it is: merge or delete it to dispatch this gap again)",
      );
    }
    // -B moves it to the start commit; it held nothing beyond it, and its reflog stays.
    const r = await git(["worktree", "add", "-B", branch, "--", path, startCommit], repoRoot);
    if (r.code !== 0) return fail(`git worktree add ${branch}: ${gitReason(r)}`);
    return ok(undefined);
  }
  const r = await git(["worktree", "add", "-b", branch, "--", path, startCommit], repoRoot);
  if (r.code === 0) return ok(undefined);
  // git creates the branch before it fails on the path: do not leave it behind (it
  // would make every later dispatch of this gap fail "branch already exists").
  const reason = `git worktree add ${branch}: ${gitReason(r)}`;
  const after = await branchTip(repoRoot, branch);
  if (after !== undefined && after !== "" && sameCommit(after, startCommit)) {
    const del = await git(["branch", "-D", "--", branch], repoRoot);
    if (del.code !== 0) return fail(`${reason}; and its new branch stays: ${gitReason(del)}`);
  }
  return fail(reason);
}

/** Remove a worktree (and its branch, when given). */
async function removeWorktree(
  repoRoot: string,
  path: string | undefined,
  branch: string | undefined,
): Promise<Result<void>> {
  if (path !== undefined) {
    const rm = await git(["worktree", "remove", "--force", "--", path], repoRoot);
    // A directory that is gone and no longer registered is removed already; one still
    // registered (locked, say) is not.
    if (
      rm.code !== 0 &&
      (await pathState(path) !== "absent" || await registeredWorktree(repoRoot, path) !== undefined)
    ) {
      return fail(`git worktree remove ${path}: ${gitReason(rm)}`);
    }
  }
  if (branch === undefined) return ok(undefined);
  const del = await git(["branch", "-D", "--", branch], repoRoot);
  if (del.code !== 0 && await branchTip(repoRoot, branch) !== "") {
    return fail(`git branch -D ${branch}: ${gitReason(del)}`);
  }
  return ok(undefined);
}

/**
 * Run the claim script inside the worktree when it exists (false: there is
 * none), in its own process group, ended (with whatever it left in the
 * background) when it exits, times out or the run is interrupted.
 */
async function runClaim(
  worktree: string,
  gapId: string,
  signal: AbortSignal | undefined,
): Promise<Result<boolean>> {
  try {
    await Deno.stat(join(worktree, CLAIM_SCRIPT));
  } catch {
    return ok(false);
  }
  const out = await runHelper("bash", [CLAIM_SCRIPT, gapId], {
    cwd: worktree,
    timeoutMs: CLAIM_TIMEOUT_MS,
    signal,
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
 * worktree and its branch only when nothing would be lost: no commits on
 * the branch beyond `startCommit`, none on the worktree's HEAD or in its or
 * the branch's reflog (an agent that detached HEAD and committed), and no
 * uncommitted changes. After a ship the work is merged: the worktree
 * directory goes (unless it holds uncommitted changes or commits off the
 * branch) and the branch stays. A worktree whose directory is gone has its
 * registration (and, without work, its branch) removed, unless that
 * registration still holds commits (its HEAD and reflog live there). Returns
 * what was kept and why, or undefined when nothing was kept.
 *
 * @example
 * ```ts
 * const ws = gitWorkspace("/repo");
 * const where = {
 *   worktree: "/repo/.claude/worktrees/auto-013",
 *   branch: "claude/auto-013",
 *   startCommit: "abc123",
 * };
 * const kept = await cleanUpWorktree(ws, where, { shipped: false });
 * ```
 */
export async function cleanUpWorktree(
  workspace: Workspace,
  where: { worktree: string; branch: string; startCommit: string },
  options: { shipped: boolean },
): Promise<string | undefined> {
  const { worktree, branch, startCommit } = where;
  const work = await workspace.workBeyond(startCommit, branch, worktree);
  if (work === undefined) return `${worktree} (could not tell whether it holds commits)`;
  const at = work.gone ? `branch ${branch}` : worktree;
  if (!options.shipped && work.onBranch > 0) {
    return work.gone
      ? `${at} (${plural(work.onBranch, "commit")} beyond its start)`
      : `${at} (${plural(work.onBranch, "commit")} on ${branch})`;
  }
  // A detached HEAD is the worktree's, gone or not (a gone one's is in its registration).
  if (work.onHead > 0) return `${worktree} (${plural(work.onHead, "commit")} on a detached HEAD)`;
  if (work.onOwnRefs > 0) {
    return `${worktree} (${plural(work.onOwnRefs, "commit")} only on its own refs)`;
  }
  // After a ship the reflogs hold pre-rebase copies of merged work: only a failed run's count.
  if (!options.shipped && work.inReflog > 0) {
    return `${at} (${plural(work.inReflog, "commit")} only in a reflog)`;
  }
  if (!work.gone) {
    const dirty = await workspace.isDirty(worktree);
    if (dirty !== false) {
      return `${worktree} (${dirty ? "uncommitted changes" : "could not read its status"})`;
    }
  }
  // A gone worktree is removed by the path its registration recorded, if git holds one.
  const removed = await workspace.removeWorktree(
    work.gone ? work.registered : worktree,
    options.shipped ? undefined : branch,
  );
  if (!removed.ok) return `${at} (${removed.error})`;
  return undefined;
}

/**
 * The work `worktree` (on `branch`, started at `start`) holds; undefined
 * when git cannot say, which keeps the worktree. A directory that is not
 * that worktree's top level (its `.git` file gone, so git would answer for
 * the enclosing repository) cannot be judged either.
 */
async function workBeyond(
  repoRoot: string,
  start: string,
  branch: string,
  worktree: string,
): Promise<Work | undefined> {
  const state = await pathState(worktree);
  if (state === "unknown") return undefined;
  const tip = await branchTip(repoRoot, branch);
  if (tip === undefined) return undefined;
  const onBranch = tip === "" ? 0 : await commitsBeyond(repoRoot, start, tip);
  if (onBranch === undefined) return undefined;

  let head = "";
  let registered: string | undefined;
  const reflogs: string[] = [];
  const reflogCommits = new Set<string>();
  let ownRefs: string[] = [];
  if (tip !== "") reflogs.push(`refs/heads/${branch}`);
  if (state === "present") {
    const top = await git(["rev-parse", "--show-toplevel", "HEAD"], worktree);
    const [topLevel, headCommit] = top.stdout.split("\n");
    if (top.code !== 0 || !(await samePath(topLevel, worktree))) return undefined;
    head = headCommit?.trim() ?? "";
    reflogs.push("HEAD");
    const own = await ownRefsOf(worktree);
    if (own === undefined) return undefined;
    ownRefs = own;
  } else {
    // Gone from the disk, but still registered: git keeps its HEAD and reflog there, and
    // removing the worktree would drop them.
    const held = await registeredHead(repoRoot, worktree);
    if (held === undefined) return undefined;
    if (held !== "unregistered") {
      registered = held.registration.path;
      head = held.head;
      for (const sha of held.reflog) reflogCommits.add(sha);
      ownRefs = held.ownRefs;
    }
  }
  const known = [start, ...(tip === "" ? [] : [tip])];
  const onHead = head === "" ? 0 : await countOnly(repoRoot, [head], known);
  if (onHead === undefined) return undefined;
  // What the branch, the start and HEAD already account for.
  const accounted = head === "" ? known : [...known, head];
  const onOwnRefs = await countOnly(repoRoot, ownRefs, accounted);
  if (onOwnRefs === undefined) return undefined;
  if (reflogs.length > 0) {
    const cwd = state === "present" ? worktree : repoRoot;
    const log = await git(["log", "-g", "--format=%H", ...reflogs, "--"], cwd);
    if (log.code !== 0) return undefined;
    for (const sha of log.stdout.split("\n").map((line) => line.trim())) {
      if (/^[0-9a-f]{7,}$/i.test(sha)) reflogCommits.add(sha);
    }
  }
  const inReflog = await countOnly(repoRoot, [...reflogCommits], accounted);
  if (inReflog === undefined) return undefined;
  return { gone: state === "absent", registered, onBranch, onHead, onOwnRefs, inReflog };
}

/** Are these the same directory (symlinks resolved)? */
async function samePath(a: string | undefined, b: string): Promise<boolean> {
  if (!a) return false;
  try {
    return (await Deno.realPath(a)) === (await Deno.realPath(b));
  } catch {
    return false;
  }
}

/** A full object name vs a possibly abbreviated one. */
function sameCommit(full: string, other: string): boolean {
  const o = other.trim().toLowerCase();
  return o !== "" && full.toLowerCase().startsWith(o);
}

/** `1 commit`, `2 commits`. */
function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}
