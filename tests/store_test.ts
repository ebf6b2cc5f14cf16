/**
 * The store: one connection and one lock policy per DB for leases and
 * reflections, an outcome and its lease end in one transaction, the spool
 * import ending leases with their rows, `reap` importing before it reaps,
 * and the read-only commands working where they cannot write.
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync, type SQLInputValue } from "node:sqlite";
import { type Ledger, openLedger } from "../lib/store/ledger.ts";
import { openRunStore } from "../lib/store/run_store.ts";
import { type Identity, processLiveness, selfIdentity } from "../lib/process/liveness.ts";
import type { DispatchReflection } from "../lib/store/reflection.ts";
import { importSpool } from "../lib/store/spool.ts";
import { createSqliteWriter } from "../lib/store/writer.ts";
import { sleep } from "../lib/util/sleep.ts";
import { runMain, scratch } from "./_helpers.ts";
import { reflectionRows, scratchRepo } from "./_e2e.ts";
import { holdLock } from "./_lock.ts";

const NEW_LEASE = {
  repoRoot: "/nonexistent/repo",
  branch: "claude/x",
  worktree: "/nonexistent/repo/.claude/worktrees/x",
  baseCommit: "",
  effort: "s",
  backend: "demo",
};

function reflection(fields: Partial<DispatchReflection> = {}): DispatchReflection {
  return {
    gapId: "S-1",
    effort: "s",
    domain: "s",
    outcome: "killed",
    durationS: 3,
    parallelSiblings: 0,
    notes: "exit code 1\nbackend=demo",
    ...fields,
  };
}

/** Rows of one query, through a connection of its own. */
function sql(db: string, query: string, ...params: SQLInputValue[]) {
  const conn = new DatabaseSync(db);
  try {
    return conn.prepare(query).all(...params);
  } finally {
    conn.close();
  }
}

function lease(db: string, id: number) {
  return sql(db, "SELECT state, outcome, notes FROM chump_dispatch_leases WHERE id = ?", id)[0];
}

function reflections(db: string): number {
  return Number(sql(db, "SELECT count(*) AS n FROM chump_reflections")[0].n);
}

/** A ledger for `db`, failing the test when it cannot be opened. */
function ledgerOf(db: string, self?: Identity) {
  const l = openLedger(db, processLiveness(self));
  if (!l.ok) throw new Error(l.error);
  return l.value;
}

/** Begin a lease for `gapId` and return its id. */
async function begin(ledger: Ledger, gapId: string): Promise<number> {
  const r = await ledger.begin({ gapId, ...NEW_LEASE });
  if (!r.ok || !r.value.begun) throw new Error(`begin ${gapId}: ${JSON.stringify(r)}`);
  return r.value.leaseId;
}

/** The identity of a process that has exited: its leases have no live orchestrator. */
async function deadIdentity(): Promise<Identity> {
  const child = new Deno.Command("true").spawn();
  await child.status;
  return { pid: child.pid, start: "1", host: selfIdentity().host };
}

// --- one connection, one lock policy ----------------------------------------

Deno.test({
  name: "a run's ledger and reflection writer share one connection",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    await using dir = await scratch();
    const db = join(dir.path, "chump_memory.db");
    const store = await openRunStore(db, { err: () => {}, liveness: processLiveness() });
    if (!store.ok) throw new Error(store.error);
    const { ledger, writer } = store.value;
    const leaseId = await begin(ledger, "S-1");
    deepEqual(await writer.write(reflection({ leaseId })), { stored: "db" });
    // Open file descriptors of this process on the DB file (ls: /proc needs --allow-all).
    const out = await new Deno.Command("ls", { args: ["-l", `/proc/${Deno.pid}/fd`] }).output();
    const fds = new TextDecoder().decode(out.stdout).split("\n").filter((l) =>
      l.endsWith(` ${db}`)
    );
    equal(fds.length, 1, fds.join("\n"));
    store.value.close();
  },
});

Deno.test("a lease write waits out a held lock with the event loop turning, then succeeds", async () => {
  await using dir = await scratch();
  const db = join(dir.path, "chump_memory.db");
  const ledger = ledgerOf(db);
  const lock = await holdLock(db);
  let settled = false;
  const pending = ledger.begin({ gapId: "S-1", ...NEW_LEASE }).finally(() => (settled = true));
  // Timers fire while the lease waits: the event loop (agents' pipes, ticks) is not frozen.
  let ticks = 0;
  while (ticks < 20) {
    await sleep(1);
    ticks++;
  }
  equal(settled, false, "still waiting on the lock, not failed");
  await lock.release();
  const r = await pending;
  ok(r.ok && r.value.begun, JSON.stringify(r));
  ledger.close();
});

Deno.test("a gap held by a live lease comes back as its holder, not as an error", async () => {
  await using dir = await scratch();
  const db = join(dir.path, "chump_memory.db");
  // This process, by pid alone (a test file's start time is its worker's, not the process's).
  const mine = ledgerOf(db, { ...selfIdentity(), start: null });
  const other = ledgerOf(db, await deadIdentity());
  const id = await begin(mine, "S-1");
  const r = await other.begin({ gapId: "S-1", ...NEW_LEASE });
  ok(r.ok, "losing the race is not a failure");
  ok(!r.value.begun);
  equal(r.value.holder.id, id);
  equal(r.value.holder.orchestratorPid, Deno.pid);
  other.close();
  mine.close();
});

// --- an outcome and its lease end, together -----------------------------------

Deno.test("an outcome's reflection and its lease end commit together, or not at all", async () => {
  await using dir = await scratch();
  const db = join(dir.path, "chump_memory.db");
  const options = { fallbackSpoolPath: join(dir.path, "fallback.jsonl") };
  const ledger = ledgerOf(db);
  const writer = createSqliteWriter(db, options);

  const first = await begin(ledger, "S-1");
  deepEqual(await writer.write(reflection({ leaseId: first })), { stored: "db" });
  deepEqual(lease(db, first), { state: "ended", outcome: "killed", notes: reflection().notes });
  equal(reflections(db), 1);

  // The lease end fails inside the transaction: the reflection is not there either.
  const second = await begin(ledger, "S-2");
  sql(
    db,
    `CREATE TRIGGER refuse_end BEFORE UPDATE ON chump_dispatch_leases WHEN NEW.state = 'ended'
       BEGIN SELECT RAISE(ABORT, 'lease end refused'); END`,
  );
  const receipt = await writer.write(reflection({ gapId: "S-2", leaseId: second }));
  equal(receipt.stored, "spool");
  equal(reflections(db), 1, "no reflection without its lease end");
  equal(lease(db, second).state, "starting");

  // The import records both, in one transaction.
  sql(db, "DROP TRIGGER refuse_end");
  const imported = await importSpool(db, options);
  equal(imported.imported, 1);
  deepEqual(imported.leasesEnded, [second]);
  equal(reflections(db), 2);
  deepEqual(lease(db, second), { state: "ended", outcome: "killed", notes: reflection().notes });
  writer.close();
  ledger.close();
});

Deno.test("a DB locked past the wait spools the row and leaves its lease to the import", async () => {
  await using dir = await scratch();
  const db = join(dir.path, "chump_memory.db");
  const options = { lockWaitMs: 100, fallbackSpoolPath: join(dir.path, "fallback.jsonl") };
  const ledger = ledgerOf(db);
  const writer = createSqliteWriter(db, options);
  const id = await begin(ledger, "S-1");
  await ledger.running(id, { pid: Deno.pid, detached: false });

  const lock = await holdLock(db);
  let receipt;
  try {
    receipt = await writer.write(reflection({ leaseId: id }));
  } finally {
    await lock.release();
  }
  equal(receipt.stored, "spool");
  equal(reflections(db), 0);
  equal(lease(db, id).state, "running", "the lease waits for its row");

  const imported = await importSpool(db, options);
  deepEqual([imported.imported, imported.leasesEnded], [1, [id]]);
  equal(reflections(db), 1);
  deepEqual(lease(db, id), { state: "ended", outcome: "killed", notes: reflection().notes });
  writer.close();
  ledger.close();
});

Deno.test("--no-reflect still ends the lease, and writes no reflection", async () => {
  await using dir = await scratch();
  const db = join(dir.path, "chump_memory.db");
  const ledger = ledgerOf(db);
  const writer = createSqliteWriter(db, { reflect: false });
  const id = await begin(ledger, "S-1");
  deepEqual(await writer.write(reflection({ leaseId: id })), { stored: "discarded" });
  equal(lease(db, id).state, "ended");
  equal(reflections(db), 0);
  writer.close();
  ledger.close();
});

Deno.test("recording the agent's pid never revives an ended lease", async () => {
  await using dir = await scratch();
  const db = join(dir.path, "chump_memory.db");
  const ledger = ledgerOf(db);
  const id = await begin(ledger, "S-1");
  const ended = await ledger.end(id, null, "dispatch failed: x");
  ok(ended.ok);
  ok((await ledger.running(id, { pid: Deno.pid, detached: false })).ok);
  equal(lease(db, id).state, "ended");
  ledger.close();
});

// --- reap imports the spool first ---------------------------------------------

Deno.test("reap imports the spool first: a spooled outcome ends its lease, no second reflection", async () => {
  await using s = await scratchRepo("gaps: []\n");
  const db = s.db;
  const fallbackSpoolPath = join(s.dir, "fallback.jsonl");
  // A crashed orchestrator's lease, whose outcome the DB refused (locked) and spooled.
  const crashed = ledgerOf(db, await deadIdentity());
  const r = await crashed.begin({
    ...NEW_LEASE,
    gapId: "S-1",
    repoRoot: s.repo,
    worktree: join(s.repo, ".claude", "worktrees", "s-1"),
    branch: "claude/s-1",
  });
  ok(r.ok && r.value.begun);
  const leaseId = r.value.leaseId;
  await crashed.running(leaseId, {
    pid: (await deadIdentity()).pid,
    pidStart: "1",
    detached: false,
  });
  const writer = createSqliteWriter(db, { lockWaitMs: 100, fallbackSpoolPath });
  const lock = await holdLock(db);
  try {
    equal((await writer.write(reflection({ leaseId }))).stored, "spool");
  } finally {
    await lock.release();
  }
  writer.close();
  crashed.close();
  equal(lease(db, leaseId).state, "running");

  const reap = await runMain(["reap", "--repo-root", s.repo, "--kill-grace", "1s"]);
  equal(reap.code, 0, reap.stderr);
  match(reap.stderr, /imported 1 spooled reflection\(s\)/);
  match(reap.stdout, /nothing to reap/);
  equal(reap.stdout.includes("REAPED:"), false, reap.stdout);
  const rows = reflectionRows(db);
  equal(rows.size, 1);
  match(rows.get("S-1")!.directive, / notes=exit code 1$/);
  deepEqual(lease(db, leaseId), { state: "ended", outcome: "killed", notes: reflection().notes });
});

// --- the read-only commands ---------------------------------------------------

/** A DB with one reflection and one lease, closed (no -wal or -shm left). */
async function filledDb(db: string): Promise<void> {
  const ledger = ledgerOf(db);
  const writer = createSqliteWriter(db);
  const leaseId = await begin(ledger, "RO-1");
  await writer.write(reflection({ gapId: "RO-1", leaseId }));
  writer.close();
  ledger.close();
}

/** Run a command (true when it succeeded). */
async function tryRun(cmd: string, args: string[]): Promise<boolean> {
  try {
    return (await new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).output()).success;
  } catch {
    return false;
  }
}

/**
 * `dir` seen through a path this process cannot write: a read-only bind
 * mount as root (modes do not stop root), chmod 555 otherwise.
 */
async function readOnlyView(
  dir: string,
): Promise<({ path: string } & AsyncDisposable) | undefined> {
  if (Deno.uid() !== 0) {
    await Deno.chmod(dir, 0o555);
    return { path: dir, [Symbol.asyncDispose]: () => Deno.chmod(dir, 0o755) };
  }
  const view = `${dir}-ro`;
  await Deno.mkdir(view);
  if (!await tryRun("mount", ["--bind", dir, view])) return undefined;
  const unmount = async () => void await tryRun("umount", [view]);
  if (!await tryRun("mount", ["-o", "remount,ro,bind", view])) {
    await unmount();
    return undefined;
  }
  return { path: view, [Symbol.asyncDispose]: unmount };
}

const CAN_MAKE_READ_ONLY = Deno.build.os === "linux" && await (async () => {
  const d = await Deno.makeTempDir();
  const view = await readOnlyView(d);
  await view?.[Symbol.asyncDispose]();
  await Deno.remove(d, { recursive: true }).catch(() => {});
  await Deno.remove(`${d}-ro`).catch(() => {});
  return view !== undefined;
})();

Deno.test({
  name: "status and reflections work on a DB whose directory cannot be written",
  ignore: !CAN_MAKE_READ_ONLY,
  fn: async () => {
    await using dir = await scratch();
    const sessions = join(dir.path, "sessions");
    await filledDb(join(sessions, "chump_memory.db"));
    const view = await readOnlyView(sessions);
    ok(view);
    try {
      const db = join(view.path, "chump_memory.db");
      const status = await runMain(["status", "--db", db]);
      equal(status.code, 0, status.stderr);
      match(status.stdout, /^\d+\s+RO-1\s+ended\s+killed\b/m);
      const listed = await runMain(["reflections", "--db", db, "--json"]);
      equal(listed.code, 0, listed.stderr);
      deepEqual(
        listed.stdout.trim().split("\n").map((l) => [JSON.parse(l).gapId, JSON.parse(l).outcome]),
        [["RO-1", "killed"]],
      );
      deepEqual([...Deno.readDirSync(view.path)].map((e) => e.name), ["chump_memory.db"]);
    } finally {
      await view[Symbol.asyncDispose]();
      await Deno.remove(view.path).catch(() => {});
    }
  },
});

Deno.test("a corrupt DB: reflections and status say so in one line, with one prefix", async () => {
  await using dir = await scratch();
  const db = join(dir.path, "chump_memory.db");
  await Deno.writeTextFile(db, "this is not a database, just some text long enough ".repeat(40));
  const listed = await runMain(["reflections", "--db", db]);
  equal(listed.code, 1);
  equal(
    listed.stderr,
    `chump-orchestrator: error: cannot read reflections from ${db}: file is not a database\n`,
  );
  const status = await runMain(["status", "--db", db]);
  equal(status.code, 1);
  equal(
    status.stderr,
    `chump-orchestrator: error: cannot read the lease ledger in ${db}: file is not a database\n`,
  );
});

Deno.test({
  name: "a log without its index where nothing can be written: one clear line, never stale rows",
  ignore: !CAN_MAKE_READ_ONLY,
  fn: async () => {
    await using dir = await scratch();
    const sessions = join(dir.path, "sessions");
    const db = join(sessions, "chump_memory.db");
    await filledDb(db);
    // A writer killed before its checkpoint leaves its commits in the -wal; the index goes.
    const writer = `import { DatabaseSync } from "node:sqlite";
const db = new DatabaseSync(${JSON.stringify(db)});
db.exec("PRAGMA wal_autocheckpoint = 0");
db.exec("UPDATE chump_reflections SET hypothesis = 'in the log only'");
Deno.kill(Deno.pid, "SIGKILL");`;
    await new Deno.Command(Deno.execPath(), { args: ["eval", writer] }).output();
    ok((await Deno.stat(`${db}-wal`)).size > 0);
    await Deno.remove(`${db}-shm`);
    const view = await readOnlyView(sessions);
    ok(view);
    try {
      const listed = await runMain(["reflections", "--db", join(view.path, "chump_memory.db")]);
      equal(listed.code, 1);
      equal(listed.stdout, "");
      match(
        listed.stderr,
        /^chump-orchestrator: error: cannot read reflections from \S+: unable to open database file \(its write-ahead log \S+-wal has no index, .*\)\n$/,
      );
    } finally {
      await view[Symbol.asyncDispose]();
      await Deno.remove(view.path).catch(() => {});
    }
  },
});
