/**
 * The reflection DB's connection and its locking policy, for everything that
 * writes it (reflections, leases, the spool import): ONE lazily opened SQLite
 * handle per DB per process, shared by every {@linkcode Store} on that path,
 * WAL mode, the schema created if missing.
 *
 * Every operation waits on a locked DB the same way: short blocking slices
 * (SQLite's busy_timeout) with an `await`ed pause between them, up to a
 * bounded total. `node:sqlite` is synchronous: a long busy_timeout would
 * freeze the event loop, and with it every agent's pipe and every timer. No
 * transaction spans an `await`, so operations sharing the handle never
 * interleave inside one.
 *
 * Durability: lease writes commit with `synchronous=NORMAL` (WAL + NORMAL
 * survives a crash of this process, which is what leases are for; only power
 * loss can drop the last commits, and it takes the agents too). A commit that
 * holds a reflection uses `synchronous=FULL`: the row is the learning loop's
 * record of an outcome that happened and cannot be replayed.
 *
 * Readers (`status`, `reflections`, the dry run) use {@linkcode openReader}:
 * read-only, creating nothing, and working in a directory they cannot write.
 *
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { dirname, resolve } from "node:path";
import { errorMessage, fail, ok, type Result } from "../util/result.ts";
import { sleep } from "../util/sleep.ts";
import { controlsToSpaces as oneLine } from "../util/text.ts";
import {
  directive,
  DISPATCH_ERROR_PATTERN,
  type DispatchReflection,
  GOAL_PREFIX,
  observedOutcome,
  outcomeClass,
  REFLECTION_SCHEMA,
  targetPriority,
} from "./reflection.ts";

/**
 * Total wait on a locked DB before a reflection is spooled instead: long
 * enough for another writer's commit, short enough not to hold up an outcome.
 */
export const LOCK_WAIT_MS = 5000;

/**
 * Total wait on a locked DB for a lease write (begin, pid, end, take-over).
 * Nothing stands behind a lease write (no spool), so waiting out contention
 * beats failing a dispatch; the event loop keeps turning meanwhile.
 */
export const LEASE_LOCK_WAIT_MS = 30_000;

/**
 * Longest single blocking wait on a lock (SQLite's busy_timeout). `node:sqlite`
 * blocks the event loop while it waits, so this stays short and the loop gets
 * a turn between slices.
 */
export const BUSY_SLICE_MS = 200;

/** Sleep between two blocking slices: lets timers and pipe reads run. */
const YIELD_MS = 15;

/**
 * The lease table and its index, and the runs table (one row per watching
 * run, its counters kept by a heartbeat each tick, read by `serve`'s
 * /metrics): this program's own tables, next to the contract's two (which it
 * never alters).
 *
 * @example
 * ```ts
 * LEASE_SCHEMA.startsWith("CREATE TABLE IF NOT EXISTS chump_dispatch_leases"); // true
 * ```
 */
export const LEASE_SCHEMA = `CREATE TABLE IF NOT EXISTS chump_dispatch_leases (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  gap_id TEXT NOT NULL,
  repo_root TEXT NOT NULL,
  branch TEXT NOT NULL,
  worktree TEXT NOT NULL,
  base_commit TEXT NOT NULL DEFAULT '',
  effort TEXT NOT NULL DEFAULT '',
  backend TEXT NOT NULL DEFAULT '',
  pid INTEGER,
  pid_start TEXT,
  orchestrator_pid INTEGER NOT NULL,
  orchestrator_start TEXT,
  host TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL,
  outcome TEXT,
  notes TEXT,
  started_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  generation INTEGER NOT NULL DEFAULT 0,
  deadline_ms INTEGER,
  max_watch_ms INTEGER,
  log_base TEXT,
  pr TEXT,
  shared_id INTEGER
);
CREATE INDEX IF NOT EXISTS chump_dispatch_leases_state ON chump_dispatch_leases(state);
CREATE TABLE IF NOT EXISTS chump_runs (
  run_id TEXT PRIMARY KEY,
  host TEXT NOT NULL DEFAULT '',
  pid INTEGER NOT NULL,
  started_ms INTEGER NOT NULL,
  heartbeat_ms INTEGER NOT NULL,
  ended_ms INTEGER,
  ticks INTEGER NOT NULL DEFAULT 0,
  provider_errors INTEGER NOT NULL DEFAULT 0,
  write_failures INTEGER NOT NULL DEFAULT 0,
  live_agents INTEGER NOT NULL DEFAULT 0
);`;

/**
 * Columns added to the lease table after its first release, with their
 * definitions: a DB made by an older version gets them on open (the old rows
 * read as generation 0, no recorded deadline, no log files).
 */
const LEASE_COLUMNS_ADDED: readonly [string, string][] = [
  ["generation", "INTEGER NOT NULL DEFAULT 0"],
  ["deadline_ms", "INTEGER"],
  ["max_watch_ms", "INTEGER"],
  ["log_base", "TEXT"],
  ["pr", "TEXT"],
  ["shared_id", "INTEGER"],
];

/** Add the lease columns an older DB lacks (idempotent). */
function migrateLeases(handle: DatabaseSync): void {
  const have = new Set(
    handle.prepare("PRAGMA table_info(chump_dispatch_leases)").all().map((r) => String(r.name)),
  );
  for (const [name, definition] of LEASE_COLUMNS_ADDED) {
    if (!have.has(name)) {
      handle.exec(`ALTER TABLE chump_dispatch_leases ADD COLUMN ${name} ${definition}`);
    }
  }
}

/**
 * `SQLITE_BUSY` / `SQLITE_LOCKED`: worth waiting for. node:sqlite gives only the message.
 *
 * @example
 * ```ts
 * isLockError(new Error("database is locked")); // true
 * isLockError(new Error("disk I/O error")); // false
 * ```
 */
export function isLockError(e: unknown): boolean {
  return /database (table |schema )?is locked/i.test(errorMessage(e));
}

/** An open DB: the handle and a cache of prepared statements. */
export interface Connection {
  readonly db: DatabaseSync;
  /** The prepared statement for `sql`, prepared once per handle. */
  statement(sql: string): StatementSync;
}

/** What {@linkcode Store.run} gives back: the op's value, or why the DB did not take it. */
export type StoreResult<T> =
  | { ok: true; value: T }
  | { ok: false; locked: boolean; reason: string };

/** How one {@linkcode Store.run} waits and commits. */
export interface RunOptions {
  /** Total wait on a locked DB, in slices (see the module notes). */
  lockWaitMs: number;
  /** Commit with `synchronous=FULL` (a reflection) instead of NORMAL (a lease). */
  durable?: boolean;
}

/** One user's handle on the shared connection of a DB. */
export interface Store {
  /** The DB path as given. */
  readonly path: string;
  /**
   * Run `op` (synchronous, at most one transaction) on the DB, waiting on
   * locks as the module notes say. Never throws: a non-lock failure drops the
   * handle (the next operation opens afresh) and comes back at once.
   */
  run<T>(op: (c: Connection) => T, options: RunOptions): Promise<StoreResult<T>>;
  /**
   * Open the connection now, without waiting on a lock, to report an
   * unusable DB before anything depends on it. A DB that is merely locked
   * passes: the first operation waits for it.
   */
  check(): Result<void>;
  /** Give up this handle; the connection closes with the last one (idempotent). */
  close(): void;
}

/** The one connection of a DB in this process, and who holds it. */
interface Shared {
  key: string;
  path: string;
  users: number;
  handle?: DatabaseSync;
  conn?: Connection;
  busyMs: number;
  durable?: boolean;
}

/** Open connections by absolute DB path. */
const shared = new Map<string, Shared>();

/**
 * A handle on the DB at `dbPath`, sharing this process's one connection to
 * it (opened on first use; the directory, the DB and the schema are created
 * then). Close it when done.
 *
 * @example
 * ```ts
 * const dir = Deno.makeTempDirSync();
 * const store = openStore(`${dir}/sessions/chump_memory.db`);
 * const r = await store.run((c) => c.statement("SELECT 1 AS one").get(), { lockWaitMs: 1000 });
 * store.close();
 * // r.ok === true
 * ```
 */
export function openStore(dbPath: string): Store {
  const key = absolute(dbPath);
  let s = shared.get(key);
  if (s === undefined) {
    s = { key, path: dbPath, users: 0, busyMs: -1 };
    shared.set(key, s);
  }
  s.users++;
  const entry = s;
  let closed = false;
  return {
    path: dbPath,
    run: (op, options) => runOn(entry, op, options),
    check() {
      try {
        connect(entry, 0);
        return ok(undefined);
      } catch (e) {
        if (isLockError(e)) return ok(undefined);
        dropHandle(entry);
        return fail(oneLine(errorMessage(e)));
      }
    },
    close() {
      if (closed) return;
      closed = true;
      entry.users--;
      if (entry.users > 0) return;
      dropHandle(entry);
      if (shared.get(entry.key) === entry) shared.delete(entry.key);
    },
  };
}

/** The lock policy: slices of blocking wait with awaited pauses, bounded in total. */
async function runOn<T>(
  s: Shared,
  op: (c: Connection) => T,
  options: RunOptions,
): Promise<StoreResult<T>> {
  const { lockWaitMs, durable = false } = options;
  const start = Date.now();
  for (;;) {
    const remaining = Math.max(0, lockWaitMs - (Date.now() - start));
    try {
      const conn = connect(s, Math.min(BUSY_SLICE_MS, remaining));
      if (s.durable !== durable) {
        conn.db.exec(`PRAGMA synchronous = ${durable ? "FULL" : "NORMAL"}`);
        s.durable = durable;
      }
      return { ok: true, value: op(conn) };
    } catch (e) {
      if (!isLockError(e)) {
        // A broken handle (unopenable, corrupt, read-only, disk full): drop
        // it so the next operation opens afresh, and do not wait.
        dropHandle(s);
        return { ok: false, locked: false, reason: oneLine(errorMessage(e)) };
      }
      const waited = Date.now() - start;
      if (waited >= lockWaitMs) {
        return {
          ok: false,
          locked: true,
          reason: `${oneLine(errorMessage(e))} (waited ${waited} ms)`,
        };
      }
      await sleep(Math.min(YIELD_MS, lockWaitMs - waited));
    }
  }
}

/** Open (or reuse) the shared handle, blocking at most `sliceMs` on a lock. */
function connect(s: Shared, sliceMs: number): Connection {
  if (s.handle === undefined) {
    Deno.mkdirSync(dirname(s.path), { recursive: true });
    s.handle = new DatabaseSync(s.path);
    s.busyMs = -1;
    s.durable = undefined;
  }
  const handle = s.handle;
  if (s.busyMs !== sliceMs) {
    handle.exec(`PRAGMA busy_timeout = ${sliceMs}`);
    s.busyMs = sliceMs;
  }
  if (s.conn === undefined) {
    handle.exec("PRAGMA journal_mode = WAL");
    handle.exec(REFLECTION_SCHEMA);
    handle.exec(LEASE_SCHEMA);
    migrateLeases(handle);
    s.conn = connectionOf(handle);
  }
  return s.conn;
}

function connectionOf(handle: DatabaseSync): Connection {
  const statements = new Map<string, StatementSync>();
  return {
    db: handle,
    statement(sql) {
      let st = statements.get(sql);
      if (st === undefined) {
        st = handle.prepare(sql);
        statements.set(sql, st);
      }
      return st;
    },
  };
}

function dropHandle(s: Shared): void {
  const h = s.handle;
  s.handle = undefined;
  s.conn = undefined;
  try {
    h?.close();
  } catch {
    // Already closed.
  }
}

/**
 * Run `fn` in one write transaction (`BEGIN IMMEDIATE` ... `COMMIT`), rolled
 * back if it throws.
 *
 * @example
 * ```ts ignore
 * await store.run((c) => transaction(c, () => c.statement(sql).run(id)), { lockWaitMs });
 * ```
 */
export function transaction<T>(c: Connection, fn: () => T): T {
  c.db.exec("BEGIN IMMEDIATE");
  try {
    const value = fn();
    c.db.exec("COMMIT");
    return value;
  } catch (e) {
    try {
      if (c.db.isTransaction) c.db.exec("ROLLBACK");
    } catch {
      // SQLite already rolled back.
    }
    throw e;
  }
}

// --- recording an outcome ----------------------------------------------------

const INSERT_REFLECTION = `INSERT INTO chump_reflections
     (intended_goal, observed_outcome, outcome_class, error_pattern, hypothesis, created_at)
   VALUES (?, ?, ?, ?, ?, COALESCE(?, datetime('now')))`;

const INSERT_TARGET = `INSERT INTO chump_improvement_targets
     (reflection_id, directive, priority, scope, created_at)
   VALUES (?, ?, ?, ?, COALESCE(?, datetime('now')))`;

const FIND_REFLECTION = `SELECT 1 AS found FROM chump_reflections
  WHERE error_pattern = ? AND intended_goal = ? AND observed_outcome = ?
    AND hypothesis = ? AND created_at = ? LIMIT 1`;

const END_LEASE = `UPDATE chump_dispatch_leases
    SET state = 'ended', outcome = ?, notes = ?, updated_ms = ?
  WHERE id = ? AND state != 'ended'`;

const LEASE_OWNER = "SELECT state, generation FROM chump_dispatch_leases WHERE id = ?";

/**
 * End a lease (a no-op when it ended already). Call inside a transaction or
 * on its own (one statement is atomic).
 *
 * @returns whether this call ended it
 * @example
 * ```ts ignore
 * endLease(c, 7, "killed", "exit code 1\nbackend=claude");
 * ```
 */
export function endLease(
  c: Connection,
  leaseId: number,
  outcome: string | null,
  notes: string,
): boolean {
  return Number(c.statement(END_LEASE).run(outcome, notes, Date.now(), leaseId).changes) > 0;
}

/** Options of {@linkcode recordOutcome}. */
export interface RecordOptions {
  /** Write the reflection's rows (false: `--no-reflect`, only the lease ends). */
  reflect?: boolean;
  /** The row's time instead of `datetime('now')` (a spooled row keeps its own). */
  createdAt?: string;
  /**
   * Skip the rows when this exact reflection (same goal, outcome, notes and
   * time) is already there: a spool import that crashed before its rewrite.
   */
  skipIfPresent?: boolean;
}

/**
 * Record one terminal outcome in ONE transaction: the reflection, its
 * improvement target and (when `r.leaseId` is set) the end of its lease. A
 * crash leaves all of them or none: never a reflection with a live lease.
 * Exactly once: when the lease ended already or another generation owns it
 * (an adopter took it over), nothing is written and `"superseded"` comes back.
 *
 * @returns whether the lease was ended by this call, or `"superseded"`
 * @example
 * ```ts ignore
 * await store.run((c) => recordOutcome(c, reflection), { lockWaitMs: LOCK_WAIT_MS, durable: true });
 * ```
 */
export function recordOutcome(
  c: Connection,
  r: DispatchReflection,
  options: RecordOptions = {},
): boolean | "superseded" {
  const { reflect = true, createdAt, skipIfPresent = false } = options;
  return transaction(c, () => {
    if (r.leaseId !== undefined && superseded(c, r.leaseId, r.leaseGeneration)) return "superseded";
    if (reflect && !(skipIfPresent && createdAt !== undefined && present(c, r, createdAt))) {
      const { lastInsertRowid } = c.statement(INSERT_REFLECTION).run(
        GOAL_PREFIX + r.gapId,
        observedOutcome(r),
        outcomeClass(r.outcome),
        DISPATCH_ERROR_PATTERN,
        r.notes,
        createdAt ?? null,
      );
      c.statement(INSERT_TARGET).run(
        lastInsertRowid,
        directive(r),
        targetPriority(r.outcome),
        r.domain,
        createdAt ?? null,
      );
    }
    return r.leaseId !== undefined && endLease(c, r.leaseId, r.outcome, r.notes);
  });
}

/**
 * Is this dispatch's outcome no longer ours to record? Its lease ended
 * already (its reflection is written) or was taken over since (another
 * generation owns it). A lease row that is missing does not stop a
 * reflection: it is never dropped for want of a lease.
 */
function superseded(c: Connection, leaseId: number, generation: number | undefined): boolean {
  const row = c.statement(LEASE_OWNER).get(leaseId) as
    | { state: string; generation: number | bigint }
    | undefined;
  if (row === undefined) return false;
  if (row.state === "ended") return true;
  return generation !== undefined && Number(row.generation) !== generation;
}

function present(c: Connection, r: DispatchReflection, createdAt: string): boolean {
  return c.statement(FIND_REFLECTION).get(
    DISPATCH_ERROR_PATTERN,
    GOAL_PREFIX + r.gapId,
    observedOutcome(r),
    r.notes,
    createdAt,
  ) !== undefined;
}

// --- reading -----------------------------------------------------------------

/**
 * Open an existing DB for reading only, creating nothing: `undefined` when
 * the file does not exist. A WAL-mode DB needs its `-shm` index to be read in
 * place; when its directory cannot be written (a read-only mount, another
 * user's directory) and no index or log is there, the DB file is read into
 * memory and queried from that snapshot instead. Throws a one-line error
 * (without a path prefix: the caller names the DB).
 *
 * @param dbPath the DB
 * @param options how long a query may block on a lock (default {@linkcode LOCK_WAIT_MS})
 * @example
 * ```ts
 * const dir = Deno.makeTempDirSync();
 * openReader(`${dir}/none.db`); // undefined
 * ```
 */
export function openReader(
  dbPath: string,
  options: { timeoutMs?: number } = {},
): DatabaseSync | undefined {
  const { timeoutMs = LOCK_WAIT_MS } = options;
  try {
    Deno.statSync(dbPath);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new Error(oneLine(errorMessage(e)));
  }
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(dbPath, { readOnly: true, timeout: timeoutMs });
    db.prepare("SELECT count(*) FROM sqlite_master").get();
    return db;
  } catch (e) {
    try {
      db?.close();
    } catch {
      // not open
    }
    if (!/unable to open database file/i.test(errorMessage(e))) {
      throw new Error(oneLine(errorMessage(e)));
    }
    if (hasLog(dbPath)) {
      // A snapshot would miss the log's commits: say why instead of showing stale rows.
      throw new Error(
        `${oneLine(errorMessage(e))} (its write-ahead log ${dbPath}-wal has no index, and ` +
          "the directory cannot be written to make one: open it once where it can be written)",
      );
    }
    return snapshot(dbPath);
  }
}

/**
 * A {@linkcode Store} over {@linkcode openReader}'s read-only handle (no
 * schema, no writes), for commands that only look; `undefined` when the DB
 * (or, with `table`, that table) does not exist.
 *
 * @example
 * ```ts
 * const dir = Deno.makeTempDirSync();
 * readOnlyStore(`${dir}/none.db`); // { ok: true, value: undefined }
 * ```
 */
export function readOnlyStore(
  dbPath: string,
  options: { table?: string } = {},
): Result<Store | undefined> {
  let db: DatabaseSync | undefined;
  try {
    db = openReader(dbPath);
    if (
      db !== undefined && options.table !== undefined &&
      db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?")
          .get(options.table) === undefined
    ) {
      db.close();
      return ok(undefined);
    }
  } catch (e) {
    db?.close();
    return fail(oneLine(errorMessage(e)));
  }
  if (db === undefined) return ok(undefined);
  const handle = db;
  const conn = connectionOf(handle);
  let closed = false;
  return ok({
    path: dbPath,
    run(op) {
      if (closed) return Promise.resolve({ ok: false, locked: false, reason: "closed" });
      try {
        return Promise.resolve({ ok: true, value: op(conn) });
      } catch (e) {
        return Promise.resolve({
          ok: false,
          locked: isLockError(e),
          reason: oneLine(errorMessage(e)),
        });
      }
    },
    check: () => ok(undefined),
    close() {
      if (closed) return;
      closed = true;
      try {
        handle.close();
      } catch {
        // already closed
      }
    },
  });
}

/** Whether a non-empty write-ahead log sits next to the DB (a snapshot would miss it). */
function hasLog(dbPath: string): boolean {
  try {
    return Deno.statSync(`${dbPath}-wal`).size > 0;
  } catch {
    return false;
  }
}

/** The DB file, read into an in-memory DB (marked as a rollback-journal DB so it needs no index). */
function snapshot(dbPath: string): DatabaseSync {
  const bytes = Deno.readFileSync(dbPath);
  // Header bytes 18-19: file format write/read versions, 2 = WAL, 1 = rollback journal.
  if (bytes.length >= 100 && bytes[18] === 2 && bytes[19] === 2) bytes[18] = bytes[19] = 1;
  const db = new DatabaseSync(":memory:");
  try {
    db.deserialize(bytes);
    db.prepare("SELECT count(*) FROM sqlite_master").get();
    return db;
  } catch (e) {
    db.close();
    throw new Error(oneLine(errorMessage(e)));
  }
}

/**
 * The absolute form of a path; the path itself when the cwd cannot be read.
 *
 * @example
 * ```ts
 * absolute("/repo/sessions/../sessions/chump_memory.db"); // "/repo/sessions/chump_memory.db"
 * ```
 */
export function absolute(path: string): string {
  try {
    return resolve(path);
  } catch {
    return path;
  }
}
