/**
 * One gap to a running agent (lib/dispatch/dispatch.ts), on a real git repo
 * with a real agent process: what a failing step leaves behind.
 */
import { equal, match, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { dispatchGap } from "../lib/dispatch/dispatch.ts";
import { gitWorkspace } from "../lib/git/workspace.ts";
import { terminateGroup } from "../lib/process/signal.ts";
import { realSpawner } from "../lib/process/spawn.ts";
import { Processes } from "../lib/process/table.ts";
import { processLiveness } from "../lib/process/liveness.ts";
import { type Ledger, openLedger } from "../lib/store/ledger.ts";
import { fail } from "../lib/util/result.ts";
import { backlogOf, exists, gitOk, leaseRows, scratchRepo } from "./_e2e.ts";
import { sameProcessAlive } from "../testkit/process.ts";

Deno.test("a lease that cannot take its agent's pid ends the agent: no agent runs unaccounted for", async () => {
  await using s = await scratchRepo(backlogOf([["RUN-1"]]));
  const opened = openLedger(s.db, processLiveness());
  if (!opened.ok) throw new Error(opened.error);
  const real = opened.value;
  // The DB takes the lease, then refuses the pid (a disk that filled up in between).
  const ledger: Ledger = {
    path: real.path,
    begin: (l) => real.begin(l),
    running: () => Promise.resolve(fail("lease ledger: cannot record the agent's pid: disk full")),
    identify: (id, pid, identity) => real.identify(id, pid, identity),
    end: (id, outcome, notes) => real.end(id, outcome, notes),
    liveGapIds: () => real.liveGapIds(),
    orphans: (o) => real.orphans(o),
    adopt: (l) => real.adopt(l),
    list: (n) => real.list(n),
    generation: (id) => real.generation(id),
    heartbeat: (b) => real.heartbeat(b),
    notePr: (id, pr) => real.notePr(id, pr),
    noteCost: (id, cost) => real.noteCost(id, cost),
    spentByOthers: (since) => real.spentByOthers(since),
    heldBack: () => real.heldBack(),
    unpark: (gapId) => real.unpark(gapId),
    respawned: (id, s) => real.respawned(id, s),
    close: () => real.close(),
  };
  let spawned = 0;
  const processes = new Processes();
  const worktree = join(s.repo, ".claude", "worktrees", "run-1");
  const r = await dispatchGap({
    gap: { id: "RUN-1", effort: "s" },
    slug: "run-1",
    branch: "claude/run-1",
    worktree,
    startCommit: await gitOk(["rev-parse", "origin/main"], s.repo),
    baseRef: "origin/main",
    agent: { argv: ["sleep", "600"], label: "sleep" },
    detached: false,
  }, {
    workspace: gitWorkspace(s.repo),
    spawner: {
      spawn: (request) => {
        const started = realSpawner.spawn(request);
        if (started.ok) spawned = started.value.pid;
        return started;
      },
    },
    ledger,
    processes,
    terminate: (pgid, o) => terminateGroup(pgid, { ...o, processes }),
  });
  real.close();
  assert(!r.ok, "the dispatch failed");
  match(r.error, /cannot record the agent's pid: disk full; its agent \(PID \d+\) was ended/);
  assert(spawned > 0, "an agent was started");
  equal(await sameProcessAlive(spawned), false, "and it does not run on");
  const [lease] = leaseRows(s.db);
  equal(lease.state, "ended", "its lease ended");
  equal(lease.pid, null);
  equal(await exists(worktree), false, "its empty worktree removed");
});
