/**
 * Never lose a reflection, end to end: a DB locked by another writer for
 * 10 s, a DB (and its directory) that cannot be written, a full disk. In
 * each case the row is in the DB or in a spool, the run goes on, and the
 * next run imports the spool and ends the lease with it (no duplicate on a reap).
 */
import { deepEqual, equal, match, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import {
  backlogOf,
  leaseRows,
  linesStarting,
  orchestrate,
  orchestrateInBackground,
  reflectionRows,
  scratchRepo,
} from "../_e2e.ts";

/** Lines of a spool file (0 when it does not exist). */
async function spooled(path: string): Promise<string[]> {
  try {
    return (await Deno.readTextFile(path)).split("\n").filter((l) => l.trim() !== "");
  } catch {
    return [];
  }
}

/** The fallback spool files in `dir` (named after the DB, in the temp dir). */
function fallbackSpools(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name)
    .filter((n) => /^chump-orchestrator-spool-[0-9a-f]+\.jsonl$/.test(n)).map((n) => join(dir, n));
}

/** Run a command, true when it succeeded. */
async function tryRun(cmd: string, args: string[]): Promise<boolean> {
  try {
    return (await new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).output()).success;
  } catch {
    return false;
  }
}

Deno.test("a DB locked by another writer for 10 s: the row is spooled, the run goes on, the next run imports it", async () => {
  await using s = await scratchRepo(backlogOf([["LOCK-1"]]));
  const bg = orchestrateInBackground(s, [], { CHUMP_DEMO_PLAN: "LOCK-1=sleep:1000:fail" });
  await bg.waitFor(/^DISPATCHED: LOCK-1 /);
  // Another process holds an exclusive lock for 10 s, from before the agent ends.
  const locker = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { DatabaseSync } from "node:sqlite";
       const db = new DatabaseSync(${JSON.stringify(s.db)});
       db.exec("BEGIN EXCLUSIVE");
       console.log("locked");
       await new Promise((r) => setTimeout(r, 10_000));
       db.exec("COMMIT");`,
    ],
    stdout: "piped",
  }).spawn();
  const reader = locker.stdout.pipeThrough(new TextDecoderStream()).getReader();
  equal((await reader.read()).value?.trim(), "locked");
  const ran = await bg.finished();
  equal(ran.code, 3, ran.stderr);
  match(ran.stdout, /OUTCOME: LOCK-1 killed duration_s=\d+ pr=none -- exit code 1/);
  match(ran.stderr, /warning: reflection for LOCK-1 spooled to .*chump_memory\.db\.spool\.jsonl/);
  await reader.cancel();
  await locker.status;

  // The row is in the spool, not lost; its lease waits for it (they are recorded together).
  const spool = `${s.db}.spool.jsonl`;
  equal((await spooled(spool)).length, 1);
  equal(reflectionRows(s.db).size, 0);
  equal(leaseRows(s.db)[0].state, "running");

  const empty = join(s.dir, "empty.yaml");
  await Deno.writeTextFile(empty, "gaps: []\n");
  const next = await orchestrate(s, ["--backlog", empty]);
  equal(next.code, 0, next.stderr);
  match(next.stderr, /imported 1 spooled reflection\(s\)/);
  match(next.stdout, /nothing to dispatch/);
  match(reflectionRows(s.db).get("LOCK-1")!.directive, / outcome=killed .* notes=exit code 1$/);
  equal((await spooled(spool)).length, 0);
  deepEqual(leaseRows(s.db).map((l) => [l.state, l.outcome]), [["ended", "killed"]]);
  equal(linesStarting(next.stdout, "REAPED: ").length, 0, "the spooled outcome ended the lease");
});

const CAN_CHATTR = Deno.build.os === "linux" && Deno.uid() === 0 &&
  await (async () => {
    const f = await Deno.makeTempFile();
    const ok = await tryRun("chattr", ["+i", f]);
    if (ok) await tryRun("chattr", ["-i", f]);
    await Deno.remove(f);
    return ok;
  })();

Deno.test({
  name:
    "a DB and directory that cannot be written: the row goes to the fallback spool, then into the DB",
  ignore: !CAN_CHATTR, // needs root and chattr (chmod does not stop root)
  fn: async () => {
    await using s = await scratchRepo(backlogOf([["RO-1"]]));
    const tmp = join(s.dir, "tmp");
    await Deno.mkdir(tmp);
    const bg = orchestrateInBackground(s, [], {
      CHUMP_DEMO_PLAN: "RO-1=sleep:1500:fail",
      TMPDIR: tmp,
    });
    await bg.waitFor(/^DISPATCHED: RO-1 /);
    // The DB, its WAL and their directory become unwritable (not the -shm
    // index: SQLite maps it into memory, and freezing a mapped file is not a
    // read-only disk but a SIGBUS).
    const sessions = join(s.repo, "sessions");
    const frozen = [sessions, s.db, `${s.db}-wal`];
    try {
      for (const f of frozen) assert(await tryRun("chattr", ["+i", f]), `chattr +i ${f}`);
      const ran = await bg.finished();
      equal(ran.code, 3, `${ran.code}\n${ran.stdout}\n${ran.stderr}`);
      match(ran.stdout, /OUTCOME: RO-1 killed duration_s=\d+ pr=none -- exit code 1/);
    } finally {
      for (const f of frozen) await tryRun("chattr", ["-i", f]);
    }
    const [fallback, ...more] = fallbackSpools(tmp);
    equal(more.length, 0);
    const rows = await spooled(fallback);
    equal(rows.length, 1, `fallback spool ${fallback}`);
    equal(JSON.parse(rows[0]).gapId, "RO-1");

    const empty = join(s.dir, "empty.yaml");
    await Deno.writeTextFile(empty, "gaps: []\n");
    const next = await orchestrate(s, ["--backlog", empty], { TMPDIR: tmp });
    equal(next.code, 0, next.stderr);
    match(next.stderr, /imported 1 spooled reflection\(s\)/);
    equal(
      reflectionRows(s.db).size,
      1,
      "exactly one row: the spooled outcome ended the lease, no reap",
    );
    equal(leaseRows(s.db)[0].state, "ended");
  },
});

const CAN_MOUNT = Deno.build.os === "linux" && Deno.uid() === 0 &&
  await (async () => {
    const d = await Deno.makeTempDir();
    const ok = await tryRun("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", d]);
    if (ok) await tryRun("umount", [d]);
    await Deno.remove(d);
    return ok;
  })();

Deno.test({
  name: "a full disk: the row goes to the fallback spool on another filesystem, the run goes on",
  ignore: !CAN_MOUNT, // needs root to mount a tiny tmpfs
  fn: async () => {
    await using s = await scratchRepo(backlogOf([["FULL-1"]]));
    const small = join(s.dir, "small");
    const tmp = join(s.dir, "tmp");
    await Deno.mkdir(small);
    await Deno.mkdir(tmp);
    assert(await tryRun("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", small]));
    try {
      const db = join(small, "chump.db");
      const bg = orchestrateInBackground(s, ["--db", db], {
        CHUMP_DEMO_PLAN: "FULL-1=sleep:1500:fail",
        TMPDIR: tmp,
      });
      await bg.waitFor(/^DISPATCHED: FULL-1 /);
      // Fill the filesystem to the last byte.
      const filler = await Deno.open(join(small, "filler"), { write: true, create: true });
      const block = new Uint8Array(4096);
      try {
        for (;;) await filler.write(block);
      } catch {
        // ENOSPC: full
      } finally {
        filler.close();
      }
      const ran = await bg.finished();
      equal(ran.code, 3, `${ran.code}\n${ran.stdout}\n${ran.stderr}`);
      match(ran.stdout, /OUTCOME: FULL-1 killed/);
      const local = await spooled(`${db}.spool.jsonl`);
      const far = (await Promise.all(fallbackSpools(tmp).map(spooled))).flat();
      let inDb = 0;
      try {
        const conn = new DatabaseSync(db, { readOnly: true });
        inDb = Number(
          (conn.prepare("SELECT count(*) AS n FROM chump_reflections").get() as { n: number }).n,
        );
        conn.close();
      } catch {
        // no table: nothing reached the DB
      }
      equal(
        inDb + local.length + far.length,
        1,
        `the row is somewhere, exactly once: ${inDb} ${local} ${far}\n${ran.stdout}\n${ran.stderr}`,
      );
    } finally {
      // Never leave a mount behind: detach it lazily if something still holds it.
      if (!await tryRun("umount", [small])) await tryRun("umount", ["-l", small]);
    }
  },
});
