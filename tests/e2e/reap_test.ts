/**
 * `reap` after a crashed orchestrator, end to end: the PR state of every
 * reaped branch is asked once, so work that shipped (or failed CI) while
 * nobody watched is recorded as such, and a worktree deleted meanwhile is
 * reported as gone, not "kept".
 */
import { deepEqual, equal, match } from "node:assert/strict";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  backlogOf,
  demoAgentCmd,
  exists,
  gitOk,
  killMarked,
  leaseRows,
  letGo,
  linesStarting,
  marked,
  orchestrateInBackground,
  pidsWithEnv,
  reflectionCount,
  reflectionRows,
  scratchRepo,
} from "../_e2e.ts";
import { runMain } from "../_helpers.ts";
import { GIT_ID } from "../../testkit/repo.ts";
import { runProcess, sameProcessAlive, waitFor } from "../../testkit/process.ts";

const FAKE_GH_DIR = fileURLToPath(new URL("../fake_gh", import.meta.url));

/** This test's fake `gh` processes still running (by their command and their log's path). */
async function ghInFlight(log: string): Promise<number[]> {
  const gh = (await runProcess("pgrep", ["-f", join(FAKE_GH_DIR, "gh")])).stdout.split("\n")
    .filter((l) => l !== "").map(Number);
  const mine = new Set(await pidsWithEnv(`FAKE_GH_LOG=${log}`));
  return gh.filter((pid) => mine.has(pid));
}

Deno.test("reap records a PR merged or closed while the orchestrator was down, and a worktree already gone", async () => {
  const ids = ["RP-MERGED-1", "RP-CLOSED-2", "RP-GONE-3", "RP-OPEN-4"];
  await using s = await scratchRepo(backlogOf(ids.map((id) => [id])));
  await using m = await marked();
  const mark = m.mark;
  const state = join(s.dir, "gh-state.json");
  const log = join(s.dir, "gh-log.jsonl");
  await Deno.writeTextFile(state, "{}");
  const ghEnv = {
    PATH: [FAKE_GH_DIR, dirname(Deno.execPath()), Deno.env.get("PATH") ?? ""].join(delimiter),
    FAKE_GH_STATE: state,
    FAKE_GH_LOG: log,
  };
  const bg = orchestrateInBackground(s, ["--pr-provider", "gh", "--max-parallel", "4"], {
    ...ghEnv,
    ...m.env,
    CHUMP_DEMO_PLAN: ids.map((id) => `${id}=hang`).join(","),
  });
  await bg.waitFor(/^DISPATCHED: /, 4);
  // Every agent really runs (in its worktree) before the orchestrator dies.
  for (const id of ids) await m.ready(id);
  bg.signal("SIGKILL");
  await bg.finished();

  // While nobody watched: one PR merged, one closed, one opened; one worktree deleted by hand.
  const now = new Date().toISOString();
  const pr = (number: number, prState: string) => [{
    number,
    state: prState,
    createdAt: now,
    updatedAt: now,
  }];
  await Deno.writeTextFile(
    state,
    JSON.stringify({
      "claude/rp-merged-1": pr(12, "MERGED"),
      "claude/rp-closed-2": pr(13, "CLOSED"),
      "claude/rp-open-4": pr(14, "OPEN"),
    }),
  );
  const gone = join(s.repo, ".claude", "worktrees", "rp-gone-3");
  await Deno.remove(gone, { recursive: true });
  // A poll in flight when the orchestrator died runs on (helpers have groups of their own): let
  // it write its line before the log is emptied, so the log holds the reap's calls alone.
  await waitFor(async () => (await ghInFlight(log)).length === 0, {
    timeoutMs: 10_000,
    what: "the polls in flight to end",
  });
  await Deno.writeTextFile(log, "");

  const reap = await runMain(
    ["reap", "--repo-root", s.repo, "--pr-provider", "gh", "--kill-grace", "1s"],
    { env: ghEnv },
  );
  equal(reap.code, 0, `${reap.stdout}\n${reap.stderr}`);
  const lines = new Map(
    linesStarting(reap.stdout, "REAPED: ").map((l) => [l.split(" ")[1], l.replace(/^.*\): /, "")]),
  );
  match(lines.get("RP-MERGED-1")!, /^agent PID \d+ ended; shipped \(PR #12\); worktree removed$/);
  match(lines.get("RP-CLOSED-2")!, /^agent PID \d+ ended; ci_failed \(PR #13\); worktree removed$/);
  match(lines.get("RP-GONE-3")!, /^agent PID \d+ ended; worktree already gone$/);
  match(lines.get("RP-OPEN-4")!, /^agent PID \d+ ended; worktree removed$/);

  const rows = reflectionRows(s.db);
  match(rows.get("RP-MERGED-1")!.observed, /^outcome=shipped duration_s=\d+ pr=Some\(12\)$/);
  equal(rows.get("RP-MERGED-1")!.class, "success");
  match(rows.get("RP-CLOSED-2")!.observed, /^outcome=ci_failed duration_s=\d+ pr=Some\(13\)$/);
  match(rows.get("RP-CLOSED-2")!.directive, / notes=PR #13 closed without merging$/);
  match(rows.get("RP-GONE-3")!.observed, /^outcome=killed duration_s=\d+ pr=None$/);
  match(rows.get("RP-GONE-3")!.directive, / notes=orchestrator lost$/);
  match(rows.get("RP-OPEN-4")!.observed, /^outcome=killed duration_s=\d+ pr=Some\(14\)$/);
  match(rows.get("RP-OPEN-4")!.directive, / notes=orchestrator lost \(PR #14 still open\)$/);
  deepEqual(leaseRows(s.db).map((l) => l.state), Array(4).fill("ended"));

  // ONE provider call for all four branches.
  const calls = (await Deno.readTextFile(log)).trim().split("\n").map((l) => JSON.parse(l));
  equal(calls.length, 1);
  equal([...calls[0][7].matchAll(/headRefName: "claude\/rp-/g)].length, 4);
  // The gone worktree's registration and empty branch are cleaned up; the shipped branch stays.
  equal(await exists(gone), false);
  equal(
    (await gitOk(["worktree", "list", "--porcelain"], s.repo)).includes("rp-gone-3"),
    false,
  );
  deepEqual(
    (await gitOk(["branch", "--list", "claude/*", "--format=%(refname:short)"], s.repo)).split(
      "\n",
    ),
    ["claude/rp-merged-1"],
  );
  deepEqual(await pidsWithEnv(mark), []);
});

Deno.test("reap with a failing PR provider warns and still reaps everything as killed", async () => {
  await using s = await scratchRepo(backlogOf([["RF-HANG-1"]]));
  const mark = `CHUMP_TEST_MARK=${crypto.randomUUID()}`;
  await using _cleanup = { [Symbol.asyncDispose]: () => killMarked(mark) };
  const bg = orchestrateInBackground(s, [], { CHUMP_TEST_MARK: mark.split("=")[1] });
  await bg.waitFor(/^DISPATCHED: /);
  bg.signal("SIGKILL");
  await bg.finished();
  const reap = await runMain(["reap", "--repo-root", s.repo, "--pr-provider", "gh"], {
    env: {
      PATH: [FAKE_GH_DIR, dirname(Deno.execPath()), Deno.env.get("PATH") ?? ""].join(delimiter),
      FAKE_GH_FAIL: "HTTP 401: Bad credentials",
    },
  });
  equal(reap.code, 0, reap.stderr);
  match(
    reap.stderr,
    /warning: PR provider gh failed: gh: exited 1: HTTP 401: Bad credentials; reaped dispatches are recorded without their PR state/,
  );
  match(
    reflectionRows(s.db).get("RF-HANG-1")!.directive,
    / outcome=killed .* notes=orchestrator lost$/,
  );
  deepEqual(await pidsWithEnv(mark), []);
});

Deno.test("reap ends the agents a run without --watch left (their orchestrator exited), each with its reflection", async () => {
  await using s = await scratchRepo(backlogOf([["UW-1"], ["UW-2"]]));
  await using m = await marked({ CHUMP_DEMO_PLAN: "UW-1=hang,UW-2=hang" });
  const run = await runMain(
    [
      "--repo-root",
      s.repo,
      "--no-dry-run",
      "--max-parallel",
      "2",
      "--pr-provider",
      "git",
      "--agent-cmd",
      demoAgentCmd(),
    ],
    { env: { ...GIT_ID, ...m.env } },
  );
  equal(run.code, 0, run.stderr);
  for (const id of ["UW-1", "UW-2"]) await m.ready(id);
  deepEqual(leaseRows(s.db).map((l) => l.state), ["detached", "detached"]);
  const reap = await runMain([
    "reap",
    "--repo-root",
    s.repo,
    "--pr-provider",
    "git",
    "--kill-grace",
    "1s",
  ]);
  equal(reap.code, 0, `${reap.stdout}\n${reap.stderr}`);
  equal(linesStarting(reap.stdout, "REAPED: ").length, 2, reap.stdout);
  deepEqual(await pidsWithEnv(m.mark), [], "no agent left running");
  deepEqual(leaseRows(s.db).map((l) => l.state), ["ended", "ended"]);
  for (const id of ["UW-1", "UW-2"]) {
    match(reflectionRows(s.db).get(id)!.directive, / outcome=killed .* notes=orchestrator lost$/);
  }
});

Deno.test("stop GAP ends one agent of a watching run (and what left its group): killed, 'stopped by the operator', one reflection; the run goes on with the others", async () => {
  await using s = await scratchRepo(backlogOf([["SP-1"], ["SP-2"]]));
  // SP-1's agent starts a process in a session of its own (out of its group) first.
  await using m = await marked({ CHUMP_DEMO_PLAN: "SP-1=escape:hang,SP-2=gate:ship" });
  const watcher = orchestrateInBackground(s, ["--max-parallel", "2"], m.env);
  await watcher.waitFor(/^DISPATCHED: /, 2);
  const agent = await m.ready("SP-1");
  await m.ready("SP-2");
  const stop = await runMain(["stop", "SP-1", "--repo-root", s.repo, "--kill-grace", "1s"]);
  equal(stop.code, 0, `${stop.stdout}\n${stop.stderr}`);
  match(stop.stdout, /^STOPPED: SP-1 \(lease \d+\): agent PID \d+ ended; worktree removed$/m);
  match(stop.stdout, /^ESCAPED: PID \d+ of SP-1 ended \(it had left its agent's process group\)$/m);
  equal(await sameProcessAlive(agent), false, "its agent is gone");
  await letGo(m.env.CHUMP_DEMO_READY_DIR, ["SP-2"]);
  const ran = await watcher.finished();
  match(ran.stdout, /^OUTCOME: SP-2 shipped /m, "the run went on with the other");
  // The watching run neither records nor reports an outcome of its own for SP-1: stop does.
  equal(/^OUTCOME: SP-1 /m.test(ran.stdout), false, ran.stdout);
  match(ran.stderr, /^note: SP-1 \(lease \d+\) was stopped by the operator \('stop'\), /m);
  match(
    ran.stdout,
    /^ {2}SP-1 lost -- taken over by the operator's stop, which records its outcome$/m,
  );
  const rows = reflectionRows(s.db);
  match(rows.get("SP-1")!.directive, / outcome=killed .* notes=stopped by the operator$/);
  equal(
    reflectionCount(s.db, "SP-1"),
    1,
    "one reflection: the watching run does not write a second",
  );
  const again = await runMain(["stop", "SP-1", "--repo-root", s.repo]);
  equal(again.code, 1);
  match(again.stderr, /has ended already \(killed\): nothing to stop/);
});
