/**
 * Several orchestrators, one backlog, one PostgreSQL ledger: three clones of
 * one origin stand for three machines (each with its own worktrees and its
 * own SQLite DB), each runs the real CLI with `--ledger` and its own
 * `--host-id`; every gap is dispatched exactly once across them.
 */
import { deepEqual, equal, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { backlogOf, reflectionRows, scratchRepo, watchArgs } from "./_e2e.ts";
import { runMain } from "./_helpers.ts";
import { GIT_ID, gitOk } from "../testkit/repo.ts";
import { throwawayCluster } from "../testkit/pg.ts";

Deno.test("3 orchestrators (3 host ids) over one PostgreSQL ledger and one 12-gap backlog: every gap dispatched exactly once", async () => {
  await using pg = await throwawayCluster();
  const ids = Array.from({ length: 12 }, (_, i): [string] => [`FL-${i + 1}`]);
  await using s = await scratchRepo(backlogOf(ids));
  const machines = [s.repo];
  for (const name of ["b", "c"]) {
    const clone = join(s.dir, `machine-${name}`);
    await gitOk(["clone", "--quiet", s.origin, clone], s.dir);
    machines.push(clone);
  }
  const runs = await Promise.all(machines.map((repo, i) =>
    runMain(
      watchArgs({ ...s, repo }, [
        "--ledger",
        pg.url,
        "--host-id",
        `host-${i}`,
        "--max-parallel",
        "2",
      ]),
      { env: GIT_ID },
    )
  ));
  const dispatched: string[] = [];
  for (const [i, ran] of runs.entries()) {
    equal(ran.code, 0, `host-${i}:\n${ran.stdout}\n${ran.stderr}`);
    for (const m of ran.stdout.matchAll(/^DISPATCHED: (\S+) /gm)) dispatched.push(m[1]);
  }
  deepEqual(
    [...dispatched].sort(),
    ids.flat().sort(),
    `each gap once, on one host: ${runs.map((r) => r.stdout).join("\n")}`,
  );
  // Each machine's own DB holds the reflections of what it ran: 12 in all.
  const rows = machines.map((repo) =>
    reflectionRows(join(repo, "sessions", "chump_memory.db")).size
  );
  equal(rows.reduce((a, b) => a + b, 0), 12);
  assert(
    runs.some((r) => /held by another host's orchestrator|DISPATCHED/.test(r.stdout + r.stderr)),
  );
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
