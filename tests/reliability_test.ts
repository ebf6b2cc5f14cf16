/**
 * Reliability, end to end with real processes, git and SQLite: interrupts,
 * durable leases across orchestrators, crash + reap, fault injection.
 */
import { deepEqual, equal, match, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import {
  backlogOf,
  exists,
  killMarked,
  leaseRows,
  linesStarting,
  orchestrate,
  orchestrateInBackground,
  pidsWithEnv,
  reflectionRows,
  scratchRepo,
} from "./_e2e.ts";
import { runMain } from "./_helpers.ts";
import { sameProcessAlive } from "../lib/process/table.ts";

/**
 * Agents of a test carry a mark in their environment, so leftovers can be
 * found (and asserted absent); whatever still carries it is killed on dispose.
 */
function marked(
  env: Record<string, string> = {},
): { env: Record<string, string>; mark: string } & AsyncDisposable {
  const id = crypto.randomUUID();
  const mark = `CHUMP_TEST_MARK=${id}`;
  return {
    env: { ...env, CHUMP_TEST_MARK: id },
    mark,
    [Symbol.asyncDispose]: () => killMarked(mark),
  };
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.test(`${signal} while watching ends every agent, writes one killed reflection each, exit 130`, async () => {
    const ids = ["INT-HANG-1", "INT-HANG-2", "INT-HANG-3", "INT-HANGCOMMIT-4"];
    await using s = await scratchRepo(backlogOf(ids.map((id) => [id])));
    await using m = marked({ CHUMP_DEMO_PLAN: "INT-HANGCOMMIT-4=hang-commit" });
    const { env, mark } = m;
    const bg = orchestrateInBackground(s, ["--max-parallel", "4"], env);
    await bg.waitFor(/^DISPATCHED: /, 4);
    await new Promise((r) => setTimeout(r, 800)); // let the committing agent commit
    // SIGINT as a terminal sends it (to the process group); SIGTERM to the
    // task's process alone, which passes it on.
    if (signal === "SIGINT") bg.signal(signal);
    else bg.child.kill(signal);
    const ran = await bg.finished();
    equal(ran.code, 130, ran.stderr);
    match(ran.stderr, new RegExp(`${signal}: stopping: no new dispatches`));
    const rows = reflectionRows(s.db);
    equal(rows.size, 4);
    for (const id of ids) {
      match(rows.get(id)!.observed, /^outcome=killed duration_s=\d+ pr=None$/);
      match(rows.get(id)!.directive, new RegExp(` notes=interrupted by ${signal}$`));
    }
    assert(ran.stdout.includes("shipped=0  ci_failed=0  stalled=0  killed=4  spawn_failures=0"));
    deepEqual(leaseRows(s.db).map((l) => l.state), ["ended", "ended", "ended", "ended"]);
    deepEqual(await pidsWithEnv(mark), [], "no orphan agent");
    // The worktree rule: the one with a commit is kept, the others removed.
    assert(await exists(join(s.repo, ".claude/worktrees/int-hangcommit-4")));
    equal(await exists(join(s.repo, ".claude/worktrees/int-hang-1")), false);
  });
}

Deno.test("a second SIGINT during the kill grace skips the rest of it; reflections are still written", async () => {
  await using s = await scratchRepo(backlogOf([["INT-STUBBORN-1"]]));
  await using m = marked();
  const { env, mark } = m;
  // A 10-minute grace: the run only ends promptly if the second SIGINT cut it short.
  const bg = orchestrateInBackground(s, ["--kill-grace", "10m"], env);
  await bg.waitFor(/^DISPATCHED: /);
  await new Promise((r) => setTimeout(r, 800)); // let the agent install its SIGTERM handler
  bg.signal("SIGINT");
  await bg.waitFor(/SIGINT: stopping/);
  bg.signal("SIGINT");
  const ran = await bg.finished();
  equal(ran.code, 130, ran.stderr);
  match(ran.stderr, /SIGINT again: skipping the kill grace/);
  match(reflectionRows(s.db).get("INT-STUBBORN-1")!.directive, / notes=interrupted by SIGINT$/);
  deepEqual(await pidsWithEnv(mark), []);
});

Deno.test("a second orchestrator on the same repo never dispatches a gap held by a live lease", async () => {
  await using s = await scratchRepo(backlogOf([["L-HANG-1"], ["L-2"]]));
  await using m = marked();
  const { env, mark } = m;
  const first = orchestrateInBackground(s, ["--max-parallel", "1"], env);
  await first.waitFor(/^DISPATCHED: L-HANG-1 /);
  const second = await orchestrate(s, ["--max-parallel", "2"], env);
  equal(second.code, 0, second.stderr);
  deepEqual(linesStarting(second.stdout, "DISPATCHED: ").map((l) => l.split(" ")[1]), ["L-2"]);
  first.signal("SIGINT");
  equal((await first.finished()).code, 130);
  deepEqual(await pidsWithEnv(mark), []);
});

Deno.test("chaos: SIGKILL the orchestrator with 6 live agents, reap, then a normal run dispatches again", async () => {
  const ids = ["C-HANG-1", "C-HANG-2", "C-HANG-3", "C-HANG-4", "C-HANGCOMMIT-5", "C-HANGCOMMIT-6"];
  await using s = await scratchRepo(backlogOf(ids.map((id) => [id])));
  await using m = marked({
    CHUMP_DEMO_PLAN: "C-HANGCOMMIT-5=hang-commit,C-HANGCOMMIT-6=hang-commit",
  });
  const { env, mark } = m;
  const bg = orchestrateInBackground(s, ["--max-parallel", "6"], env);
  await bg.waitFor(/^DISPATCHED: /, 6);
  await new Promise((r) => setTimeout(r, 800)); // the committing agents commit
  bg.signal("SIGKILL");
  await bg.finished();

  const leases = leaseRows(s.db);
  equal(leases.length, 6);
  for (const l of leases) {
    equal(l.state, "running");
    assert(await sameProcessAlive(l.pid!), `agent ${l.gap_id} survives its orchestrator`);
  }
  equal(reflectionRows(s.db).size, 0);

  const reap = await runMain(["reap", "--repo-root", s.repo, "--kill-grace", "2s"]);
  equal(reap.code, 0, reap.stderr);
  equal(linesStarting(reap.stdout, "REAPED: ").length, 6);
  match(reap.stdout, /reaped 6 dispatch\(es\) left behind by a crashed orchestrator/);

  // 0 agents left (by pid from the ledger, and by environment mark), 6 reflections, ledger clean.
  for (const l of leases) equal(await sameProcessAlive(l.pid!), false, `agent of ${l.gap_id}`);
  deepEqual(await pidsWithEnv(mark), []);
  const rows = reflectionRows(s.db);
  equal(rows.size, 6);
  for (const id of ids) {
    match(rows.get(id)!.observed, /^outcome=killed duration_s=\d+ pr=None$/);
    match(rows.get(id)!.directive, / notes=orchestrator lost$/);
  }
  deepEqual(leaseRows(s.db).map((l) => l.state), Array(6).fill("ended"));
  // The worktree rule: committed work kept, the rest removed.
  for (const id of ["c-hangcommit-5", "c-hangcommit-6"]) {
    assert(await exists(join(s.repo, ".claude/worktrees", id)), id);
  }
  for (const id of ["c-hang-1", "c-hang-2", "c-hang-3", "c-hang-4"]) {
    equal(await exists(join(s.repo, ".claude/worktrees", id)), false, id);
  }

  // Idempotent.
  const again = await runMain(["reap", "--repo-root", s.repo]);
  match(again.stdout, /nothing to reap/);
  equal(reflectionRows(s.db).size, 6);

  // A normal run dispatches again: the four without kept work ship; the two with
  // kept branches cannot reuse them (work is never overwritten).
  const next = await orchestrate(s, ["--max-parallel", "6"], {
    CHUMP_DEMO_PLAN: ids.map((id) => `${id}=ship`).join(","),
  });
  equal(next.code, 1, next.stdout);
  assert(
    next.stdout.includes("shipped=4  ci_failed=0  stalled=0  killed=0  spawn_failures=2"),
    next.stdout,
  );
  match(
    next.stdout,
    /DISPATCH-FAILED: C-HANGCOMMIT-5: git worktree add claude\/c-hangcommit-5: .*already exists/,
  );
});

Deno.test("the next --no-dry-run reaps a crashed run's leases first and says so", async () => {
  await using s = await scratchRepo(backlogOf([["P-HANG-1"], ["P-2"]]));
  await using m = marked();
  const { env, mark } = m;
  const bg = orchestrateInBackground(s, ["--max-parallel", "1"], env);
  await bg.waitFor(/^DISPATCHED: P-HANG-1 /);
  bg.signal("SIGKILL");
  await bg.finished();
  // The reaped gap is back in the pool: this run takes it again (and ships it).
  const next = await orchestrate(s, ["--max-parallel", "1"], {
    ...env,
    CHUMP_DEMO_PLAN: "P-HANG-1=ship,P-2=ship",
  });
  equal(next.code, 0, next.stderr);
  match(
    next.stdout,
    /^REAPED: P-HANG-1 \(lease 1, orchestrator PID \d+\): agent PID \d+ ended; worktree removed$/m,
  );
  match(next.stdout, /reaped 1 dispatch\(es\) left behind by a crashed orchestrator/);
  assert(next.stdout.indexOf("REAPED: ") < next.stdout.indexOf("DISPATCHED: "));
  assert(next.stdout.includes("shipped=2  ci_failed=0  stalled=0  killed=0  spawn_failures=0"));
  deepEqual(await pidsWithEnv(mark), []);
});

const FAULT_CASES: [string, string, number, RegExp][] = [
  ["spawn_fail", "spawn_failures=1", 1, /DISPATCH-FAILED: F-1: fault injected: spawn_fail/],
  ["exit_1", "killed=1", 3, /OUTCOME: F-1 killed duration_s=\d+ pr=none -- exit code 1/],
  [
    "exit_0_no_pr",
    "stalled=1",
    3,
    /OUTCOME: F-1 stalled duration_s=\d+ pr=none -- exited 0 without a PR/,
  ],
  [
    "monitor_timeout",
    "killed=1",
    3,
    /OUTCOME: F-1 killed duration_s=\d+ pr=none -- soft-deadline exceeded \(1s x 2\)/,
  ],
];

for (const [fault, count, code, line] of FAULT_CASES) {
  Deno.test(`CHUMP_FAULT_INJECT=${fault} drives its failure path end to end`, async () => {
    await using s = await scratchRepo(backlogOf([["F-1"]]));
    const ran = await orchestrate(s, [], { CHUMP_FAULT_INJECT: fault });
    equal(ran.code, code, `${ran.stdout}\n${ran.stderr}`);
    match(ran.stderr, new RegExp(`warning: fault injection: ${fault}`));
    match(ran.stdout, line);
    assert(ran.stdout.includes(count), ran.stdout);
    equal(reflectionRows(s.db).size, fault === "spawn_fail" ? 0 : 1);
  });
}

Deno.test("an unknown fault is a usage error", async () => {
  await using s = await scratchRepo(backlogOf([["F-1"]]));
  const ran = await orchestrate(s, [], { CHUMP_FAULT_INJECT: "meteor" });
  equal(ran.code, 2);
  match(ran.stderr, /CHUMP_FAULT_INJECT: unknown fault 'meteor'/);
});
