/**
 * PR state from git alone (no GitHub): a branch is `merged` when it has moved
 * off its start commit and its tip is an ancestor of the base ref. There are
 * no PR numbers and never `open` or `closed`.
 *
 * Why a constant number of git calls per poll (not one per branch): `git
 * remote` to know whether the base ref lives on a remote, at most one `git
 * fetch` of that remote's branch (without it a merge pushed elsewhere is never
 * seen), then one `git for-each-ref --merged=<base>` over exactly the watched
 * branches, which yields both "exists" and "is an ancestor of the base" with
 * the tip. A branch that is missing or not merged is simply not listed.
 *
 * Never throws: a failed fetch or an unresolvable base ref fails the poll
 * (`fail("git: ...")`), and the monitor retries next tick. Bounded: the poll's
 * git calls share one deadline and stop at once on the poll's abort signal
 * (a `git fetch` from an unreachable ssh remote otherwise waits for TCP, or
 * forever on a remote that accepts and never answers).
 *
 * @module
 */
import { git as runGit, type GitOutput, gitReason } from "../../git/git.ts";
import { fail, ok } from "../../util/result.ts";
import type { PrProvider, PrState } from "./types.ts";

/** Where the provider keeps its copy of the base branch of a remote (`<this>/<remote>/<branch>`). */
const PROVIDER_REFS = "refs/chump-orchestrator/base";

/** A poll that takes longer than this fails, unless the poll gives its own bound. */
const DEFAULT_GIT_TIMEOUT_MS = 60_000;

/** How a git helper is bounded (see git/git.ts). */
type Bounds = { timeoutMs?: number; signal?: AbortSignal };

/** Options of {@linkcode createGitProvider}. */
export interface GitProviderOptions {
  /** The repository whose branches are watched. */
  repoRoot: string;
  /** The ref merges land on, e.g. `origin/main` (fetched each poll) or `main`. */
  baseRef: string;
  /** Runs git; tests inject a counting wrapper. Default: git/git.ts `git`. */
  git?: (args: readonly string[], cwd: string, bounds?: Bounds) => Promise<GitOutput>;
  /** Fail a poll after this long unless the poll says otherwise. Default 1 minute. */
  timeoutMs?: number;
}

/**
 * A {@linkcode PrProvider} named `git`, answering from the local repository
 * after fetching the base ref's remote branch when the base ref has one.
 *
 * @param options the repository and the base ref
 * @returns the provider
 *
 * @example
 * ```ts
 * const provider = createGitProvider({ repoRoot: "/repo", baseRef: "origin/main" });
 * const r = await provider.poll([
 *   { branch: "claude/auto-013", startCommit: "abc123", startedAt: Date.now() },
 * ]);
 * if (r.ok) console.log(r.value.get("claude/auto-013")); // { state: "merged" } or { state: "none" }
 * ```
 */
export function createGitProvider(options: GitProviderOptions): PrProvider {
  const { repoRoot, baseRef, git: runOne = runGit, timeoutMs = DEFAULT_GIT_TIMEOUT_MS } = options;
  return {
    name: "git",
    async poll(branches, pollBounds = {}) {
      if (branches.length === 0) return ok(new Map());
      // One deadline for the whole poll, shared by its git calls.
      const deadline = Date.now() + (pollBounds.timeoutMs ?? timeoutMs);
      const git = (args: readonly string[], cwd: string) =>
        runOne(args, cwd, {
          timeoutMs: Math.max(1, deadline - Date.now()),
          signal: pollBounds.signal,
        });

      const remotes = await git(["remote"], repoRoot);
      if (remotes.code !== 0) return fail(`git: cannot list remotes: ${gitReason(remotes)}`);
      const upstream = remoteBranchOf(baseRef, remotes.stdout.split("\n").map((r) => r.trim()));
      let mergedInto = baseRef;
      if (upstream !== undefined) {
        const { remote, branch } = upstream;
        // Into a ref of our own, not refs/remotes/<remote>/<branch>: agents fetch that one from
        // their worktrees (refs are shared), and two fetches of one ref fail on its lock. An
        // empty --refmap stops git's opportunistic update of that remote-tracking ref too.
        mergedInto = `${PROVIDER_REFS}/${remote}/${branch}`;
        const fetch = () =>
          git([
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            "--refmap=",
            remote,
            `+refs/heads/${branch}:${mergedInto}`,
          ], repoRoot);
        let fetched = await fetch();
        // A fetch killed while it held our ref's lock (a run stopped mid-poll) leaves the lock
        // behind, and every later fetch would fail on it: a stale one is removed, once.
        if (fetched.code !== 0 && await removedStaleLock(gitReason(fetched))) {
          fetched = await fetch();
        }
        if (fetched.code !== 0) {
          return fail(`git: fetch ${remote} ${branch} failed: ${gitReason(fetched)}`);
        }
      }

      const names = [...new Set(branches.map((b) => b.branch))];
      const listed = await git([
        "for-each-ref",
        `--merged=${mergedInto}`,
        "--format=%(objectname) %(refname)",
        ...names.map((n) => `refs/heads/${n}`),
      ], repoRoot);
      if (listed.code !== 0) {
        return fail(`git: cannot compare branches with ${baseRef}: ${gitReason(listed)}`);
      }
      const mergedTips = new Map<string, string>();
      for (const line of listed.stdout.split("\n")) {
        const space = line.indexOf(" ");
        if (space < 0) continue;
        const ref = line.slice(space + 1);
        if (ref.startsWith("refs/heads/")) {
          mergedTips.set(ref.slice("refs/heads/".length), line.slice(0, space).toLowerCase());
        }
      }

      const states = new Map<string, PrState>();
      for (const watched of branches) {
        const tip = mergedTips.get(watched.branch);
        const moved = tip !== undefined && !sameCommit(tip, watched.startCommit);
        states.set(watched.branch, moved ? { state: "merged" } : { state: "none" });
      }
      return ok(states);
    },
  };
}

/**
 * `<remote>/<branch>` split on the longest configured remote name that
 * prefixes it (`refs/remotes/` allowed), or undefined for a local ref.
 *
 * @example
 * ```ts
 * remoteBranchOf("origin/main", ["origin"]); // { remote: "origin", branch: "main" }
 * remoteBranchOf("main", ["origin"]); // undefined
 * ```
 */
export function remoteBranchOf(
  baseRef: string,
  remotes: readonly string[],
): { remote: string; branch: string } | undefined {
  const ref = baseRef.startsWith("refs/remotes/") ? baseRef.slice("refs/remotes/".length) : baseRef;
  let found: { remote: string; branch: string } | undefined;
  for (const remote of remotes) {
    if (remote === "" || !ref.startsWith(`${remote}/`)) continue;
    const branch = ref.slice(remote.length + 1);
    if (branch === "") continue;
    if (found === undefined || remote.length > found.remote.length) found = { remote, branch };
  }
  return found;
}

/**
 * Full object name vs a possibly abbreviated start commit. An unknown (empty)
 * start cannot prove the branch moved, so it counts as the same.
 */
function sameCommit(full: string, start: string): boolean {
  const s = start.trim().toLowerCase();
  return s === "" || full.startsWith(s);
}

/** A lock of our own ref namespace older than this was left by a fetch that was killed. */
const STALE_LOCK_MS = 10_000;

/**
 * Remove the lock `reason` (git's complaint) names when it is one of our
 * private refs' (`refs/chump-orchestrator/`) and stale: a fetch holds such a
 * lock for a moment, so an old one has no owner left.
 *
 * @returns whether a lock was removed
 */
async function removedStaleLock(reason: string, now = Date.now()): Promise<boolean> {
  const path = /Unable to create '([^']+\.lock)': File exists/.exec(reason)?.[1];
  if (path === undefined || !path.includes(`/${PROVIDER_REFS}/`)) return false;
  try {
    const st = await Deno.stat(path);
    if (now - (st.mtime?.getTime() ?? now) < STALE_LOCK_MS) return false;
    await Deno.remove(path);
    return true;
  } catch {
    return false;
  }
}
