/**
 * Several orchestrators, one backlog, one PostgreSQL ledger: clones of one
 * origin stand for machines (each with its own worktrees and its own SQLite
 * DB), each runs the real CLI with `--ledger` and its own `--host-id`.
 * Every gap is dispatched exactly once across them, the fleet never runs
 * more agents than its caps, each dispatch has one reflection in both
 * stores; a killed host's gaps stay held while suspect, are taken over once
 * with `--take-over-after`, and the returning owner writes nothing; a
 * database stopped mid-run loses no reflection and dispatches nothing twice.
 */
import { deepEqual, equal, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import {
  backlogOf,
  linesStarting,
  marked,
  orchestrateInBackground,
  scratchRepo,
  startCli,
  waitUntilNoneMarked,
  watchArgs,
} from "../_e2e.ts";
import { runMain } from "../_helpers.ts";
import {
  dispatchedIn,
  fleetRun,
  ledgerRows,
  localReflections,
  machines,
  maxOverlap,
  sorted,
} from "../_fleet.ts";
import { GIT_ID } from "../../testkit/repo.ts";
import { throwawayCluster } from "../../testkit/pg.ts";
import { firstLine } from "../../testkit/browser.ts";
import { checkEvent } from "../../lib/watch/events.ts";

Deno.test("3 orchestrators x --max-parallel 4 over one PostgreSQL ledger and one 30-gap backlog: each gap dispatched once, at most 12 at a time, one reflection per dispatch in both stores", async () => {
  await using pg = await throwawayCluster();
  const ids = Array.from({ length: 30 }, (_, i) => `FL-${i + 1}`);
  await using s = await scratchRepo(backlogOf(ids.map((id) => [id])));
  const hosts = await machines(s, 3);
  const runs = await fleetRun(hosts, pg.url, ["--max-parallel", "4"]);
  const dispatched: string[] = [];
  for (const [i, ran] of runs.entries()) {
    equal(ran.code, 0, `host-${i}:\n${ran.stdout}\n${ran.stderr}`);
    const mine = dispatchedIn(ran.stdout);
    dispatched.push(...mine);
    // Each machine's own DB holds exactly the reflections of what it ran.
    deepEqual(sorted(localReflections(hosts[i].db)), sorted(mine), `host-${i}`);
  }
  deepEqual(sorted(dispatched), sorted(ids), "each gap once, on one host");
  const ledger = await ledgerRows(pg.url);
  deepEqual(sorted(ledger.reflections), sorted(ids), "one reflection per dispatch in the ledger");
  equal(ledger.leases.length, 30);
  assert(ledger.leases.every((l) => l.state === "ended" && l.outcome === "shipped"));
  const most = maxOverlap(ledger.leases);
  assert(most <= 12 && most >= 2, `at most 12 live at a time, saw ${most}`);

  // The readers see the whole fleet with --ledger, one machine without.
  const fleet = await runMain(
    ["reflections", "--repo-root", s.repo, "--ledger", pg.url, "--json", "--limit", "100"],
  );
  equal(fleet.code, 0, fleet.stderr);
  deepEqual(sorted(fleet.stdout.trim().split("\n").map((l) => JSON.parse(l).gapId)), sorted(ids));
  const local = await runMain(["reflections", "--repo-root", s.repo, "--json", "--limit", "100"]);
  equal(local.stdout.trim().split("\n").length, dispatchedIn(runs[0].stdout).length);
  const lessons = await runMain(["lessons", "--repo-root", s.repo, "--ledger", pg.url, "--json"]);
  equal(lessons.code, 0, lessons.stderr);
  const cells = JSON.parse(lessons.stdout) as { dispatches: number; shipped: number }[];
  equal(cells.reduce((n, c) => n + c.dispatches, 0), 30);
  equal(cells.reduce((n, c) => n + c.shipped, 0), 30);
  // The dashboard's outcomes and charts with --ledger: the fleet's.
  const server = startCli(["serve", "--repo-root", s.repo, "--port", "0", "--ledger", pg.url]);
  try {
    const at = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(await firstLine(server.stdout))?.[1];
    assert(at, "serve says where it listens");
    const status = await (await fetch(`${at}api/status`)).json();
    deepEqual(status.outcomes, { shipped: 30 });
  } finally {
    server.kill("SIGTERM");
    await server.status;
    await server.stdout.cancel().catch(() => {});
    await server.stderr.cancel().catch(() => {});
  }
});

Deno.test("--fleet-max 3 with 3 orchestrators x --max-parallel 4: never more than 3 live leases in the fleet, every gap once", async () => {
  await using pg = await throwawayCluster();
  const ids = Array.from({ length: 9 }, (_, i) => `FM-${i + 1}`);
  await using s = await scratchRepo(backlogOf(ids.map((id) => [id])));
  const hosts = await machines(s, 3);
  const runs = await fleetRun(hosts, pg.url, ["--max-parallel", "4", "--fleet-max", "3"], {
    CHUMP_DEMO_PLAN: ids.map((id) => `${id}=sleep:300:ship`).join(","),
  });
  for (const [i, ran] of runs.entries()) equal(ran.code, 0, `host-${i}:\n${ran.stderr}`);
  deepEqual(sorted(runs.flatMap((r) => dispatchedIn(r.stdout))), sorted(ids));
  const ledger = await ledgerRows(pg.url);
  const most = maxOverlap(ledger.leases);
  assert(most <= 3, `at most 3 live at a time, saw ${most}`);
  assert(
    runs.some((r) => r.stdout.includes("FLEET-FULL: the whole fleet is at --fleet-max")),
    "some host waited for a slot",
  );
});

Deno.test("a SIGKILLed host's gaps stay held while suspect; --take-over-after re-dispatches each exactly once; the returning owner ends its agents and writes no reflection", async () => {
  await using pg = await throwawayCluster();
  const ids = ["TK-1", "TK-2", "TK-3"];
  await using s = await scratchRepo(backlogOf(ids.map((id) => [id])));
  const [a, b, c] = await machines(s, 3);
  await using m = await marked();
  const gated = { ...m.env, CHUMP_DEMO_PLAN: ids.map((id) => `${id}=gate:ship`).join(",") };
  const ledger = ["--ledger", pg.url, "--lease-ttl", "1s"];
  const owner = orchestrateInBackground(
    a,
    [...ledger, "--host-id", "host-a", "--max-parallel", "3"],
    gated,
  );
  await owner.waitFor(/^DISPATCHED: /, 3);
  for (const id of ids) await m.ready(id);
  owner.signal("SIGKILL");
  await owner.finished();

  // Host b, without take-over: the gaps are held (suspect once host-a is silent for the TTL).
  const seen = new Set<string>();
  for (let i = 0; i < 60 && seen.size < 3; i++) {
    const ran = await runMain(watchArgs(b, [...ledger, "--host-id", "host-b"]), { env: GIT_ID });
    equal(ran.code, 0, ran.stderr);
    deepEqual(dispatchedIn(ran.stdout), [], "nothing of host-a's is dispatched while suspect");
    for (const l of linesStarting(ran.stdout, "SUSPECT: ")) seen.add(l.split(" ")[1]);
  }
  deepEqual(sorted([...seen]), ids, "every gap of host-a reported suspect");

  // Hosts b and c at once, with take-over after 1s of suspicion: each gap re-dispatched exactly
  // once (the first rounds may come before the second of suspicion is up).
  const taken: string[] = [];
  for (let i = 0; i < 60 && taken.length < 3; i++) {
    const round = await Promise.all([b, c].map((host, j) =>
      runMain(
        watchArgs(host, [...ledger, "--host-id", `host-${"bc"[j]}`, "--take-over-after", "1s"]),
        { env: { ...GIT_ID, ...m.env } },
      )
    ));
    for (const ran of round) {
      equal(ran.code, 0, `${ran.stdout}\n${ran.stderr}`);
      const mine = dispatchedIn(ran.stdout);
      taken.push(...mine);
      equal(linesStarting(ran.stdout, "TAKEOVER: ").length, mine.length, ran.stdout);
    }
  }
  deepEqual(sorted(taken), ids, "each taken over exactly once");

  // host-a comes back: it adopts its agents, finds its leases taken over, ends them, writes nothing.
  const eventsFile = join(s.dir, "back.events.jsonl");
  const back = await runMain(
    watchArgs(a, [...ledger, "--host-id", "host-a", "--events", eventsFile]),
    { env: { ...GIT_ID, ...m.env } },
  );
  const events = (await Deno.readTextFile(eventsFile)).trim().split("\n").map((l) => JSON.parse(l));
  for (const e of events) deepEqual(checkEvent(e), [], JSON.stringify(e));
  deepEqual(
    sorted(events.filter((e) => e.event === "lost").map((e) => e.gap_id)),
    ids,
    "a lost event per gap",
  );
  equal(back.code, 0, `${back.stdout}\n${back.stderr}`);
  equal(linesStarting(back.stdout, "ADOPTED: ").length, 3, back.stdout);
  deepEqual(
    sorted(linesStarting(back.stdout, "LOST: ").map((l) => l.split(" ")[1].replace(/:$/, ""))),
    ids,
    back.stdout,
  );
  deepEqual(dispatchedIn(back.stdout), []);
  // Its summary says what became of them, not that there was nothing to watch.
  equal(/nothing to watch/.test(back.stdout), false, back.stdout);
  deepEqual(
    sorted(
      back.stdout.split("\n").filter((l) => / lost -- taken over by host-[bc], /.test(l))
        .map((l) => l.trim().split(" ")[0]),
    ),
    ids,
    back.stdout,
  );
  deepEqual(localReflections(a.db), [], "the old owner wrote no reflection");
  deepEqual(await waitUntilNoneMarked(m.mark), [], "its agents were ended");
  const rows = await ledgerRows(pg.url);
  deepEqual(sorted(rows.reflections), ids, "one reflection per gap in the ledger: the taker's");
  // `status --ledger`: the fleet's leases, each taken-over one with its taker.
  const status = await runMain(["status", "--ledger", pg.url, "--json"]);
  equal(status.code, 0, status.stderr);
  const fleet = status.stdout.trim().split("\n").map((l) => JSON.parse(l));
  deepEqual(
    sorted(fleet.filter((l) => l.state === "taken_over").map((l) => `${l.gapId} ${l.host}`)),
    ids.map((id) => `${id} host-a`),
  );
  assert(fleet.every((l) => l.state !== "taken_over" || /^host-[bc]$/.test(l.takenBy)));
  // A lease that ended has no heartbeat to age.
  for (const l of fleet) {
    if (l.state === "ended" || l.state === "taken_over") equal(l.heartbeatAgeS, null, l.gapId);
  }
  deepEqual(sorted([...localReflections(b.db), ...localReflections(c.db)]), ids);
  for (const id of ids) {
    const leases = rows.leases.filter((l) => l.gap === id);
    deepEqual(leases.map((l) => [l.host === "host-a", l.state, l.generation]), [
      [true, "taken_over", 1],
      [false, "ended", 2],
    ]);
  }
});

Deno.test("reap --ledger: a crashed host's dispatch is reaped once, its shared lease ended with its reflection in both stores", async () => {
  await using pg = await throwawayCluster();
  await using s = await scratchRepo(backlogOf([["RP-1"]]));
  await using m = await marked({ CHUMP_DEMO_PLAN: "RP-1=gate:ship" });
  const ledger = ["--ledger", pg.url, "--host-id", "host-a"];
  const owner = orchestrateInBackground(s, ledger, m.env);
  await owner.waitFor(/^DISPATCHED: /);
  await m.ready("RP-1");
  owner.signal("SIGKILL");
  await owner.finished();
  const reaped = await runMain(
    ["reap", "--repo-root", s.repo, "--pr-provider", "git", "--kill-grace", "1s", ...ledger],
    { env: GIT_ID },
  );
  equal(reaped.code, 0, `${reaped.stdout}\n${reaped.stderr}`);
  deepEqual(await waitUntilNoneMarked(m.mark), [], "its agent was ended");
  deepEqual(localReflections(s.db), ["RP-1"]);
  const rows = await ledgerRows(pg.url);
  deepEqual(rows.reflections, ["RP-1"]);
  deepEqual(rows.leases.map((l) => [l.gap, l.state, l.outcome]), [["RP-1", "ended", "killed"]]);
});

Deno.test("the database stopped mid-run: claims wait, outcomes are spooled and replayed; no lost reflection, no double dispatch", async () => {
  await using pg = await throwawayCluster();
  const ids = Array.from({ length: 8 }, (_, i) => `DR-${i + 1}`);
  await using s = await scratchRepo(backlogOf(ids.map((id) => [id])));
  const hosts = await machines(s, 2);
  await using m = await marked({
    CHUMP_DEMO_PLAN: ids.map((id) => `${id}=sleep:1500:ship`).join(","),
  });
  const runs = hosts.map((h, i) =>
    orchestrateInBackground(h, ["--ledger", pg.url, "--host-id", `host-${i}`], m.env)
  );
  await Promise.all(runs.map((r) => r.waitFor(/^DISPATCHED: /, 2)));
  await pg.stop();
  // While it is down, an agent ends: its reflection waits in the spool.
  await Promise.race(
    runs.map((r) => r.waitFor(/for the shared ledger .*replayed when it answers/)),
  );
  await pg.start();
  const done = await Promise.all(runs.map((r) => r.finished()));
  for (const [i, ran] of done.entries()) {
    equal(ran.code, 0, `host-${i}:\n${ran.stdout}\n${ran.stderr}`);
  }
  const all = done.flatMap((r) => dispatchedIn(r.stdout));
  deepEqual(sorted(all), sorted(ids), "each gap dispatched once");
  assert(done.some((r) => /spooled reflection\(s\) replayed to the shared ledger/.test(r.stderr)));
  const rows = await ledgerRows(pg.url);
  deepEqual(sorted(rows.reflections), sorted(ids), "no reflection lost or doubled in the ledger");
  deepEqual(sorted(hosts.flatMap((h) => localReflections(h.db))), sorted(ids));
});

Deno.test("--ledger to a server that is not there: one line naming it (no password), exit 1, nothing dispatched", async () => {
  await using s = await scratchRepo(backlogOf([["FL-DOWN-1"]]));
  const ran = await runMain(
    watchArgs(s, ["--ledger", "postgres://chump:hunter22@127.0.0.1:1/chump", "--host-id", "h"]),
    { env: GIT_ID },
  );
  equal(ran.code, 1, ran.stderr);
  const lines = ran.stderr.trim().split("\n");
  equal(lines.length, 1, ran.stderr);
  assert(
    lines[0].startsWith(
      "chump-orchestrator: error: PostgreSQL ledger (postgres://chump:***@127.0.0.1:1/chump): cannot open it: ",
    ),
    lines[0],
  );
  equal(ran.stderr.includes("hunter22"), false);
  equal(ran.stdout.includes("DISPATCHED"), false);
});
