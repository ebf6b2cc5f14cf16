/**
 * The PostgreSQL claim table on a real server (a throwaway cluster of
 * Debian's postgresql, testkit/pg.ts): processes racing for the same gaps
 * each win a gap at most once between them; a lease that ended without
 * shipping frees its gap for exactly one new claim, a shipped one never; the
 * schema is created once and versioned.
 */
import { deepEqual, equal, match, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { openClaims, PG_SCHEMA_VERSION, redact } from "../lib/store/pg/claims.ts";
import { throwawayCluster } from "../testkit/pg.ts";
import { ROOT, scratch } from "./_helpers.ts";
import { waitForFile } from "./_e2e.ts";

/** Start `count` claimer processes, let them all go at once; the gaps each one won. */
async function race(url: string, count: number, gaps: number, tag: string): Promise<string[][]> {
  const port = new URL(url).port;
  await using barrier = await scratch("chump-pg-race-");
  const children = Array.from({ length: count }, (_, i) =>
    new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        `--config=${join(ROOT, "deno.json")}`,
        `--allow-net=127.0.0.1:${port}`,
        "--allow-env",
        "--allow-read",
        `--allow-write=${barrier.path}`,
        join(ROOT, "tests", "pg_claimer.ts"),
        url,
        `${tag}-host-${i}`,
        String(i + 1),
        String(gaps),
        barrier.path,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output());
  const hosts = Array.from({ length: count }, (_, i) => `${tag}-host-${i}`);
  for (const host of hosts) await waitForFile(join(barrier.path, `${host}.ready`));
  await Deno.writeTextFile(join(barrier.path, "go"), "\n");
  const done = await Promise.all(children);
  return done.map((d) => {
    const err = new TextDecoder().decode(d.stderr);
    equal(d.code, 0, err);
    return JSON.parse(new TextDecoder().decode(d.stdout));
  });
}

Deno.test("6 processes racing for 30 gaps: each gap is claimed exactly once; an ended lease is claimed again exactly once", async () => {
  await using pg = await throwawayCluster();
  const won = await race(pg.url, 6, 30, "a");
  const all = won.flat();
  equal(all.length, 30, `every gap once: ${JSON.stringify(won)}`);
  equal(new Set(all).size, 30);

  const claims = await openClaims(pg.url, "checker", "check-run");
  assert(claims.ok, claims.ok ? "" : claims.error);
  try {
    const live = await claims.value.liveGapIds();
    assert(live.ok);
    equal(live.value.size, 30);
    const again = await claims.value.claim("G-7");
    deepEqual(again, { ok: true, value: { won: false, why: "held" } }, "a live lease holds it");
    const fresh = await claims.value.claim("NEW-1");
    assert(fresh.ok && fresh.value.won);
    // The same run claiming again (its first answer lost with a connection): its own lease back.
    deepEqual(await claims.value.claim("NEW-1"), fresh);
    // End it (not shipped): the gap is free for exactly one new claim among racers.
    const ended = await claims.value.end(fresh.value.id, "killed");
    assert(ended.ok);
    const round = await race(pg.url, 4, 0, "b");
    deepEqual(round, [[], [], [], []]);
    // Three other runs at once (a run's own live lease is its own: a retried claim gets it back).
    const others = await Promise.all([1, 2, 3].map(async (i) => {
      const c = await openClaims(pg.url, `other-${i}`, `other-run-${i}`);
      assert(c.ok);
      return c.value;
    }));
    const second = await Promise.all(others.map((c) => c.claim("NEW-1")));
    await Promise.all(others.map((c) => c.close()));
    const won = second.flatMap((r) => r.ok && r.value.won ? [r.value.id] : []);
    equal(won.length, 1);
    // Shipped: done for the whole fleet, never claimed again.
    assert((await claims.value.end(won[0], "shipped")).ok);
    deepEqual(await claims.value.claim("NEW-1"), { ok: true, value: { won: false, why: "held" } });
    const held = await claims.value.liveGapIds();
    assert(held.ok && held.value.has("NEW-1"), "a shipped gap is held for the fleet");
    assert((await claims.value.heartbeat()).ok);
  } finally {
    await claims.value.close();
  }
});

Deno.test("the schema is versioned; an unreachable server is one line naming it, without its password", async () => {
  await using pg = await throwawayCluster();
  const claims = await openClaims(pg.url, "h", "r");
  assert(claims.ok);
  await claims.value.close();
  equal(PG_SCHEMA_VERSION, 3);
  const port = new URL(pg.url).port;
  const down = await openClaims(`postgres://chump:s3cret@127.0.0.1:1/postgres`, "h", "r");
  equal(down.ok, false);
  if (!down.ok) {
    match(
      down.error,
      /^PostgreSQL ledger \(postgres:\/\/chump:\*\*\*@127\.0\.0\.1:1\/postgres\): cannot open it: /,
    );
    equal(down.error.includes("s3cret"), false);
    equal(down.error.includes("\n"), false);
  }
  equal(
    redact(`postgres://chump@127.0.0.1:${port}/postgres`),
    `postgres://chump@127.0.0.1:${port}/postgres`,
  );
});
