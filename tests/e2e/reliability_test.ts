/**
 * Reliability, end to end with real processes, git and SQLite: interrupts,
 * durable leases across orchestrators, crash + reap, fault injection.
 */
import { deepEqual, equal, match, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import {
  backlogOf,
  exists,
  gitOk,
  leaseRows,
  letGo,
  linesStarting,
  marked,
  orchestrate,
  orchestrateInBackground,
  orchestrateInTerminal,
  pidsWithEnv,
  reflectionRows,
  type ScratchRepo,
  scratchRepo,
  waitForFile,
  waitUntilNoneMarked,
  watchRepo,
} from "../_e2e.ts";
import { runMain } from "../_helpers.ts";
import { sameProcessAlive, waitFor } from "../../testkit/process.ts";

// SIGINT as a terminal sends it (to the process group); SIGTERM to the task's
// process alone, which passes it on.
const TO_GROUP = { SIGINT: true, SIGTERM: false } as const;

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.test(`${signal} while watching ends every agent, writes one killed reflection each, exit 130`, async () => {
    const ids = ["INT-HANG-1", "INT-HANG-2", "INT-HANG-3", "INT-HANGCOMMIT-4"];
    await using s = await scratchRepo(backlogOf(ids.map((id) => [id])));
    await using m = await marked({ CHUMP_DEMO_PLAN: "INT-HANGCOMMIT-4=hang-commit" });
    const { env, mark } = m;
    const bg = orchestrateInBackground(s, ["--max-parallel", "4"], env);
    await Promise.all(ids.map((id) => m.ready(id))); // the committing agent has committed
    if (TO_GROUP[signal]) bg.signal(signal);
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
  await using m = await marked();
  const { env, mark } = m;
  // A 10-minute grace: the run only ends promptly if the second SIGINT cut it short.
  const bg = orchestrateInBackground(s, ["--kill-grace", "10m"], env);
  await m.ready("INT-STUBBORN-1"); // its SIGTERM handler is installed
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
  await using m = await marked();
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
  await using m = await marked({
    CHUMP_DEMO_PLAN: "C-HANGCOMMIT-5=hang-commit,C-HANGCOMMIT-6=hang-commit",
  });
  const { env, mark } = m;
  const bg = orchestrateInBackground(s, ["--max-parallel", "6"], env);
  await Promise.all(ids.map((id) => m.ready(id))); // the committing agents have committed
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

Deno.test("the next --no-dry-run --watch adopts a crashed run's agent first and says so", async () => {
  await using s = await scratchRepo(backlogOf([["P-HANG-1"], ["P-2"]]));
  await using m = await marked();
  const { env, mark } = m;
  // Dispatched with a 1s deadline: the lease keeps it, whatever the next run says.
  const bg = orchestrateInBackground(s, ["--max-parallel", "1", "--deadline", "s=1s"], env);
  await bg.waitFor(/^DISPATCHED: P-HANG-1 /);
  await m.ready("P-HANG-1");
  bg.signal("SIGKILL");
  await bg.finished();
  const next = await orchestrate(s, ["--max-parallel", "2", "--deadline", "s=1h"], {
    ...env,
    CHUMP_DEMO_PLAN: "P-HANG-1=ship,P-2=ship",
  });
  equal(next.code, 3, next.stderr);
  match(next.stdout, /^ADOPTED: P-HANG-1 as PID \d+, running \d+s, deadline 1s$/m);
  assert(next.stdout.indexOf("ADOPTED: ") < next.stdout.indexOf("DISPATCHED: P-2 "));
  equal(
    linesStarting(next.stdout, "DISPATCHED: P-HANG-1").length,
    0,
    "adopted, not dispatched again",
  );
  match(next.stdout, /^OUTCOME: P-HANG-1 killed .* -- soft-deadline exceeded \(1s x 2\)$/m);
  assert(next.stdout.includes("shipped=1  ci_failed=0  stalled=0  killed=1  spawn_failures=0"));
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

Deno.test("SIGHUP while watching leaves every agent running (exit 129); the next watch adopts them", async () => {
  const ids = ["HUPG-1", "HUPG-2"];
  await using s = await scratchRepo(backlogOf(ids.map((id) => [id])));
  await using m = await marked({ CHUMP_DEMO_PLAN: "HUPG-1=gate:fail,HUPG-2=gate:fail" });
  const bg = orchestrateInBackground(s, ["--max-parallel", "2"], m.env);
  const agents = await Promise.all(ids.map((id) => m.ready(id)));
  // As a shell passes on a hangup: to the job's whole process group.
  bg.signal("SIGHUP");
  const ran = await bg.finished();
  equal(ran.code, 129, ran.stderr);
  match(ran.stderr, /SIGHUP: the terminal is gone: .*leaving every agent running/);
  match(ran.stdout, /left 2 agent\(s\) running: the next 'watch'/);
  equal(reflectionRows(s.db).size, 0, "nothing was decided for them");
  deepEqual(leaseRows(s.db).map((l) => l.state), ["running", "running"]);
  for (const pid of agents) equal(await sameProcessAlive(pid), true, "the agent runs on");

  await letGo(m.env.CHUMP_DEMO_READY_DIR, ids);
  const watched = await watchRepo(s, [], m.env);
  equal(watched.code, 3, watched.stderr);
  const rows = reflectionRows(s.db);
  for (const id of ids) match(rows.get(id)!.directive, / notes=exit code 1$/, id);
  deepEqual(leaseRows(s.db).map((l) => l.state), ["ended", "ended"]);
  deepEqual(await pidsWithEnv(m.mark), []);
});

Deno.test("closing the terminal (a hangup) leaves the agents running for adoption; nothing is lost", async () => {
  const ids = ["HUP-1", "HUP-2"];
  await using s = await scratchRepo(backlogOf(ids.map((id) => [id])));
  await using m = await marked({ CHUMP_DEMO_PLAN: "HUP-1=gate:fail,HUP-2=gate:ship" });
  const term = orchestrateInTerminal(s, ["--max-parallel", "2"], m.env);
  const agents = await Promise.all(ids.map((id) => m.ready(id)));
  term.hangUp();
  await term.closed;
  // Nobody sees its exit code or output any more: wait until the orchestrator is gone.
  const orchestrator = leaseRows(s.db).length === 2 ? await orchestratorPid(s.db) : 0;
  await waitFor(async () => !await sameProcessAlive(orchestrator), { everyMs: 100 }).catch(
    () => {},
  );
  equal(await sameProcessAlive(orchestrator), false, "the orchestrator exited");
  for (const pid of agents) equal(await sameProcessAlive(pid), true, "its agents run on");

  await letGo(m.env.CHUMP_DEMO_READY_DIR, ids);
  const watched = await watchRepo(s, [], m.env);
  equal(watched.code, 3, watched.stderr);
  const rows = reflectionRows(s.db);
  match(rows.get("HUP-1")!.directive, / notes=exit code 1$/);
  match(rows.get("HUP-2")!.observed, /^outcome=shipped /);
  deepEqual(await waitUntilNoneMarked(m.mark), [], "no orchestrator or agent left running");
});

/** The orchestrator pid recorded in the (single-owner) ledger. */
async function orchestratorPid(db: string): Promise<number> {
  const { DatabaseSync } = await import("node:sqlite");
  const conn = new DatabaseSync(db, { readOnly: true });
  try {
    return Number(conn.prepare("SELECT orchestrator_pid AS p FROM chump_dispatch_leases").get()!.p);
  } finally {
    conn.close();
  }
}

Deno.test("what an agent leaves running in its process group does not outlive its outcome", async () => {
  await using s = await scratchRepo(backlogOf([["BG-BG-CHILD-FAIL-1"]]));
  await using m = await marked();
  const ran = await orchestrate(s, [], m.env);
  equal(ran.code, 3, ran.stderr);
  match(ran.stdout, /^OUTCOME: BG-BG-CHILD-FAIL-1 killed duration_s=\d+ pr=none -- exit code 1$/m);
  equal(await exists(join(s.repo, ".claude/worktrees/bg-bg-child-fail-1")), false);
  deepEqual(await pidsWithEnv(m.mark), [], "the agent's background sleep was ended");
  match(reflectionRows(s.db).get("BG-BG-CHILD-FAIL-1")!.directive, / notes=exit code 1$/);
});

Deno.test("reap ends what a dead agent left running in its process group", async () => {
  await using s = await scratchRepo(backlogOf([["RG-BG-CHILD-FAIL-1"]]));
  await using m = await marked();
  // No tick within the test: the agent exits, nobody decides its outcome, then the orchestrator dies.
  const bg = orchestrateInBackground(s, ["--tick", "1h"], m.env);
  const agent = await m.ready("RG-BG-CHILD-FAIL-1");
  await waitFor(async () => !await sameProcessAlive(agent)).catch(() => {});
  equal(await sameProcessAlive(agent), false, "the agent exited");
  bg.signal("SIGKILL");
  await bg.finished();
  assert((await pidsWithEnv(m.mark)).length > 0, "its background sleep still runs");
  // The group is led by the agent's waiter (the pid its lease records).
  const group = leaseRows(s.db)[0].pid;

  const reap = await runMain(["reap", "--repo-root", s.repo, "--kill-grace", "2s"]);
  equal(reap.code, 0, reap.stderr);
  match(
    reap.stdout,
    new RegExp(
      `^REAPED: RG-BG-CHILD-FAIL-1 \\(lease 1, orchestrator PID \\d+\\): agent already gone, ` +
        `what it left in process group ${group} ended; worktree removed$`,
      "m",
    ),
  );
  deepEqual(await pidsWithEnv(m.mark), []);
});

/** Commit `scripts/gap-claim.sh` with `body` to the scratch repo's main (worktrees start there). */
async function withClaimScript(s: ScratchRepo, body: string): Promise<void> {
  await Deno.mkdir(join(s.repo, "scripts"), { recursive: true });
  await Deno.writeTextFile(join(s.repo, "scripts", "gap-claim.sh"), body);
  await gitOk(["add", "scripts/gap-claim.sh"], s.repo);
  await gitOk(["commit", "--quiet", "-m", "claim script"], s.repo);
  await gitOk(["push", "--quiet", "origin", "main"], s.repo);
  await gitOk(["fetch", "--quiet", "origin"], s.repo);
}

Deno.test("a claim script that leaves a child behind does not hold up the dispatch; the child is ended", async () => {
  await using s = await scratchRepo(backlogOf([["CL-1"]]));
  await using m = await marked({ CHUMP_DEMO_PLAN: "CL-1=hang" });
  // The child keeps the claim's output pipes open for 5 minutes.
  await withClaimScript(
    s,
    'sleep 300 &\necho "$!" > "$CHUMP_DEMO_READY_DIR/claim-child.ready"\nexit 0\n',
  );
  const bg = orchestrateInBackground(s, [], m.env);
  const child = Number(await waitForFile(join(m.env.CHUMP_DEMO_READY_DIR, "claim-child.ready")));
  await m.ready("CL-1"); // dispatched and running, while the claim's child would still sleep
  equal(await sameProcessAlive(child), false, "the claim's background child was ended");
  bg.signal("SIGINT");
  equal((await bg.finished()).code, 130);
  deepEqual(await pidsWithEnv(m.mark), []);
});

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.test(`${signal} during a stuck claim script ends it at once: the dispatch fails, its lease ends, exit 130`, async () => {
    await using s = await scratchRepo(backlogOf([["CL-1"], ["CL-2"]]));
    await using m = await marked();
    await withClaimScript(
      s,
      'echo "$$" > "$CHUMP_DEMO_READY_DIR/claim-$1.ready"\nsleep 600\n',
    );
    const bg = orchestrateInBackground(s, ["--max-parallel", "2"], m.env);
    await m.ready("claim-CL-1");
    if (TO_GROUP[signal]) bg.signal(signal);
    else bg.child.kill(signal);
    const ran = await bg.finished();
    equal(ran.code, 130, `${ran.stdout}\n${ran.stderr}`);
    match(ran.stdout, /^DISPATCH-FAILED: CL-1: claim script stopped: the run was interrupted$/m);
    equal(linesStarting(ran.stdout, "DISPATCHED: ").length, 0, "nothing dispatched after the stop");
    deepEqual(leaseRows(s.db).map((l) => [l.gap_id, l.state]), [["CL-1", "ended"]]);
    equal(await exists(join(s.repo, ".claude/worktrees/cl-1")), false);
    deepEqual(await pidsWithEnv(m.mark), [], "the claim script and its sleep were ended");
  });
}

Deno.test("a process that left its agent's group (setsid) is found by its marks and ended at the outcome: ESCAPED", async () => {
  await using s = await scratchRepo(backlogOf([["ES-1"], ["ES-2"]]));
  await using m = await marked({ CHUMP_DEMO_PLAN: "ES-1=escape:fail,ES-2=fail" });
  const ran = await orchestrate(s, ["--kill-grace", "2s"], m.env);
  equal(ran.code, 3, ran.stderr);
  match(ran.stdout, /^ESCAPED: PID \d+ of ES-1 ended \(it had left its agent's process group\)$/m);
  equal(linesStarting(ran.stdout, "ESCAPED: ").length, 1, ran.stdout);
  match(ran.stdout, /^OUTCOME: ES-1 killed duration_s=\d+ pr=none -- exit code 1$/m);
  deepEqual(await pidsWithEnv(m.mark), [], "the escaped sleep was ended");
});

Deno.test("reap ends an escaped process of a dispatch that ended, and leaves alone one whose marks are not that dispatch's or that started after it ended", async () => {
  await using s = await scratchRepo(backlogOf([["ER-1"]]));
  await using m = await marked({ CHUMP_DEMO_PLAN: "ER-1=fail" });
  const ran = await orchestrate(s, [], m.env);
  equal(ran.code, 3, ran.stderr);
  const lease = leaseRows(s.db)[0];
  equal(lease.state, "ended");
  // As an older version would have left them: started during the dispatch (its end is moved
  // after them here), carrying its marks.
  const marks = { CHUMP_GAP_ID: "ER-1", CHUMP_WORKTREE: lease.worktree, ...m.env };
  const escaped = spawnSleep({ ...marks, CHUMP_LEASE_ID: String(lease.id) });
  const stranger = spawnSleep({ ...marks, CHUMP_LEASE_ID: String(lease.id + 1) });
  const conn = new DatabaseSync(s.db);
  conn.prepare("UPDATE chump_dispatch_leases SET updated_ms = ? WHERE id = ?").run(
    Date.now(),
    lease.id,
  );
  conn.close();
  // Same marks, but started well after the dispatch ended: another DB's live agent (lease ids
  // repeat across DBs), never this dispatch's.
  await new Promise((r) => setTimeout(r, 4500));
  const later = spawnSleep({ ...marks, CHUMP_LEASE_ID: String(lease.id) });
  try {
    const reap = await runMain(["reap", "--repo-root", s.repo, "--kill-grace", "2s"]);
    equal(reap.code, 0, reap.stderr);
    equal(
      reap.stdout,
      `ESCAPED: PID ${escaped.pid} of ER-1 ended (it had left its agent's process group)\n`,
    );
    deepEqual(
      (await pidsWithEnv(m.mark)).sort((a, b) => a - b),
      [stranger.pid, later.pid].sort((a, b) => a - b),
      "only the ended dispatch's process",
    );
  } finally {
    for (const p of [escaped, stranger, later]) {
      try {
        p.kill("SIGKILL");
      } catch {
        // ended
      }
      await p.status;
    }
  }
});

/** A `sleep` in a session of its own with `env`. */
function spawnSleep(env: Record<string, string>): Deno.ChildProcess {
  return new Deno.Command("sleep", {
    args: ["3600"],
    env,
    stdin: "null",
    stdout: "null",
    stderr: "null",
    detached: true,
  }).spawn();
}
