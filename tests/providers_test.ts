import { deepEqual, equal, ok as assert } from "node:assert/strict";
import { delimiter, dirname, join } from "node:path";
import { waitFor } from "../testkit/process.ts";
import { fileURLToPath } from "node:url";
import { buildQuery, checkGhAuth, createGhProvider, ghArgs } from "../lib/watch/providers/gh.ts";
import { createGitProvider, remoteBranchOf } from "../lib/watch/providers/git.ts";
import type { PrState, WatchedBranch } from "../lib/watch/providers/types.ts";
import { git as realGit, type GitOutput } from "../lib/git/git.ts";
import { ok, type Result } from "../lib/util/result.ts";

const FAKE_GH_DIR = fileURLToPath(new URL("./fake_gh", import.meta.url));
const FAKE_GH = join(FAKE_GH_DIR, "gh");
/** The fake gh is a Deno script: make sure the deno running the tests is on its PATH. */
const PATH_WITH_DENO = [dirname(Deno.execPath()), Deno.env.get("PATH") ?? ""].join(delimiter);

const STARTED = Date.parse("2026-04-19T12:00:00Z");
const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

function watched(branch: string, startedAt = STARTED, startCommit = "0".repeat(40)): WatchedBranch {
  return { branch, startCommit, startedAt };
}

function unwrap<T>(r: Result<T>): T {
  if (!r.ok) throw new Error(`expected ok, got error: ${r.error}`);
  return r.value;
}

function errorOf<T>(r: Result<T>): string {
  if (r.ok) throw new Error(`expected an error, got ${JSON.stringify(r.value)}`);
  return r.error;
}

async function tempDir(prefix: string): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix });
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true }).catch(() => {});
    },
  };
}

// ---------------------------------------------------------------------------
// gh provider, against tests/fake_gh/gh

interface FakePr {
  number: number;
  state: "OPEN" | "CLOSED" | "MERGED";
  createdAt: string;
  updatedAt: string;
  closedAt?: string;
  mergedAt?: string;
  isCrossRepository?: boolean;
  /** What the fake serves of an open PR beyond its state (tests/fake_gh/gh). */
  [more: string]: unknown;
}

/** A scratch dir with the fake's state file, call log and environment. */
async function fakeGh(prs: Record<string, FakePr[] | Record<string, unknown>> = {}) {
  const dir = await tempDir("chump-gh-");
  const log = join(dir.path, "gh.log");
  const state = join(dir.path, "state.json");
  await Deno.writeTextFile(state, JSON.stringify(prs));
  const env: Record<string, string> = {
    FAKE_GH_LOG: log,
    FAKE_GH_STATE: state,
    PATH: PATH_WITH_DENO,
  };
  return {
    dir,
    env,
    state,
    /** argv of every gh invocation so far. */
    async calls(): Promise<string[][]> {
      const text = await Deno.readTextFile(log).catch(() => "");
      return text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
    },
    [Symbol.asyncDispose]: () => dir[Symbol.asyncDispose](),
  };
}

function pr(number: number, state: FakePr["state"], createdAt: number): FakePr {
  return { number, state, createdAt: iso(createdAt), updatedAt: iso(createdAt + MINUTE) };
}

/** A PR state without what an open PR says beyond its state (checks, reviews: tested apart). */
function bare(s: PrState | undefined): PrState | undefined {
  if (s === undefined || s.state === "none") return s;
  const { review: _review, ...rest } = s;
  return rest;
}

Deno.test("gh: ten watched branches cost exactly one gh invocation per poll", async () => {
  await using fake = await fakeGh({ "claude/b3": [pr(33, "OPEN", STARTED + MINUTE)] });
  const provider = createGhProvider({ cwd: fake.dir.path, gh: FAKE_GH, env: fake.env });
  equal(provider.name, "gh");
  const branches = Array.from({ length: 10 }, (_, i) => watched(`claude/b${i}`));

  const first = unwrap(await provider.poll(branches));
  equal((await fake.calls()).length, 1);
  const second = unwrap(await provider.poll(branches));
  equal((await fake.calls()).length, 2);

  for (const states of [first, second]) {
    equal(states.size, 10);
    deepEqual(bare(states.get("claude/b3")), { state: "open", number: 33 });
    deepEqual(states.get("claude/b0"), { state: "none" });
  }
  const [argv] = await fake.calls();
  deepEqual(argv.slice(0, 7), ["api", "graphql", "-F", "owner={owner}", "-F", "repo={repo}", "-f"]);
  equal(argv.length, 8);
  assert(argv[7].startsWith("query="));
  for (let i = 0; i < 10; i++) {
    assert(argv[7].includes(`b${i}: pullRequests(headRefName: "claude/b${i}"`), `b${i}`);
  }
});

Deno.test("gh: merged, closed and open PRs map with their numbers; no PR is none", async () => {
  await using fake = await fakeGh({
    "claude/m": [pr(12, "MERGED", STARTED + MINUTE)],
    "claude/c": [pr(13, "CLOSED", STARTED + 2 * MINUTE)],
    "claude/o": [pr(14, "OPEN", STARTED + 3 * MINUTE)],
  });
  const provider = createGhProvider({ cwd: fake.dir.path, gh: FAKE_GH, env: fake.env });
  const states = unwrap(
    await provider.poll(["claude/m", "claude/c", "claude/o", "claude/n"].map((b) => watched(b))),
  );
  deepEqual(
    new Map([...states].map(([k, v]) => [k, bare(v)])),
    new Map<string, PrState>([
      ["claude/m", { state: "merged", number: 12 }],
      ["claude/c", { state: "closed", number: 13 }],
      ["claude/o", { state: "open", number: 14 }],
      ["claude/n", { state: "none" }],
    ]),
  );
});

Deno.test("gh: a PR created before the dispatch (minus skew) is an old attempt and ignored", async () => {
  await using fake = await fakeGh({
    // Closed last week for the same branch name, then a new open PR today.
    "claude/again": [pr(3, "CLOSED", STARTED - 7 * DAY), pr(9, "OPEN", STARTED + 10 * MINUTE)],
    // Only the old attempt: as if there were no PR.
    "claude/old": [pr(4, "CLOSED", STARTED - 7 * DAY)],
    // Created 2 minutes before startedAt (within the default 5-minute skew), merged after it.
    "claude/skewed": [{ ...pr(5, "MERGED", STARTED - 2 * MINUTE), updatedAt: iso(STARTED + 1) }],
  });
  const branches = ["claude/again", "claude/old", "claude/skewed"].map((b) => watched(b));

  const provider = createGhProvider({ cwd: fake.dir.path, gh: FAKE_GH, env: fake.env });
  const states = unwrap(await provider.poll(branches));
  deepEqual(bare(states.get("claude/again")), { state: "open", number: 9 });
  deepEqual(states.get("claude/old"), { state: "none" });
  deepEqual(states.get("claude/skewed"), { state: "merged", number: 5 });

  const strict = createGhProvider({ cwd: fake.dir.path, gh: FAKE_GH, env: fake.env, skewMs: 0 });
  deepEqual(unwrap(await strict.poll(branches)).get("claude/skewed"), { state: "none" });
});

Deno.test("gh: a PR that had closed or merged before the dispatch started is an earlier attempt's, even inside the skew", async () => {
  const before = (n: number, state: FakePr["state"], endedAt: number): FakePr => ({
    ...pr(n, state, STARTED - 2 * MINUTE),
    closedAt: iso(endedAt),
    updatedAt: iso(endedAt),
  });
  await using fake = await fakeGh({
    // A ci_failed attempt a minute ago, then this dispatch on the same branch.
    "claude/redo": [before(1, "CLOSED", STARTED - MINUTE)],
    "claude/remerge": [{ ...before(2, "MERGED", STARTED - 1000), mergedAt: iso(STARTED - 1000) }],
    // Created inside the skew but closed after the start: this dispatch's.
    "claude/late": [before(3, "CLOSED", STARTED + MINUTE)],
    // The earlier attempt's closed PR, then this dispatch's own open one.
    "claude/both": [before(4, "CLOSED", STARTED - MINUTE), pr(5, "OPEN", STARTED + MINUTE)],
  });
  const provider = createGhProvider({ cwd: fake.dir.path, gh: FAKE_GH, env: fake.env });
  const states = unwrap(
    await provider.poll(
      ["claude/redo", "claude/remerge", "claude/late", "claude/both"].map((b) => watched(b)),
    ),
  );
  deepEqual(states.get("claude/redo"), { state: "none" });
  deepEqual(states.get("claude/remerge"), { state: "none" });
  deepEqual(states.get("claude/late"), { state: "closed", number: 3 });
  deepEqual(bare(states.get("claude/both")), { state: "open", number: 5 });
  const [argv] = await fake.calls();
  assert(argv[7].includes("closedAt mergedAt"), argv[7]);
});

Deno.test("gh: the newest PR of the dispatch wins; fork PRs with the same branch name do not count", async () => {
  await using fake = await fakeGh({
    "claude/x": [pr(20, "CLOSED", STARTED + MINUTE), pr(21, "MERGED", STARTED + 30 * MINUTE)],
    "claude/y": [
      pr(30, "OPEN", STARTED + MINUTE),
      { ...pr(31, "MERGED", STARTED + 2 * MINUTE), isCrossRepository: true },
    ],
  });
  const provider = createGhProvider({ cwd: fake.dir.path, gh: FAKE_GH, env: fake.env });
  const states = unwrap(await provider.poll([watched("claude/x"), watched("claude/y")]));
  deepEqual(states.get("claude/x"), { state: "merged", number: 21 });
  deepEqual(bare(states.get("claude/y")), { state: "open", number: 30 });
});

Deno.test("gh: zero watched branches make no gh call", async () => {
  await using fake = await fakeGh();
  const provider = createGhProvider({ cwd: fake.dir.path, gh: FAKE_GH, env: fake.env });
  deepEqual(unwrap(await provider.poll([])), new Map());
  equal((await fake.calls()).length, 0);
});

Deno.test("gh: a failing gh is an error value with its stderr; the next poll recovers", async () => {
  await using fake = await fakeGh({ "claude/m": [pr(12, "MERGED", STARTED + MINUTE)] });
  fake.env.FAKE_GH_FAIL = "error connecting to api.github.com\ncheck your internet connection";
  const provider = createGhProvider({ cwd: fake.dir.path, gh: FAKE_GH, env: fake.env });

  const error = errorOf(await provider.poll([watched("claude/m")]));
  equal(error, "gh: exited 1: error connecting to api.github.com");

  delete fake.env.FAKE_GH_FAIL;
  deepEqual(unwrap(await provider.poll([watched("claude/m")])).get("claude/m"), {
    state: "merged",
    number: 12,
  });
  equal((await fake.calls()).length, 2);
});

Deno.test("gh: a GraphQL error (as gh reports it: exit 1) is an error value", async () => {
  await using fake = await fakeGh();
  fake.env.FAKE_GH_GRAPHQL_ERROR = "Could not resolve to a Repository with the name 'o/r'.";
  const provider = createGhProvider({ cwd: fake.dir.path, gh: FAKE_GH, env: fake.env });
  equal(
    errorOf(await provider.poll([watched("claude/x")])),
    "gh: exited 1: Could not resolve to a Repository with the name 'o/r'.",
  );
});

Deno.test("gh: invalid JSON, an errors array or missing data on exit 0 are error values", async () => {
  await using fake = await fakeGh();
  const provider = createGhProvider({ cwd: fake.dir.path, gh: FAKE_GH, env: fake.env });
  const poll = async (stdout: string) => {
    fake.env.FAKE_GH_STDOUT = stdout;
    return errorOf(await provider.poll([watched("claude/x")]));
  };
  assert((await poll("<html>rate limited</html>")).startsWith("gh: invalid JSON"));
  assert((await poll("")).startsWith("gh: invalid JSON"));
  equal(
    await poll(JSON.stringify({ data: null, errors: [{ message: "boom" }, { message: "two" }] })),
    "gh: GraphQL error: boom (+1 more)",
  );
  equal(await poll(JSON.stringify({ data: {} })), "gh: response has no data.repository");
  equal(await poll("[]"), "gh: unexpected response from gh api graphql (not an object)");
  equal(
    await poll(JSON.stringify({ data: { repository: {} } })),
    "gh: response has no pull requests for claude/x",
  );
});

Deno.test("gh: a missing gh is an error value, not a throw", async () => {
  await using dir = await tempDir("chump-gh-");
  const provider = createGhProvider({ cwd: dir.path, gh: join(dir.path, "no-such-gh") });
  assert(errorOf(await provider.poll([watched("claude/x")])).startsWith("gh: cannot run "));
});

Deno.test("gh: the default command is the gh found on PATH", async () => {
  await using fake = await fakeGh({ "claude/m": [pr(12, "MERGED", STARTED + MINUTE)] });
  fake.env.PATH = [FAKE_GH_DIR, PATH_WITH_DENO].join(delimiter);
  const provider = createGhProvider({ cwd: fake.dir.path, env: fake.env });
  deepEqual(unwrap(await provider.poll([watched("claude/m")])).get("claude/m"), {
    state: "merged",
    number: 12,
  });
  equal((await fake.calls()).length, 1);
});

Deno.test("gh: branch names cannot change the query's shape", async () => {
  const names = [
    'claude/quote"d',
    "claude/back\\slash",
    'claude/x") { nodes { number } } evil: viewer { login } #',
    "claude/ünï",
  ];
  await using fake = await fakeGh(
    Object.fromEntries(names.map((n, i) => [n, [pr(40 + i, "OPEN", STARTED + MINUTE)]])),
  );
  const provider = createGhProvider({ cwd: fake.dir.path, gh: FAKE_GH, env: fake.env });
  const states = unwrap(await provider.poll(names.map((n) => watched(n))));
  names.forEach((n, i) => deepEqual(bare(states.get(n)), { state: "open", number: 40 + i }, n));
  equal(buildQuery(names).match(/pullRequests\(/g)?.length, names.length);
});

Deno.test("gh: a gh that never answers is killed and the poll fails", async () => {
  await using fake = await fakeGh();
  fake.env.FAKE_GH_HANG = "1";
  const provider = createGhProvider({
    cwd: fake.dir.path,
    gh: FAKE_GH,
    env: fake.env,
    timeoutMs: 300,
  });
  assert(errorOf(await provider.poll([watched("claude/x")])).startsWith("gh: timed out"));
});

Deno.test("gh: a poll's own timeout overrides the provider's default", async () => {
  await using fake = await fakeGh();
  fake.env.FAKE_GH_HANG = "1";
  const provider = createGhProvider({ cwd: fake.dir.path, gh: FAKE_GH, env: fake.env });
  equal(
    errorOf(await provider.poll([watched("claude/x")], { timeoutMs: 300 })),
    "gh: timed out after 300ms",
  );
});

Deno.test("gh: a poll is abandoned at once when its signal aborts, and gh is ended", async () => {
  await using fake = await fakeGh();
  fake.env.FAKE_GH_HANG = "1";
  const provider = createGhProvider({ cwd: fake.dir.path, gh: FAKE_GH, env: fake.env });
  const stop = new AbortController();
  const polled = provider.poll([watched("claude/x")], { signal: stop.signal });
  // gh logs its argv as it starts: abort once it is really running (and hanging).
  while ((await fake.calls()).length === 0) await new Promise((r) => setTimeout(r, 10));
  stop.abort();
  equal(errorOf(await polled), "gh: interrupted");
  // Already stopped: no gh is started at all.
  equal(
    errorOf(await provider.poll([watched("claude/x")], { signal: stop.signal })),
    "gh: interrupted",
  );
  equal((await fake.calls()).length, 1);
});

Deno.test("gh: auth status passes when logged in, and is one line when not", async () => {
  await using fake = await fakeGh();
  deepEqual(await checkGhAuth({ cwd: fake.dir.path, gh: FAKE_GH, env: fake.env }), ok(undefined));
  fake.env.FAKE_GH_AUTH_FAIL = "1";
  equal(
    errorOf(await checkGhAuth({ cwd: fake.dir.path, gh: FAKE_GH, env: fake.env })),
    "gh auth status: exited 1: You are not logged into any GitHub hosts. To log in, run: gh auth login",
  );
  deepEqual((await fake.calls()).map((c) => c.slice(0, 2)), [["auth", "status"], [
    "auth",
    "status",
  ]]);
});

Deno.test("gh: output beyond the cap is not read and the poll fails", async () => {
  const many = Array.from({ length: 5 }, (_, i) => pr(i + 1, "OPEN", STARTED + i * MINUTE));
  await using fake = await fakeGh({ "claude/x": many });
  const provider = createGhProvider({
    cwd: fake.dir.path,
    gh: FAKE_GH,
    env: fake.env,
    maxOutputBytes: 100,
  });
  equal(errorOf(await provider.poll([watched("claude/x")])), "gh: output exceeds 100 bytes");
});

Deno.test("gh: the argv is api graphql with owner/repo placeholders and one query", () => {
  const args = ghArgs(buildQuery(["claude/a", "claude/b"]));
  equal(args.length, 8);
  assert(args[7].includes("repository(owner: $owner, name: $repo)"));
  assert(args[7].includes("states: [OPEN, CLOSED, MERGED]"));
  assert(args[7].includes("orderBy: {field: CREATED_AT, direction: DESC}"));
});

// ---------------------------------------------------------------------------
// git provider, against real repositories

const GIT_ENV = {
  GIT_AUTHOR_NAME: "t",
  GIT_AUTHOR_EMAIL: "t@t",
  GIT_COMMITTER_NAME: "t",
  GIT_COMMITTER_EMAIL: "t@t",
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_TERMINAL_PROMPT: "0",
};

/** Run git for test setup; throws on failure (setup must not silently go wrong). */
async function g(cwd: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command("git", {
    args: ["-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main", ...args],
    cwd,
    env: GIT_ENV,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  if (out.code !== 0) {
    throw new Error(`git ${args.join(" ")} failed: ${dec.decode(out.stderr)}`);
  }
  return dec.decode(out.stdout).trim();
}

/** A bare origin, a clone with main pushed, and helpers to dispatch-like branches. */
async function gitFixture() {
  const dir = await tempDir("chump-gitprov-");
  const origin = join(dir.path, "origin.git");
  const repo = join(dir.path, "repo");
  await g(dir.path, "init", "--quiet", "--bare", "--initial-branch=main", origin);
  await g(dir.path, "clone", "--quiet", origin, repo);
  await Deno.writeTextFile(join(repo, "README"), "hello\n");
  await g(repo, "add", "README");
  await g(repo, "commit", "--quiet", "-m", "initial");
  await g(repo, "push", "--quiet", "origin", "main");
  const start = await g(repo, "rev-parse", "origin/main");
  let commits = 0;
  return {
    dir,
    origin,
    repo,
    start,
    /** `git worktree add -b <branch> <path> <start>`, as the dispatcher does. */
    async branch(name: string): Promise<string> {
      const path = join(dir.path, "wt", name.replaceAll("/", "-"));
      await g(repo, "worktree", "add", "--quiet", "-b", name, path, start);
      return path;
    },
    /** One commit in a worktree. */
    async commit(worktree: string): Promise<void> {
      const file = `work-${++commits}.txt`;
      await Deno.writeTextFile(join(worktree, file), `${commits}\n`);
      await g(worktree, "add", file);
      await g(worktree, "commit", "--quiet", "-m", `work ${commits}`);
    },
    /** Merge branches into origin's main from ANOTHER clone: only a fetch in `repo` reveals it. */
    async mergeElsewhere(names: string[], mode: "ff" | "merge-commit" = "ff"): Promise<void> {
      const other = join(dir.path, `other-${++commits}`);
      await g(dir.path, "clone", "--quiet", origin, other);
      if (mode === "merge-commit") {
        await Deno.writeTextFile(join(other, "other.txt"), "x\n");
        await g(other, "add", "other.txt");
        await g(other, "commit", "--quiet", "-m", "someone else's work");
      }
      for (const name of names) {
        await g(other, "fetch", "--quiet", repo, name);
        await g(other, "merge", "--quiet", mode === "ff" ? "--ff-only" : "--no-ff", "FETCH_HEAD");
      }
      await g(other, "push", "--quiet", "origin", "main");
    },
    [Symbol.asyncDispose]: () => dir[Symbol.asyncDispose](),
  };
}

/** lib/git.ts `git`, counting calls. */
function countingGit() {
  const calls: string[][] = [];
  return {
    calls,
    git: (args: readonly string[], cwd: string): Promise<GitOutput> => {
      calls.push([...args]);
      return realGit(args, cwd);
    },
  };
}

Deno.test("git: a branch with no commits is none, even after the base moved on", async () => {
  await using fx = await gitFixture();
  await fx.branch("claude/idle");
  const done = await fx.branch("claude/done");
  await fx.commit(done);
  await fx.mergeElsewhere(["claude/done"]);
  const provider = createGitProvider({ repoRoot: fx.repo, baseRef: "origin/main" });
  equal(provider.name, "git");
  const states = unwrap(
    await provider.poll([
      watched("claude/idle", STARTED, fx.start),
      watched("claude/done", STARTED, fx.start),
    ]),
  );
  deepEqual(states.get("claude/idle"), { state: "none" });
  deepEqual(states.get("claude/done"), { state: "merged" });
});

Deno.test("git: commits not merged into the base are none", async () => {
  await using fx = await gitFixture();
  const wt = await fx.branch("claude/wip");
  await fx.commit(wt);
  const provider = createGitProvider({ repoRoot: fx.repo, baseRef: "origin/main" });
  deepEqual(
    unwrap(await provider.poll([watched("claude/wip", STARTED, fx.start)])),
    new Map([[
      "claude/wip",
      { state: "none" },
    ]]),
  );
});

Deno.test("git: commits merged into origin/main from another clone are merged after the fetch", async () => {
  await using fx = await gitFixture();
  const ff = await fx.branch("claude/ff");
  await fx.commit(ff);
  await fx.commit(ff);
  const mc = await fx.branch("claude/mc");
  await fx.commit(mc);
  await fx.mergeElsewhere(["claude/ff"]);
  await fx.mergeElsewhere(["claude/mc"], "merge-commit");
  // The local origin/main has not seen it yet: only the provider's fetch can reveal it.
  equal(await g(fx.repo, "rev-parse", "origin/main"), fx.start);

  const provider = createGitProvider({ repoRoot: fx.repo, baseRef: "origin/main" });
  const states = unwrap(
    await provider.poll([
      watched("claude/ff", STARTED, fx.start),
      watched("claude/mc", STARTED, fx.start),
    ]),
  );
  deepEqual(states.get("claude/ff"), { state: "merged" });
  deepEqual(states.get("claude/mc"), { state: "merged" });
  // Fetched into the provider's own ref: refs/remotes/origin/main is left to the agents, whose
  // fetches would otherwise race ours for its lock.
  equal(await g(fx.repo, "rev-parse", "origin/main"), fx.start);
});

Deno.test("git: an abbreviated start commit is understood", async () => {
  await using fx = await gitFixture();
  await fx.branch("claude/idle");
  const provider = createGitProvider({ repoRoot: fx.repo, baseRef: "origin/main" });
  deepEqual(
    unwrap(await provider.poll([watched("claude/idle", STARTED, fx.start.slice(0, 12))])).get(
      "claude/idle",
    ),
    { state: "none" },
  );
});

Deno.test("git: a failed fetch is an error value for that tick", async () => {
  await using fx = await gitFixture();
  const wt = await fx.branch("claude/x");
  await fx.commit(wt);
  await g(fx.repo, "remote", "set-url", "origin", join(fx.dir.path, "missing.git"));
  const provider = createGitProvider({ repoRoot: fx.repo, baseRef: "origin/main" });
  const error = errorOf(await provider.poll([watched("claude/x", STARTED, fx.start)]));
  assert(error.startsWith("git: fetch origin main failed: "), error);
  assert(!error.includes("\n"));
});

Deno.test("git: a lock of the provider's own ref left by a killed fetch is removed when stale; a fresh one (a fetch in progress) is left alone", async () => {
  await using fx = await gitFixture();
  const wt = await fx.branch("claude/x");
  await fx.commit(wt);
  const provider = createGitProvider({ repoRoot: fx.repo, baseRef: "origin/main" });
  const branches = [watched("claude/x", STARTED, fx.start)];
  unwrap(await provider.poll(branches)); // the provider's ref exists now
  // The base moves on elsewhere, so the next fetch must update (and lock) the provider's ref.
  await fx.mergeElsewhere(["claude/x"], "merge-commit");
  const lock = join(fx.repo, ".git", "refs", "chump-orchestrator", "base", "origin", "main.lock");
  await Deno.writeTextFile(lock, "");
  const fresh = errorOf(await provider.poll(branches));
  assert(fresh.includes("main.lock': File exists"), fresh);
  const old = new Date(Date.now() - 60_000);
  await Deno.utime(lock, old, old);
  const after = unwrap(await provider.poll(branches));
  equal(after.get("claude/x")?.state, "merged", "the fetch went through: the merge is seen");
  equal(await Deno.stat(lock).then(() => true, () => false), false, "the stale lock is gone");
});

/**
 * Point `origin` at a remote that accepts and never answers (git's `ext::`
 * transport running a script that records its pid, then sleeps): what an
 * unreachable ssh remote does to a fetch without a timeout.
 */
async function hangingOrigin(fx: { dir: { path: string }; repo: string }): Promise<string> {
  const pidFile = join(fx.dir.path, "remote.pid");
  const script = join(fx.dir.path, "hang-remote.sh");
  await Deno.writeTextFile(script, `#!/bin/sh\necho $$ > '${pidFile}'\nexec sleep 600\n`);
  await Deno.chmod(script, 0o755);
  await g(fx.repo, "config", "protocol.ext.allow", "always");
  await g(fx.repo, "remote", "set-url", "origin", `ext::${script}`);
  return pidFile;
}

/** Is `pid` a live (non-zombie) process? */
async function alive(pid: number): Promise<boolean> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

Deno.test("git: a fetch from a remote that never answers times out; the remote's process is ended", async () => {
  await using fx = await gitFixture();
  const wt = await fx.branch("claude/x");
  await fx.commit(wt);
  const pidFile = await hangingOrigin(fx);
  const provider = createGitProvider({ repoRoot: fx.repo, baseRef: "origin/main" });
  const error = errorOf(
    await provider.poll([watched("claude/x", STARTED, fx.start)], { timeoutMs: 1000 }),
  );
  assert(
    error.startsWith("git: fetch origin main failed: fatal: git fetch timed out after"),
    error,
  );
  const pid = Number(await Deno.readTextFile(pidFile));
  if (Deno.build.os === "linux") equal(await alive(pid), false, "the remote's sleep is gone");
});

Deno.test("git: a poll stuck in a fetch is abandoned at once when its signal aborts", async () => {
  await using fx = await gitFixture();
  await fx.branch("claude/x");
  const pidFile = await hangingOrigin(fx);
  const provider = createGitProvider({ repoRoot: fx.repo, baseRef: "origin/main" });
  const stop = new AbortController();
  const polled = provider.poll([watched("claude/x", STARTED, fx.start)], { signal: stop.signal });
  // The remote writes its pid as it starts: abort once the fetch is really hanging.
  await waitFor(() => Deno.stat(pidFile).then(() => true, () => false), { everyMs: 10 });
  stop.abort();
  const error = errorOf(await polled);
  equal(error, "git: fetch origin main failed: fatal: git fetch was interrupted");
});

Deno.test("git: a base ref that does not resolve is an error value", async () => {
  await using fx = await gitFixture();
  await fx.branch("claude/x");
  const provider = createGitProvider({ repoRoot: fx.repo, baseRef: "no-such-ref" });
  const error = errorOf(await provider.poll([watched("claude/x", STARTED, fx.start)]));
  assert(error.startsWith("git: cannot compare branches with no-such-ref: "), error);
});

Deno.test("git: a deleted branch is none", async () => {
  await using fx = await gitFixture();
  const wt = await fx.branch("claude/gone");
  await fx.commit(wt);
  await fx.mergeElsewhere(["claude/gone"]);
  await g(fx.repo, "worktree", "remove", "--force", wt);
  await g(fx.repo, "branch", "--quiet", "-D", "claude/gone");
  const provider = createGitProvider({ repoRoot: fx.repo, baseRef: "origin/main" });
  deepEqual(
    unwrap(await provider.poll([watched("claude/gone", STARTED, fx.start)])),
    new Map([[
      "claude/gone",
      { state: "none" },
    ]]),
  );
});

Deno.test("git: a local base ref is used as is, without a fetch", async () => {
  await using fx = await gitFixture();
  const wt = await fx.branch("claude/local");
  await fx.commit(wt);
  await g(fx.repo, "merge", "--quiet", "--ff-only", "claude/local");
  // A broken remote does not matter: "main" is not a remote ref.
  await g(fx.repo, "remote", "set-url", "origin", join(fx.dir.path, "missing.git"));
  const counting = countingGit();
  const provider = createGitProvider({ repoRoot: fx.repo, baseRef: "main", git: counting.git });
  deepEqual(
    unwrap(await provider.poll([watched("claude/local", STARTED, fx.start)])),
    new Map([[
      "claude/local",
      { state: "merged" },
    ]]),
  );
  assert(!counting.calls.some((c) => c[0] === "fetch"));
});

Deno.test("git: twenty branches cost the same constant number of git calls per poll as one", async () => {
  await using fx = await gitFixture();
  const branches: WatchedBranch[] = [];
  const merged: string[] = [];
  for (let i = 0; i < 20; i++) {
    const name = `claude/gap-${i}`;
    const wt = await fx.branch(name);
    if (i % 3 !== 0) await fx.commit(wt); // every third stays idle
    if (i % 2 === 0) merged.push(name); // even ones are merged
    branches.push(watched(name, STARTED, fx.start));
  }
  await fx.mergeElsewhere(merged, "merge-commit");

  const counting = countingGit();
  const provider = createGitProvider({
    repoRoot: fx.repo,
    baseRef: "origin/main",
    git: counting.git,
  });
  const states = unwrap(await provider.poll(branches));
  const perPollMany = counting.calls.length;
  branches.forEach((b, i) => {
    const expected = i % 2 === 0 && i % 3 !== 0 ? "merged" : "none";
    deepEqual(states.get(b.branch), { state: expected }, b.branch);
  });

  counting.calls.length = 0;
  unwrap(await provider.poll(branches.slice(0, 1)));
  const perPollOne = counting.calls.length;
  equal(perPollMany, 3); // git remote, git fetch, git for-each-ref
  equal(perPollOne, perPollMany);

  counting.calls.length = 0;
  deepEqual(unwrap(await provider.poll([])), new Map());
  equal(counting.calls.length, 0);
});

Deno.test("git: the remote of a base ref is the longest configured remote prefixing it", () => {
  deepEqual(remoteBranchOf("origin/main", ["origin"]), { remote: "origin", branch: "main" });
  deepEqual(remoteBranchOf("refs/remotes/origin/release/1", ["origin"]), {
    remote: "origin",
    branch: "release/1",
  });
  deepEqual(remoteBranchOf("team/a/main", ["team", "team/a"]), {
    remote: "team/a",
    branch: "main",
  });
  equal(remoteBranchOf("main", ["origin"]), undefined);
  equal(remoteBranchOf("upstream/main", ["origin"]), undefined);
  equal(remoteBranchOf("origin/", ["origin"]), undefined);
});

Deno.test("gh: the same one query reads an open PR's checks, conflicts and reviews, and the base branch's checks", async () => {
  await using fake = await fakeGh({
    "claude/red": [{
      ...pr(51, "OPEN", STARTED + MINUTE),
      headSha: "a".repeat(40),
      mergeable: "CONFLICTING",
      reviewDecision: "CHANGES_REQUESTED",
      checks: [
        { name: "lint", conclusion: "SUCCESS" },
        { name: "test", conclusion: "FAILURE", runId: 777 },
        { context: "ci/legacy", state: "ERROR" },
      ],
      reviews: [{
        state: "CHANGES_REQUESTED",
        body: "Please add a test.",
        comments: [{ body: "This leaks the handle.", path: "src/a.ts" }],
      }],
    }],
    "claude/wait": [{
      ...pr(52, "OPEN", STARTED + MINUTE),
      checks: [{ name: "test", status: "IN_PROGRESS" }, { name: "lint", conclusion: "FAILURE" }],
    }],
    __base__: { checks: [{ name: "build", conclusion: "FAILURE" }] },
  });
  const provider = createGhProvider({
    cwd: fake.dir.path,
    gh: FAKE_GH,
    env: fake.env,
    baseBranch: "main",
  });
  const states = unwrap(await provider.poll([watched("claude/red"), watched("claude/wait")]));
  const red = states.get("claude/red");
  assert(red?.state === "open");
  deepEqual(red.review, {
    checks: "failing",
    failing: [{ name: "test", runId: 777 }, { name: "ci/legacy" }],
    conflicting: true,
    reviewDecision: "CHANGES_REQUESTED",
    comments: ["Please add a test.", "src/a.ts: This leaks the handle."],
    headSha: "a".repeat(40),
  });
  const wait = states.get("claude/wait");
  assert(wait?.state === "open");
  equal(wait.review?.checks, "pending", "a check still running: not failing yet");
  deepEqual(provider.base?.(), { red: true, failing: ["build"] });
  equal((await Deno.readTextFile(join(fake.dir.path, "gh.log"))).trim().split("\n").length, 1);
});
