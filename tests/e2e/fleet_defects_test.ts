/**
 * What an operator hit with several hosts on one PostgreSQL ledger (a real
 * throwaway cluster, real orchestrators and agents): a host that waits for
 * a fleet slot keeps waiting while gaps are open.
 */
import { deepEqual, equal, ok as assert } from "node:assert/strict";
import { backlogOf, orchestrateInBackground, scratchRepo } from "../_e2e.ts";
import { dispatchedIn, machines, sorted } from "../_fleet.ts";
import { throwawayCluster } from "../../testkit/pg.ts";

Deno.test("a host that waited for a fleet slot and then found its gap held by another host goes on to the next gaps instead of quitting", async () => {
  await using pg = await throwawayCluster();
  const ids = Array.from({ length: 8 }, (_, i) => `FQ-${i + 1}`);
  await using s = await scratchRepo(backlogOf(ids.map((id) => [id])));
  const [a, b] = await machines(s, 2);
  const plan = [
    "FQ-1=sleep:1000:ship", // ends first: host a refills with the gap host b waits for
    "FQ-2=sleep:6000:ship",
    "FQ-3=sleep:6000:ship",
    ...ids.slice(3).map((id) => `${id}=sleep:200:ship`),
  ].join(",");
  const fleet = ["--ledger", pg.url, "--fleet-max", "2", "--max-parallel", "2"];
  // Host a: three dispatches, then no more (it leaves the rest to host b).
  const hostA = orchestrateInBackground(a, [...fleet, "--host-id", "a", "--max-total", "3"], {
    CHUMP_DEMO_PLAN: plan,
  });
  await hostA.waitFor(/^DISPATCHED: FQ-2 /m);
  // Host b finds the fleet full; its gap (FQ-3) goes to host a meanwhile; it must go on.
  const hostB = orchestrateInBackground(b, [...fleet, "--host-id", "b", "--tick", "2s"], {
    CHUMP_DEMO_PLAN: plan,
  });
  const [ranA, ranB] = await Promise.all([hostA.finished(), hostB.finished()]);
  equal(ranA.code, 0, ranA.stderr);
  equal(ranB.code, 0, ranB.stderr);
  assert(ranB.stdout.includes("FLEET-FULL: "), ranB.stdout);
  const byA = dispatchedIn(ranA.stdout);
  const byB = dispatchedIn(ranB.stdout);
  deepEqual(sorted(byA), ["FQ-1", "FQ-2", "FQ-3"]);
  deepEqual(sorted(byB), ids.slice(3), `host b did the rest:\n${ranB.stdout}\n${ranB.stderr}`);
});
