/**
 * Running git: one helper that never goes through a shell, never throws, and
 * returns trimmed output with the exit code, plus the few queries the
 * orchestrator needs (top level, a branch's tip, commits beyond a start or
 * reached only from some, and what a linked worktree's registration holds).
 *
 * @module
 */
import { runHelper } from "../process/helper.ts";
import { errorMessage } from "../util/result.ts";
import { formatDuration } from "../util/duration.ts";
import { pathStateSync, readText } from "../util/fs.ts";
import { basename, dirname, join, resolve } from "../util/path.ts";

/** What a git invocation produced. */
export interface GitOutput {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Run `git <args>` in `cwd` (in its own process group, see process/helper.ts).
 * A git that cannot be started is code 127; one ended by `bounds` (a timeout
 * or an abort) is code 124 with a `fatal:` line saying which.
 *
 * @example
 * ```ts
 * const r = await git(["rev-parse", "HEAD"], "/repo");
 * ```
 */
export async function git(
  args: readonly string[],
  cwd: string,
  bounds: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<GitOutput> {
  const out = await runHelper("git", args, {
    cwd,
    env: { GIT_TERMINAL_PROMPT: "0" },
    timeoutMs: bounds.timeoutMs,
    signal: bounds.signal,
  });
  if (!out.started) {
    return { code: 127, stdout: "", stderr: `cannot run git: ${errorMessage(out.error)}` };
  }
  const dec = new TextDecoder();
  const stderr = dec.decode(out.stderr).trim();
  return {
    code: out.stopped ? 124 : out.code,
    stdout: dec.decode(out.stdout).trim(),
    stderr: out.stopped
      ? `fatal: git ${args[0] ?? ""} ${describeStop(out.stopped, bounds)}`
      : stderr,
  };
}

/** Why a bounded git run was ended, for its error line. */
function describeStop(
  stopped: "timeout" | "aborted" | "overflow",
  bounds: { timeoutMs?: number },
): string {
  if (stopped === "timeout") {
    return `timed out after ${formatDuration(bounds.timeoutMs ?? 0)}`;
  }
  if (stopped === "aborted") return "was interrupted";
  return "printed too much";
}

/**
 * The line of git's stderr that says what went wrong (`fatal:`/`error:`
 * first, else the last line: git prints progress such as "Preparing
 * worktree" before its complaint), for one-line messages.
 *
 * @example
 * ```ts
 * gitReason({ code: 128, stdout: "", stderr: "Preparing worktree\nfatal: bad ref" }); // "fatal: bad ref"
 * ```
 */
export function gitReason(out: GitOutput): string {
  const lines = out.stderr.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  return lines.find((l) => /^(fatal|error):/.test(l)) ?? lines.at(-1) ?? `git exited ${out.code}`;
}

/**
 * The git top level of `dir`, or undefined outside a repository.
 *
 * @example
 * ```ts
 * await gitTopLevel(Deno.cwd());
 * ```
 */
export async function gitTopLevel(dir: string): Promise<string | undefined> {
  const onDisk = topLevelOnDisk(dir);
  if (onDisk !== "ask git") return onDisk ?? undefined;
  const r = await git(["rev-parse", "--show-toplevel"], dir);
  return r.code === 0 && r.stdout !== "" ? r.stdout : undefined;
}

/**
 * The git top level of `dir` as the disk shows it, with no git spawned: the
 * nearest directory (symlinks resolved, as git reports it) holding a `.git`
 * directory or file (a linked worktree's); null: none up to the root. "ask
 * git" where the disk cannot tell: the environment points git elsewhere
 * (`GIT_DIR`, `GIT_WORK_TREE`, `GIT_CEILING_DIRECTORIES`, ...), the path
 * cannot be read, or it is inside a `.git` directory.
 *
 * @example
 * ```ts
 * topLevelOnDisk("/"); // null, unless / is a repository
 * ```
 */
export function topLevelOnDisk(dir: string): string | null | "ask git" {
  try {
    for (const name of GIT_LOCATION_ENV) if (Deno.env.get(name) !== undefined) return "ask git";
    let at = Deno.realPathSync(dir);
    if (/(^|\/)\.git(\/|$)/.test(at)) return "ask git";
    const device = Deno.statSync(at).dev;
    for (;;) {
      const dotGit = pathStateSync(`${at === "/" ? "" : at}/.git`);
      if (dotGit === "unknown") return "ask git";
      if (dotGit === "present") return at;
      const up = at.slice(0, at.lastIndexOf("/")) || "/";
      // Git stops at the root, and where the file system changes.
      if (up === at || Deno.statSync(up).dev !== device) return null;
      at = up;
    }
  } catch {
    return "ask git";
  }
}

/** Variables that move where git looks for its repository. */
export const GIT_LOCATION_ENV = [
  "GIT_DIR",
  "GIT_WORK_TREE",
  "GIT_CEILING_DIRECTORIES",
  "GIT_DISCOVERY_ACROSS_FILESYSTEM",
];

/**
 * The commit a ref points at, or undefined if it does not resolve.
 *
 * @example
 * ```ts
 * await resolveCommit("/repo", "origin/main");
 * ```
 */
export async function resolveCommit(repo: string, ref: string): Promise<string | undefined> {
  const r = await git(["rev-parse", "--verify", "--quiet", `${ref}^{commit}`], repo);
  return r.code === 0 && r.stdout !== "" ? r.stdout : undefined;
}

/**
 * How many commits `ref` has beyond `start` (undefined if git cannot say).
 *
 * @example
 * ```ts
 * await commitsBeyond("/repo", "abc123", "claude/auto-013");
 * ```
 */
export async function commitsBeyond(
  repo: string,
  start: string,
  ref: string,
): Promise<number | undefined> {
  const r = await git(["rev-list", "--count", `${start}..${ref}`, "--"], repo);
  if (r.code !== 0) return undefined;
  const n = Number(r.stdout);
  return Number.isInteger(n) ? n : undefined;
}

/** A linked worktree's registration. */
export interface Registration {
  /** Its folder in the common git dir's `worktrees/`, as in `worktrees/<name>/HEAD`. */
  name: string;
  /** That folder's path: it holds the worktree's HEAD and reflog. */
  folder: string;
  /** The worktree's path as git recorded it: what a removal must name. */
  path: string;
}

/**
 * The registration of the linked worktree at `path`, found by the path git
 * recorded: that text, or the same path once the symlinks of both are
 * resolved (as git's own lookup compares them). It works when the worktree's
 * directory is gone: the registration still holds its HEAD and reflog.
 * Undefined when none names `path`; null when the registrations cannot be
 * read, or more than one names it (git could take either).
 *
 * @example
 * ```ts
 * const found = await registeredWorktree("/repo", "/repo/.claude/worktrees/auto-013");
 * ```
 */
export async function registeredWorktree(
  repoRoot: string,
  path: string,
): Promise<Registration | undefined | null> {
  const common = await git(["rev-parse", "--git-common-dir"], repoRoot);
  if (common.code !== 0) return null;
  const dir = join(resolve(repoRoot, common.stdout), "worktrees");
  const exact = join(path, ".git");
  const resolved = join(await spelledOnDisk(path), ".git");
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch (e) {
    return e instanceof Deno.errors.NotFound ? undefined : null; // no linked worktree at all
  }
  const matches: Registration[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory) continue;
    const folder = join(dir, entry.name);
    const recorded = await recordedGitdir(folder);
    if (recorded === null) return null;
    if (recorded === undefined) continue;
    if (recorded === exact || await spelledOnDisk(recorded) === resolved) {
      matches.push({ name: entry.name, folder, path: dirname(recorded) });
    }
  }
  return matches.length > 1 ? null : matches[0];
}

/**
 * The `<worktree>/.git` path a registration folder records (a newer git may
 * record it relative to that folder); undefined when it records none; null
 * when it cannot be read.
 */
async function recordedGitdir(folder: string): Promise<string | undefined | null> {
  const text = (await readText(join(folder, "gitdir"), ""))?.trim();
  if (text === undefined) return null;
  return text === "" ? undefined : resolve(folder, text);
}

/**
 * What a registration holds: the commit its HEAD is at, the commits its
 * reflog lists, and those its own refs (`refs/worktree/*`, `refs/bisect/*`,
 * `refs/rewritten/*`, all kept in its folder) point at.
 */
export interface RegisteredHead {
  registration: Registration;
  head: string;
  reflog: string[];
  ownRefs: string[];
}

/**
 * What git still holds of the worktree at `path` when its directory is gone:
 * its registration's HEAD and reflog, read from the registration's folder
 * (not through the name `worktrees/<name>/HEAD`: with that HEAD broken, git
 * would take a tag or branch of that name instead). "unregistered" when no
 * registration names `path`; undefined when that cannot be told, or the HEAD
 * names no commit (a branch since deleted).
 *
 * @example
 * ```ts
 * const held = await registeredHead("/repo", "/repo/.claude/worktrees/auto-013");
 * ```
 */
export async function registeredHead(
  repoRoot: string,
  path: string,
): Promise<RegisteredHead | "unregistered" | undefined> {
  const registration = await registeredWorktree(repoRoot, path);
  if (registration === null) return undefined;
  if (registration === undefined) return "unregistered";
  const text = await readText(join(registration.folder, "HEAD"));
  if (text === undefined) return undefined;
  let head = text.trim();
  if (head.startsWith("ref:")) {
    const ref = head.slice(4).trim();
    // A branch; a ref of the worktree's own (refs/worktree/x) would be read from the main one's.
    if (!ref.startsWith("refs/heads/")) return undefined;
    const r = await git(["show-ref", "--verify", "--hash", ref], repoRoot);
    if (r.code !== 0) return undefined;
    head = r.stdout;
  }
  if (!FULL_SHA.test(head)) return undefined;
  const commit = await git(["cat-file", "-e", `${head}^{commit}`], repoRoot);
  if (commit.code !== 0) return undefined;
  const log = await readText(join(registration.folder, "logs", "HEAD"), "");
  if (log === undefined) return undefined;
  // Each line: `<old> <new> <who> <when>\t<message>`; the commits HEAD was at are the new ones.
  const reflog = log.split("\n").map((line) => line.split(" ")[1] ?? "")
    .filter((sha) => FULL_SHA.test(sha) && !/^0+$/.test(sha));
  const ownRefs = await refsIn(join(registration.folder, "refs"));
  if (ownRefs === undefined) return undefined;
  return { registration, head, reflog, ownRefs };
}

/**
 * The commits a present worktree's own refs (`refs/worktree/*`,
 * `refs/bisect/*`, `refs/rewritten/*`) point at; undefined when git fails.
 *
 * @example
 * ```ts
 * const shas = await ownRefsOf("/repo/.claude/worktrees/auto-013");
 * ```
 */
export async function ownRefsOf(worktree: string): Promise<string[] | undefined> {
  const r = await git(
    ["for-each-ref", "--format=%(objectname)", "refs/worktree/", "refs/bisect/", "refs/rewritten/"],
    worktree,
  );
  return r.code === 0 ? r.stdout.split("\n").filter((sha) => sha !== "") : undefined;
}

/**
 * The commits the ref files under `dir` name (a worktree's own refs are never
 * packed); undefined when one cannot be read or names no commit by its full name.
 */
async function refsIn(dir: string): Promise<string[] | undefined> {
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch (e) {
    return e instanceof Deno.errors.NotFound ? [] : undefined; // no refs of its own
  }
  const shas: string[] = [];
  for (const entry of entries) {
    const path = join(dir, entry.name);
    // A ref that vanished since the listing is not "none": it cannot be told.
    const found = entry.isDirectory ? await refsIn(path) : (await readText(path))?.trim();
    const list = typeof found === "string" ? [found] : found;
    if (list === undefined || !list.every((sha) => FULL_SHA.test(sha))) return undefined;
    shas.push(...list);
  }
  return shas;
}

/** A full object name (SHA-1 or SHA-256). */
const FULL_SHA = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/i;

/** `path` with the symlinks of its longest existing part resolved (the rest may not exist). */
async function spelledOnDisk(path: string): Promise<string> {
  const rest: string[] = [];
  for (let at = path;; at = dirname(at)) {
    try {
      return join(await Deno.realPath(at), ...rest);
    } catch {
      if (dirname(at) === at) return path;
      rest.unshift(basename(at));
    }
  }
}

/**
 * How many commits `from` reach that `not` do not (0 for none given;
 * undefined when git fails).
 *
 * @example
 * ```ts
 * const n = await countOnly("/repo", ["feature"], ["main"]);
 * ```
 */
export async function countOnly(
  repoRoot: string,
  from: readonly string[],
  not: readonly string[],
): Promise<number | undefined> {
  if (from.length === 0) return 0;
  const r = await git(["rev-list", "--count", ...from, "--not", ...not, "--"], repoRoot);
  const n = Number(r.stdout);
  return r.code === 0 && r.stdout !== "" && Number.isInteger(n) ? n : undefined;
}

/**
 * The commit `refs/heads/<branch>` points at, "" when there is no such
 * branch, undefined when git fails.
 *
 * @example
 * ```ts
 * const tip = await branchTip("/repo", "claude/auto-013");
 * ```
 */
export async function branchTip(repoRoot: string, branch: string): Promise<string | undefined> {
  const r = await git(["for-each-ref", "--format=%(objectname)", `refs/heads/${branch}`], repoRoot);
  return r.code === 0 ? r.stdout.split("\n")[0].trim() : undefined;
}
