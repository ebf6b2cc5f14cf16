/**
 * Contention is not failure, end to end with real processes: a DB whose
 * write lock another process holds while a dispatch records its lease, and
 * two orchestrators started together on the same repo racing for one gap.
 */
import { deepEqual, doesNotMatch, equal, match } from "node:assert/strict";
import { openLedger } from "../../lib/store/ledger.ts";
import { processLiveness } from "../../lib/process/liveness.ts";
import { sleep } from "../../lib/util/sleep.ts";
import {
  backlogOf,
  leaseRows,
  linesStarting,
  orchestrateInBackground,
  reflectionRows,
  scratchRepo,
} from "../_e2e.ts";
import { blockedOnLock, CAN_SEE_WAITS, holdLock } from "../_lock.ts";

/** Create the DB and its tables, so that only the lease write has to wait on a held lock. */
function createDb(db: string): void {
  const ledger = openLedger(db, processLiveness());
  if (!ledger.ok) throw new Error(ledger.error);
  ledger.value.close();
}

Deno.test({
  name: "a DB write-locked for 4 s while a dispatch records its lease: the gap is still dispatched",
  ignore: !CAN_SEE_WAITS,
  fn: async () => {
    await using s = await scratchRepo(backlogOf([["BUSY-1"]]));
    createDb(s.db);
    const lock = await holdLock(s.db);
    try {
      const bg = orchestrateInBackground(s, []);
      await blockedOnLock(bg.child.pid);
      // The contention under test: longer than a dispatch used to tolerate (3 s).
      await sleep(4000);
      await lock.release();
      const ran = await bg.finished();
      const all = `${ran.stdout}\n${ran.stderr}`;
      doesNotMatch(ran.stdout, /DISPATCH-FAILED/, all);
      equal(ran.code, 0, all);
      match(ran.stdout, /^DISPATCHED: BUSY-1 /m);
      match(ran.stdout, /^OUTCOME: BUSY-1 shipped /m);
      deepEqual(leaseRows(s.db).map((l) => [l.gap_id, l.state, l.outcome]), [
        ["BUSY-1", "ended", "shipped"],
      ]);
    } finally {
      await lock.release();
    }
  },
});

Deno.test({
  name:
    "two orchestrators started together on a 2-gap backlog each ship a different gap; the lost race is no failure",
  ignore: !CAN_SEE_WAITS,
  fn: async () => {
    await using s = await scratchRepo(backlogOf([["RACE-1"], ["RACE-2"]]));
    createDb(s.db);
    // Both orchestrators pick RACE-1 and wait on the lock to lease it; once
    // it goes, one gets it and the other finds it taken: a real race, every time.
    const lock = await holdLock(s.db);
    try {
      const args = ["--max-parallel", "1", "--max-total", "1"];
      const runs = [orchestrateInBackground(s, args), orchestrateInBackground(s, args)];
      await Promise.all(runs.map((r) => blockedOnLock(r.child.pid)));
      await lock.release();
      const ran = await Promise.all(runs.map((r) => r.finished()));
      for (const r of ran) {
        const all = `${r.stdout}\n${r.stderr}`;
        doesNotMatch(r.stdout, /DISPATCH-FAILED|spawn_failed/, all);
        equal(r.code, 0, all);
        match(r.stdout, /spawn_failures=0/);
      }
      const shipped = ran.map((r) =>
        linesStarting(r.stdout, "OUTCOME: ").map((l) => l.split(" ").slice(1, 3).join(" "))
      );
      deepEqual(shipped.flat().sort(), ["RACE-1 shipped", "RACE-2 shipped"]);
      equal(shipped[0].length, 1, "each orchestrator shipped one gap");
      const notes = ran.flatMap((r) => linesStarting(r.stderr, "note: "));
      equal(notes.length, 1, ran.map((r) => r.stderr).join("\n"));
      match(notes[0], /^note: RACE-1 was just taken by another orchestrator \(lease \d+, /);
      equal(reflectionRows(s.db).size, 2);
      deepEqual(leaseRows(s.db).map((l) => l.state), ["ended", "ended"]);
    } finally {
      await lock.release();
    }
  },
});
