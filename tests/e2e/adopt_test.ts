/**
 * A restart loses no agent work (adoption): agents run under waiters that
 * outlive the orchestrator, and the next watching run (or `watch`) takes
 * them over, exactly once, with real git, real processes and real SQLite.
 */
import { deepEqual, equal, match, ok as assert } from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import {
  backlogOf,
  demoAgentCmd,
  leaseRows,
  linesStarting,
  marked,
  orchestrateInBackground,
  pidsWithEnv,
  reflectionRows,
  type ScratchRepo,
  scratchRepo,
  waitForFile,
} from "../_e2e.ts";
import { ROOT, runMain, runProcess, taskArgs } from "../_helpers.ts";
import { GIT_ID } from "../../testkit/repo.ts";
import { openLedger } from "../../lib/store/ledger.ts";
import { readTable } from "../../lib/process/table.ts";
import { processLiveness } from "../../lib/process/liveness.ts";
import type { Result } from "../../lib/util/result.ts";

/** `watch` on the scratch repo with the git provider (ticks of 1h: only the first one runs). */
function watch(s: ScratchRepo, args: string[] = [], env: Record<string, string> = {}) {
  return runMain(
    ["watch", "--repo-root", s.repo, "--pr-provider", "git", "--kill-grace", "1s", ...args],
    { env: { ...GIT_ID, ...env } },
  );
}

/** A `--no-dry-run` run without `--watch`: its agents are left running, detached. */
function dispatchDetached(s: ScratchRepo, args: string[], env: Record<string, string>) {
  return runMain(
    ["--repo-root", s.repo, "--no-dry-run", "--agent-cmd", demoAgentCmd(), ...args],
    { env: { ...GIT_ID, ...env } },
  );
}

/** Every reflection row's gap id, in insertion order (duplicates show). */
function reflectedGaps(db: string): string[] {
  const conn = new DatabaseSync(db, { readOnly: true });
  try {
    return conn.prepare("SELECT intended_goal AS g FROM chump_reflections ORDER BY id").all()
      .map((r) => String(r.g).replace(/^ship gap /, ""));
  } finally {
    conn.close();
  }
}

/** The status file of `gapId`'s dispatch (its waiter writes it when the agent ends). */
function statusFileOf(logs: string, gapId: string): string {
  const prompt = [...Deno.readDirSync(logs)].find((e) =>
    e.name.endsWith(`-${gapId.toLowerCase()}.prompt`)
  );
  if (!prompt) throw new Error(`no dispatch files for ${gapId} in ${logs}`);
  return join(logs, prompt.name.replace(/\.prompt$/, ".status"));
}

/** Let the gated demo agent of `gapId` act, and wait until its waiter recorded its end. */
async function release(readyDir: string, gapId: string, logs: string): Promise<void> {
  await Deno.writeTextFile(join(readyDir, `${gapId}.go`), "\n");
  await waitForFile(statusFileOf(logs, gapId));
}

Deno.test("adoption (a): SIGKILL the orchestrator; one agent ships, one fails, one runs on; the next --watch run adopts all three", async () => {
  const ids = ["AD-SHIP-1", "AD-FAIL-2", "AD-HANG-3"];
  await using s = await scratchRepo(backlogOf(ids.map((id) => [id])));
  await using m = await marked();
  const readyDir = m.env.CHUMP_DEMO_READY_DIR;
  const logs = join(s.repo, "sessions", "dispatch-logs");
  // Deadline s=2s (kill at 4s); ticks of 1h: this run never decides anything.
  const bg = orchestrateInBackground(
    s,
    ["--max-parallel", "3", "--tick", "1h", "--deadline", "s=2s"],
    {
      ...m.env,
      CHUMP_DEMO_PLAN: "AD-SHIP-1=gate:ship,AD-FAIL-2=gate:fail,AD-HANG-3=hang",
    },
  );
  await bg.waitFor(/^DISPATCHED: /, 3);
  const pids = new Map<string, number>();
  for (const id of ids) pids.set(id, await m.ready(id));
  const dispatchedAt = Date.now();
  bg.signal("SIGKILL");
  await bg.finished();

  // While nobody watches: one ships, one fails with an ERROR line, one runs on.
  await release(readyDir, "AD-SHIP-1", logs);
  await release(readyDir, "AD-FAIL-2", logs);
  const table = await readTable();
  assert(table.alive(pids.get("AD-HANG-3")!), "the hanging agent outlived its orchestrator");
  const status = await runMain(["status", "--repo-root", s.repo, "--json"]);
  deepEqual(
    status.stdout.trim().split("\n").map((l) => JSON.parse(l).watch),
    ["orphaned", "orphaned", "orphaned"],
  );
  // Past its 2x deadline counted from the original dispatch (the adopting run
  // has ticks of 1h: only its first tick, right after adopting, can kill it).
  while (Date.now() - dispatchedAt < 4_500) await new Promise((r) => setTimeout(r, 100));

  // Ticks of 1h: a kill after the first tick would hang here, so cap the run.
  const next = await runCapped(
    [
      "--repo-root",
      s.repo,
      "--no-dry-run",
      "--watch",
      "--pr-provider",
      "git",
      "--tick",
      "1h",
      "--kill-grace",
      "1s",
      "--deadline",
      "s=1h",
      "--agent-cmd",
      demoAgentCmd(),
      "--backlog",
      await emptyBacklog(s),
    ],
    { ...GIT_ID, ...m.env },
  );
  equal(next.code, 3, `${next.stdout}\n${next.stderr}`);
  const adopted = linesStarting(next.stdout, "ADOPTED: ");
  equal(adopted.length, 3, next.stdout);
  match(
    adopted.find((l) => l.includes("AD-HANG-3"))!,
    /^ADOPTED: AD-HANG-3 as PID \d+, running \d+s, deadline 2s$/,
  );
  match(adopted.find((l) => l.includes("AD-FAIL-2"))!, /its agent ended while unwatched/);

  const rows = reflectionRows(s.db);
  match(rows.get("AD-SHIP-1")!.observed, /^outcome=shipped /);
  match(rows.get("AD-FAIL-2")!.observed, /^outcome=killed /);
  match(rows.get("AD-FAIL-2")!.directive, / notes=exit code 1$/);
  match(
    rows.get("AD-FAIL-2")!.hypothesis,
    /^exit code 1\nbackend=.*\nERROR: demo failure for AD-FAIL-2$/,
  );
  match(rows.get("AD-HANG-3")!.observed, /^outcome=killed duration_s=(\d+) /);
  match(rows.get("AD-HANG-3")!.directive, / notes=soft-deadline exceeded \(2s x 2\)/);
  const duration = Number(/duration_s=(\d+)/.exec(rows.get("AD-HANG-3")!.observed)![1]);
  assert(duration >= 4, `duration counted from the original dispatch: ${duration}s`);
  deepEqual(reflectedGaps(s.db).sort(), [...ids].sort(), "one reflection each, no duplicates");
  const db = new DatabaseSync(s.db, { readOnly: true });
  try {
    const leases = db.prepare("SELECT state, generation FROM chump_dispatch_leases").all();
    deepEqual(leases.map((l) => [l.state, Number(l.generation)]), Array(3).fill(["ended", 1]));
  } finally {
    db.close();
  }
  deepEqual(await pidsWithEnv(m.mark), [], "no orphan");
});

Deno.test("adoption (b): a run without --watch leaves its agents detached; `watch` writes their reflections", async () => {
  const ids = ["DT-SHIP-1", "DT-FAIL-2"];
  await using s = await scratchRepo(backlogOf(ids.map((id) => [id])));
  await using m = await marked();
  const ran = await dispatchDetached(s, ["--max-parallel", "2"], {
    ...m.env,
    CHUMP_DEMO_PLAN: "DT-SHIP-1=ship,DT-FAIL-2=fail",
  });
  equal(ran.code, 0, ran.stderr);
  match(ran.stdout, /2 agent\(s\) started and left running unwatched/);
  // They finish while nobody watches: their waiters record how.
  const logs = join(s.repo, "sessions", "dispatch-logs");
  for (const id of ids) await waitForFile(statusFileOf(logs, id));
  equal(reflectionRows(s.db).size, 0, "no reflection yet: nobody watched");
  const status = async () =>
    (await runMain(["status", "--repo-root", s.repo, "--json"])).stdout.trim().split("\n")
      .map((l) => JSON.parse(l));
  const before = await status();
  deepEqual(before.map((r) => r.watch), ["unwatched", "unwatched"]);
  assert(before.every((r) => r.log.endsWith(".out.log")), "status names each agent's log");

  // Some time passes before anyone watches: it is not the agents' time.
  await new Promise((r) => setTimeout(r, 2500));
  const watched = await watch(s, ["--tick", "100ms"]);
  equal(watched.code, 3, `${watched.stdout}\n${watched.stderr}`);
  equal(linesStarting(watched.stdout, "ADOPTED: ").length, 2, watched.stdout);
  const rows = reflectionRows(s.db);
  for (const lease of leaseRows(s.db)) {
    // From the dispatch to when its waiter wrote the exit status.
    const ended = Deno.statSync(statusFileOf(logs, lease.gap_id)).mtime!.getTime();
    const durationS = Math.floor((ended - lease.started_ms) / 1000);
    match(rows.get(lease.gap_id)!.observed, new RegExp(`^outcome=\\w+ duration_s=${durationS} `));
  }
  match(rows.get("DT-SHIP-1")!.observed, /^outcome=shipped /);
  match(rows.get("DT-FAIL-2")!.directive, / notes=exit code 1$/);
  match(rows.get("DT-FAIL-2")!.hypothesis, /ERROR: demo failure for DT-FAIL-2$/);
  deepEqual(reflectedGaps(s.db).sort(), [...ids].sort());

  deepEqual((await status()).map((r) => r.watch), ["settled", "settled"]);
  // Nothing left: a second watch finds nothing.
  const again = await watch(s);
  equal(again.code, 0, again.stderr);
  match(again.stdout, /nothing to watch/);
  deepEqual(await pidsWithEnv(m.mark), []);
});

Deno.test("adoption (c): two `watch` runs racing for the same leases, 20 times, write one reflection per dispatch", async () => {
  await using s = await scratchRepo(backlogOf([]));
  await using m = await marked();
  const all: string[] = [];
  for (let round = 1; round <= 20; round++) {
    const ids = [1, 2].map((i) => `RC${round}-FAIL-${i}`);
    all.push(...ids);
    const backlog = join(s.dir, `round-${round}.yaml`);
    await Deno.writeTextFile(backlog, backlogOf(ids.map((id) => [id])));
    const ran = await dispatchDetached(s, ["--max-parallel", "2", "--backlog", backlog], m.env);
    equal(ran.code, 0, ran.stderr);
    const [a, b] = await Promise.all([
      watch(s, ["--tick", "100ms"]),
      watch(s, ["--tick", "100ms"]),
    ]);
    const adopted = [a, b].flatMap((r) => linesStarting(r.stdout, "ADOPTED: "));
    equal(adopted.length, 2, `round ${round}: each lease adopted once\n${a.stdout}\n${b.stdout}`);
    for (const r of [a, b]) assert(r.code === 0 || r.code === 3, `${r.stdout}\n${r.stderr}`);
  }
  deepEqual(reflectedGaps(s.db).sort(), all.sort(), "exactly one reflection per dispatch");
  deepEqual(await pidsWithEnv(m.mark), []);
});

Deno.test("adoption (c'): 20 in-process races for one lease: exactly one adopter wins each", async () => {
  await using s = await scratchRepo(backlogOf([]));
  const a = openLedger(s.db, processLiveness({ pid: 999_999_991, start: "1", host: "" }));
  const b = openLedger(s.db, processLiveness({ pid: 999_999_992, start: "1", host: "" }));
  assert(a.ok && b.ok);
  try {
    for (let i = 0; i < 20; i++) {
      const begun = await a.value.begin({
        gapId: `IR-${i}`,
        repoRoot: s.repo,
        branch: `claude/ir-${i}`,
        worktree: join(s.repo, "wt", `ir-${i}`),
        baseCommit: "",
        effort: "s",
        backend: "claude",
      });
      assert(begun.ok && begun.value.begun);
      const lease = await a.value.list(1);
      assert(lease.ok);
      const won: Result<number | undefined>[] = await Promise.all([
        a.value.adopt(lease.value[0]),
        b.value.adopt(lease.value[0]),
      ]);
      deepEqual(won.map((w) => w.ok), [true, true]);
      equal(won.filter((w) => w.ok && w.value !== undefined).length, 1, `race ${i}`);
    }
  } finally {
    a.value.close();
    b.value.close();
  }
});

Deno.test("adoption (d): a pid recycled by an unrelated process is never adopted or signalled", async () => {
  await using s = await scratchRepo(backlogOf([["RY-FAIL-1"]]));
  await using m = await marked();
  const ran = await dispatchDetached(s, [], m.env);
  equal(ran.code, 0, ran.stderr);
  const logs = join(s.repo, "sessions", "dispatch-logs");
  const statusFile = statusFileOf(logs, "RY-FAIL-1");
  await waitForFile(statusFile);
  // The agent is gone and its pid now belongs to someone else: an unrelated
  // process leading its own group, recorded with another identity.
  const stranger = new Deno.Command("sleep", {
    args: ["600"],
    detached: true,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await Deno.remove(statusFile);
    const table = await readTable();
    const real = table.identityOf(stranger.pid)!;
    const other = real.replace(/:(\d+)$/, (_, t) => `:${Number(t) + 1}`);
    const db = new DatabaseSync(s.db);
    db.prepare("UPDATE chump_dispatch_leases SET pid = ?, pid_start = ?").run(stranger.pid, other);
    db.close();

    const watched = await watch(s, ["--tick", "100ms"]);
    equal(watched.code, 3, `${watched.stdout}\n${watched.stderr}`);
    equal(watched.stdout.includes(`as PID ${stranger.pid}`), false, watched.stdout);
    match(watched.stdout, /^ADOPTED: RY-FAIL-1 \(lease 1\): its agent ended while unwatched/m);
    match(reflectionRows(s.db).get("RY-FAIL-1")!.directive, / notes=exit status not recorded/);
    assert((await readTable()).alive(stranger.pid, real), "never signalled");
  } finally {
    stranger.kill("SIGKILL");
    await stranger.status;
  }
});

/** `runMain`, killed after 120 s (a test fails instead of hanging). */
function runCapped(args: string[], env: Record<string, string>) {
  return runProcess("timeout", [
    "-s",
    "KILL",
    "120",
    Deno.execPath(),
    ...taskArgs("dispatch"),
    ...args,
  ], {
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
  });
}

/** An empty backlog file: the adopting run dispatches nothing new. */
async function emptyBacklog(s: ScratchRepo): Promise<string> {
  const path = join(s.dir, "empty.yaml");
  await Deno.writeTextFile(path, "gaps: []\n");
  return path;
}
