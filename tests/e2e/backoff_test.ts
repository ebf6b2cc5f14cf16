/**
 * Gaps that keep failing are not dispatched forever: each failure in a row
 * holds the gap back (`--retry-after`, doubling), `--park-after` failures
 * park it until `unpark`; on one host, and for a whole fleet on one
 * PostgreSQL ledger. Real git, real agents (the demo agent), real runs.
 *
 * @module
 */
import { deepEqual, equal, match } from "node:assert/strict";
import { backlogOf, linesStarting, orchestrate, scratchRepo } from "../_e2e.ts";
import { dispatchedIn, fleetRun, machines, sorted } from "../_fleet.ts";
import { runMain } from "../_helpers.ts";
import { throwawayCluster } from "../../testkit/pg.ts";
import postgres from "postgres";

Deno.test("on one host with --retry-after 0s --park-after 3: four runs dispatch a failing gap 1, 1, 1, 0 times; the third and fourth say PARKED; unpark lets the next run dispatch it", async () => {
  await using s = await scratchRepo(backlogOf([["PK-1"]]));
  const env = { CHUMP_DEMO_PLAN: "PK-1=fail" };
  const args = ["--retry-after", "0s", "--park-after", "3", "--no-live"];
  const runs = [];
  for (let i = 0; i < 4; i++) runs.push(await orchestrate(s, args, env));
  deepEqual(runs.map((r) => dispatchedIn(r.stdout).length), [1, 1, 1, 0]);
  deepEqual(runs.map((r) => r.code), [3, 3, 3, 0]);
  const parked = "PARKED: PK-1 after 3 failures: exit code 1 (no host dispatches it until " +
    "'unpark PK-1')";
  deepEqual(linesStarting(runs[2].stdout, "PARKED:"), [parked]);
  deepEqual(linesStarting(runs[3].stdout, "PARKED:"), [parked]);
  deepEqual(linesStarting(runs[1].stdout, "PARKED:"), []);

  // The dry run's --explain and status say why it waits.
  const explain = await runMain(["--repo-root", s.repo, "--explain"]);
  match(
    explain.stdout,
    /^NOT PICKED: PK-1 \(.*gaps\.yaml:2\): parked after 3 failures: exit code 1$/m,
  );
  const status = await runMain(["status", "--repo-root", s.repo]);
  match(status.stdout, /\n {2}PK-1: parked after 3 failures: exit code 1\n/);

  const unpark = await runMain(["unpark", "PK-1", "--repo-root", s.repo]);
  equal(unpark.code, 0, unpark.stderr);
  equal(
    unpark.stdout.trim(),
    "unparked PK-1: it had 3 failures in a row (last: exit code 1); the next run may dispatch it",
  );
  const again = await orchestrate(s, args, env);
  deepEqual(dispatchedIn(again.stdout), ["PK-1"]);
  const twice = await runMain(["unpark", "NOPE-1", "--repo-root", s.repo]);
  equal(twice.stdout.trim(), "NOPE-1 was neither parked nor backing off");
});

Deno.test("a failed gap backs off (default 30m): the next run does not dispatch it and says when it may; a rate limit does not count", async () => {
  await using s = await scratchRepo(backlogOf([["BO-1"], ["BO-RL-2"]]));
  const env = { CHUMP_DEMO_PLAN: "BO-1=fail,BO-RL-2=rate-limited" };
  const first = await orchestrate(s, ["--no-live"], env);
  equal(first.code, 3, first.stderr);
  match(
    first.stdout,
    /^BACKOFF: BO-1: retry after (29|30)m \(1 failure in a row: exit code 1\); no host dispatches it before then$/m,
  );
  const second = await orchestrate(s, ["--no-live"], env);
  // The rate-limited gap is dispatched again; the failed one is held back, and said so.
  deepEqual(dispatchedIn(second.stdout), ["BO-RL-2"]);
  match(second.stdout, /^BACKOFF: BO-1: retry after (29|30)m /m);
});

Deno.test("three orchestrators on one PostgreSQL ledger over 12 gaps whose agents all fail: exactly 12 dispatches, then every gap backs off for the whole fleet", async () => {
  await using pg = await throwawayCluster();
  const ids = Array.from({ length: 12 }, (_, i) => `FF-${i + 1}`);
  await using s = await scratchRepo(backlogOf(ids.map((id) => [id])));
  const hosts = await machines(s, 3);
  const plan = ids.map((id) => `${id}=fail`).join(",");
  const ran = await fleetRun(hosts, pg.url, ["--max-parallel", "3", "--no-live"], {
    CHUMP_DEMO_PLAN: plan,
  });
  const dispatched = ran.flatMap((r) => dispatchedIn(r.stdout));
  deepEqual(sorted(dispatched), sorted(ids), ran.map((r) => r.stdout + r.stderr).join("\n---\n"));
  // A second round of the whole fleet dispatches nothing: every gap backs off, fleet-wide.
  const again = await fleetRun(hosts, pg.url, ["--max-parallel", "3", "--no-live"], {
    CHUMP_DEMO_PLAN: plan,
  });
  deepEqual(again.flatMap((r) => dispatchedIn(r.stdout)), []);
  const sql = postgres(pg.url, { onnotice: () => {} });
  try {
    const rows = await sql`SELECT gap_id, failures, parked, retry_at > now() AS waits
                           FROM chump_pg_gap_backoff ORDER BY gap_id`;
    equal(rows.length, 12);
    for (const r of rows) deepEqual([r.failures, r.parked, r.waits], [1, false, true], r.gap_id);
  } finally {
    await sql.end();
  }
});
