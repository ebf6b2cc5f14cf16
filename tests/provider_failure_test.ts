/**
 * A PR provider that fails, hangs or is not logged in, end to end: the
 * monitor keeps deciding what it can (exit codes, deadlines), an interrupt
 * is never held by a hung `gh`, finished agents do not hold their slots,
 * and a failure is logged and retried. Real CLI, real demo agents, the fake
 * `gh` of tests/fake_gh (modes chosen by environment).
 */
import { deepEqual, equal, match, ok as assert } from "node:assert/strict";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  backlogOf,
  exists,
  gitOk,
  killMarked,
  leaseRows,
  linesStarting,
  orchestrate,
  orchestrateInBackground,
  pidsWithEnv,
  reflectionRows,
  scratchRepo,
} from "./_e2e.ts";
import { gap } from "./_helpers.ts";
import { Processes } from "../lib/process/table.ts";
import { sameProcessAlive } from "../testkit/process.ts";
import { realSpawner } from "../lib/process/spawn.ts";
import { terminateGroup } from "../lib/process/signal.ts";
import { selfCommand } from "../lib/process/self_command.ts";
import { gitWorkspace } from "../lib/git/workspace.ts";
import { createMemoryWriter } from "../testkit/writers.ts";
import { queryRunTotals } from "../lib/store/query.ts";
import { DEFAULT_DEADLINES } from "../lib/util/duration.ts";
import { createGhProvider } from "../lib/watch/providers/gh.ts";
import type { PollOptions, PrProvider } from "../lib/watch/providers/types.ts";
import { MAX_POLL_TIMEOUT_MS, MIN_POLL_TIMEOUT_MS, pollTimeoutFor } from "../lib/watch/state.ts";
import { runDispatches } from "../lib/watch/run.ts";

const FAKE_GH_DIR = fileURLToPath(new URL("./fake_gh", import.meta.url));

/**
 * The environment that puts the fake `gh` (and the deno it runs on) first on
 * PATH, with a state file of PRs and a call log under `dir`.
 */
async function fakeGhEnv(
  dir: string,
  prs: Record<string, unknown[]> = {},
  extra: Record<string, string> = {},
): Promise<{ env: Record<string, string>; log: string; state: string }> {
  const state = join(dir, "gh-state.json");
  const log = join(dir, "gh-log.jsonl");
  await Deno.writeTextFile(state, JSON.stringify(prs));
  const path = [FAKE_GH_DIR, dirname(Deno.execPath()), Deno.env.get("PATH") ?? ""].join(delimiter);
  return { env: { PATH: path, FAKE_GH_STATE: state, FAKE_GH_LOG: log, ...extra }, log, state };
}

/** The `gh api` calls in the fake's log. */
async function apiCalls(log: string): Promise<number> {
  const text = await Deno.readTextFile(log).catch(() => "");
  return text.split("\n").filter((l) => l.startsWith('["api"')).length;
}

/** A mark in the agents' environment, so leftovers can be found and killed. */
function marked(): { env: Record<string, string>; mark: string } & AsyncDisposable {
  const id = crypto.randomUUID();
  const mark = `CHUMP_TEST_MARK=${id}`;
  return { env: { CHUMP_TEST_MARK: id }, mark, [Symbol.asyncDispose]: () => killMarked(mark) };
}

/** An hour from now: a PR merged "later", i.e. after the dispatch started. */
const later = () => new Date(Date.now() + 3_600_000).toISOString();

Deno.test("SIGINT while gh hangs stops at once; an agent that had exited 1 is recorded 'exit code 1'", async () => {
  await using s = await scratchRepo(backlogOf([["HG-FAIL-1"], ["HG-HANG-2"]]));
  await using m = marked();
  const gh = await fakeGhEnv(s.dir, {}, { FAKE_GH_HANG: "1" });
  const bg = orchestrateInBackground(s, ["--pr-provider", "gh", "--max-parallel", "2"], {
    ...gh.env,
    ...m.env,
  });
  await bg.waitFor(/^DISPATCHED: /, 2);
  // The failing agent has exited, and the first poll hangs in gh.
  const failPid = leaseRows(s.db).find((l) => l.gap_id === "HG-FAIL-1")!.pid!;
  while (await sameProcessAlive(failPid) || await apiCalls(gh.log) === 0) {
    await new Promise((r) => setTimeout(r, 20));
  }
  bg.signal("SIGINT");
  // Without the fix this waits for gh's 2-minute timeout (and the watchdog kills the run).
  const ran = await bg.finished();
  equal(ran.code, 130, `${ran.stdout}\n${ran.stderr}`);
  const rows = reflectionRows(s.db);
  equal(rows.size, 2);
  match(rows.get("HG-FAIL-1")!.observed, /^outcome=killed duration_s=\d+ pr=None$/);
  match(rows.get("HG-FAIL-1")!.directive, / notes=exit code 1$/);
  match(rows.get("HG-HANG-2")!.directive, / notes=interrupted by SIGINT$/);
  equal(await apiCalls(gh.log), 1, "one poll, abandoned");
  equal((await pidsWithEnv(m.mark)).length, 0, "no agent, and no gh, left running");
});

Deno.test("gh not logged in: one clear line, exit 2, before anything is dispatched", async () => {
  await using s = await scratchRepo(backlogOf([["AU-1"]]));
  const gh = await fakeGhEnv(s.dir, {}, { FAKE_GH_AUTH_FAIL: "1" });
  const ran = await orchestrate(s, ["--pr-provider", "gh"], gh.env);
  equal(ran.code, 2, ran.stdout);
  equal(
    ran.stderr.trim(),
    "chump-orchestrator: error: the gh PR provider cannot work: gh auth status: exited 1: " +
      "You are not logged into any GitHub hosts. To log in, run: gh auth login " +
      "(log in with 'gh auth login', or pass --pr-provider git)",
  );
  equal(linesStarting(ran.stdout, "DISPATCHED: ").length, 0);
  equal(await exists(join(s.repo, ".claude", "worktrees", "au-1")), false);
  equal(await apiCalls(gh.log), 0);
});

Deno.test("a provider that keeps failing does not hold finished agents' slots; the 2x kill still fires", async () => {
  await using s = await scratchRepo(backlogOf([["PD-FAIL-1"], ["PD-NOOP-2"], ["PD-HANG-3"]]));
  await using m = marked();
  const gh = await fakeGhEnv(s.dir, {}, { FAKE_GH_FAIL: "HTTP 502: Bad Gateway" });
  // Max-watch (4x the 1s deadline) would take 4 s; the exit rows settle after 2 + 3 ticks.
  const ran = await orchestrate(s, [
    "--pr-provider",
    "gh",
    "--max-parallel",
    "3",
    "--deadline",
    "s=1s",
    "--kill-grace",
    "300ms",
  ], { ...gh.env, ...m.env });
  equal(ran.code, 3, `${ran.stdout}\n${ran.stderr}`);
  const rows = reflectionRows(s.db);
  match(rows.get("PD-FAIL-1")!.observed, /^outcome=killed duration_s=\d+ pr=None$/);
  match(rows.get("PD-FAIL-1")!.directive, / notes=exit code 1$/);
  match(rows.get("PD-NOOP-2")!.observed, /^outcome=stalled /);
  match(
    rows.get("PD-NOOP-2")!.directive,
    / notes=exited 0; PR state unknown: the provider kept failing$/,
  );
  match(rows.get("PD-HANG-3")!.observed, /^outcome=killed /);
  match(rows.get("PD-HANG-3")!.directive, / notes=soft-deadline exceeded \(1s x 2\)$/);
  match(
    ran.stderr,
    /warning: PR provider gh failed: gh: exited 1: HTTP 502: Bad Gateway; retrying next tick/,
  );
  equal((await pidsWithEnv(m.mark)).length, 0);
});

Deno.test("a provider error is logged and retried next tick: failing once, then the merged PR ships", async () => {
  await using s = await scratchRepo(backlogOf([["RT-HANG-1"]]));
  await using m = marked();
  const now = new Date().toISOString();
  const gh = await fakeGhEnv(s.dir, {
    "claude/rt-hang-1": [{
      number: 21,
      state: "MERGED",
      createdAt: now,
      updatedAt: later(),
      mergedAt: later(),
    }],
  }, { FAKE_GH_FAIL_FIRST: "1" });
  const ran = await orchestrate(s, ["--pr-provider", "gh"], { ...gh.env, ...m.env });
  equal(ran.code, 0, `${ran.stdout}\n${ran.stderr}`);
  equal(
    ran.stderr.split("\n").filter((l) => l.startsWith("warning: PR provider")).join("\n"),
    "warning: PR provider gh failed: gh: exited 1: error connecting to api.github.com; " +
      "retrying next tick",
  );
  match(
    reflectionRows(s.db).get("RT-HANG-1")!.observed,
    /^outcome=shipped duration_s=\d+ pr=Some\(21\)$/,
  );
  equal(await apiCalls(gh.log), 2);
  equal((await pidsWithEnv(m.mark)).length, 0);
  // The run's row counts its ticks and the failed poll (serve's /metrics reads it) and says it ended.
  const runs = queryRunTotals(s.db);
  assert(runs.ok);
  deepEqual({ ...runs.value, ticks: runs.value.ticks >= 2 }, {
    runs: 1,
    ticks: true,
    providerErrors: 1,
    writeFailures: 0,
    liveAgents: 0,
    spending: [],
  });
});

Deno.test("an earlier attempt's closed PR does not end a re-dispatch of the same gap as ci_failed", async () => {
  await using s = await scratchRepo(backlogOf([["RD-1"]]));
  // The earlier attempt's PR #1 was opened 2 minutes ago and closed (CI failed) a minute
  // ago: inside the 5-minute clock skew, so only its close time shows it is not this run's.
  const ago = (ms: number) => new Date(Date.now() - ms).toISOString();
  const gh = await fakeGhEnv(s.dir, {
    "claude/rd-1": [{
      number: 1,
      state: "CLOSED",
      createdAt: ago(120_000),
      updatedAt: ago(60_000),
    }],
  });
  const ran = await orchestrate(s, ["--pr-provider", "gh"], {
    ...gh.env,
    CHUMP_DEMO_PLAN: "RD-1=sleep:300:fail",
  });
  equal(ran.code, 3, `${ran.stdout}\n${ran.stderr}`);
  const row = reflectionRows(s.db).get("RD-1")!;
  match(row.observed, /^outcome=killed duration_s=\d+ pr=None$/);
  match(row.directive, / notes=exit code 1$/);
  assert(await apiCalls(gh.log) >= 1);
});

Deno.test("a poll is bounded by the tick: min(tick, 60s), never under 10s", () => {
  equal(pollTimeoutFor(30_000), 30_000);
  equal(pollTimeoutFor(100), MIN_POLL_TIMEOUT_MS);
  equal(pollTimeoutFor(10 * 60_000), MAX_POLL_TIMEOUT_MS);
  deepEqual([MIN_POLL_TIMEOUT_MS, MAX_POLL_TIMEOUT_MS], [10_000, 60_000]);
});

Deno.test("the loop bounds every poll: a hung gh is cut at the bound, the next tick ships", async () => {
  await using s = await scratchRepo(backlogOf([["LT-HANG-1"]]));
  await using m = marked();
  const later = new Date(Date.now() + 3_600_000).toISOString();
  const gh = await fakeGhEnv(s.dir, {
    "claude/lt-hang-1": [{
      number: 31,
      state: "MERGED",
      createdAt: new Date().toISOString(),
      updatedAt: later,
    }],
  }, { FAKE_GH_HANG: "1", ...m.env });
  const real = createGhProvider({ cwd: s.dir, gh: join(FAKE_GH_DIR, "gh"), env: gh.env });
  const bounds: PollOptions[] = [];
  const provider: PrProvider = {
    name: "gh",
    poll(branches, options) {
      bounds.push(options ?? {});
      const polled = real.poll(branches, options);
      delete gh.env.FAKE_GH_HANG; // only the first poll hangs
      return polled;
    },
  };
  const err: string[] = [];
  const out: string[] = [];
  const writer = createMemoryWriter();
  const stop = new AbortController();
  const result = await runDispatches([gap("LT-HANG-1")], {
    repoRoot: s.repo,
    baseRef: "origin/main",
    startCommit: await gitOk(["rev-parse", "origin/main"], s.repo),
    maxParallel: 1,
    order: "priority",
    watch: true,
    tickMs: 100,
    deadlines: DEFAULT_DEADLINES,
    exitGraceTicks: 2,
    killGraceMs: 1000,
    agent: { words: selfCommand("demo-agent"), label: "demo" },
    pollTimeoutMs: 500,
  }, {
    workspace: gitWorkspace(s.repo),
    spawner: {
      spawn: (request) => realSpawner.spawn({ ...request, env: { ...request.env, ...m.env } }),
    },
    provider,
    writer,
    terminate: terminateGroup,
    processes: new Processes(),
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    interrupt: { stop: stop.signal, hurry: stop.signal, signalName: () => undefined },
  });
  deepEqual(result.outcomes.map((o) => [o.gapId, o.outcome, o.prNumber]), [
    ["LT-HANG-1", "shipped", 31],
  ]);
  deepEqual(err, [
    "warning: PR provider gh failed: gh: timed out after 500ms; retrying next tick",
  ]);
  equal(bounds.length, 2);
  for (const b of bounds) {
    equal(b.timeoutMs, 500);
    equal(b.signal, stop.signal, "the run's stop signal reaches the poll");
  }
  equal((await pidsWithEnv(m.mark)).length, 0, "no agent, and no hung gh, left running");
});

Deno.test("a GitHub outage longer than the exit grace does not turn a ship into a failure: the late answer (merged) decides", async () => {
  await using s = await scratchRepo(backlogOf([["GB-1"]]));
  await using m = marked();
  const now = new Date().toISOString();
  const gh = await fakeGhEnv(s.dir, {
    "claude/gb-1": [{ number: 41, state: "MERGED", createdAt: now, updatedAt: later() }],
  }, { FAKE_GH_FAIL_FIRST: "12" });
  // The agent exits 0 at once; 12 polls fail (far past exit grace 2 + 3); the 13th answers.
  const ran = await orchestrate(s, ["--pr-provider", "gh", "--deadline", "s=1m"], {
    ...gh.env,
    ...m.env,
    CHUMP_DEMO_PLAN: "GB-1=noop",
  });
  equal(ran.code, 0, `${ran.stdout}\n${ran.stderr}`);
  match(ran.stdout, /^OUTCOME: GB-1 shipped duration_s=\d+ pr=#41$/m);
  match(
    reflectionRows(s.db).get("GB-1")!.observed,
    /^outcome=shipped duration_s=\d+ pr=Some\(41\)$/,
  );
  equal(await apiCalls(gh.log), 13);
});

Deno.test("with the gh provider the tick has a floor (--gh-min-tick): --tick 1ms is raised, said once, and polls stay under one per floor", async () => {
  await using s = await scratchRepo(backlogOf([["GT-1"]]));
  await using m = marked();
  const gh = await fakeGhEnv(s.dir);
  const started = performance.now();
  const ran = await orchestrate(s, [
    "--pr-provider",
    "gh",
    "--tick",
    "1ms",
    "--gh-min-tick",
    "300ms",
    "--exit-grace",
    "1",
  ], { ...gh.env, ...m.env, CHUMP_DEMO_PLAN: "GT-1=sleep:1500:noop" });
  const elapsedMs = performance.now() - started;
  equal(ran.code, 3, ran.stderr);
  deepEqual(
    ran.stderr.split("\n").filter((l) => l.includes("under the gh provider's floor")),
    [
      "warning: --tick 1ms is under the gh provider's floor: ticking every 300ms (each tick is " +
      "one GitHub request; GitHub allows 5,000 an hour; see --gh-min-tick)",
    ],
  );
  const calls = await apiCalls(gh.log);
  assert(calls >= 1, "it polled");
  // Unfloored, a 1 ms tick would poll over a thousand times in this run.
  assert(calls <= elapsedMs / 300 + 2, `${calls} polls in ${elapsedMs.toFixed(0)} ms`);
});
