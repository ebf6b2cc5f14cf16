/**
 * The reflection DB's connection and its locking policy, for everything that
 * writes it (reflections, leases, the spool import): a {@linkcode Store} is
 * one lazily opened SQLite handle, WAL mode, the schema created if missing
 * (store/schema.ts). What shares one connection is given the same Store by
 * whoever opened it (store/run_store.ts: the ledger, the writer and the
 * spool import of a run).
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
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { dirname, resolve } from "../util/path.ts";
import { errorMessage, fail, ok, type Result } from "../util/result.ts";
import { sleep } from "../util/sleep.ts";
import { controlsToSpaces } from "../util/text.ts";
import { applySchema } from "./schema.ts";

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
const BUSY_SLICE_MS = 200;

/** Sleep between two blocking slices: lets timers and pipe reads run. */
const YIELD_MS = 15;

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

/** A connection to one DB, under the lock policy. */
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
  /** Close the connection (idempotent; the next operation would open it again). */
  close(): void;
}

/** One connection's state. */
interface ConnectionState {
  path: string;
  handle?: DatabaseSync;
  conn?: Connection;
  busyMs: number;
  durable?: boolean;
}

/**
 * A connection to the DB at `dbPath` (opened on first use; the directory,
 * the DB and the schema are created then). Close it when done.
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
  const entry: ConnectionState = { path: dbPath, busyMs: -1 };
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
        return fail(controlsToSpaces(errorMessage(e)));
      }
    },
    close: () => dropHandle(entry),
  };
}

/** The lock policy: slices of blocking wait with awaited pauses, bounded in total. */
async function runOn<T>(
  s: ConnectionState,
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
        return { ok: false, locked: false, reason: controlsToSpaces(errorMessage(e)) };
      }
      const waited = Date.now() - start;
      if (waited >= lockWaitMs) {
        return {
          ok: false,
          locked: true,
          reason: `${controlsToSpaces(errorMessage(e))} (waited ${waited} ms)`,
        };
      }
      await sleep(Math.min(YIELD_MS, lockWaitMs - waited));
    }
  }
}

/** Open (or reuse) the handle, blocking at most `sliceMs` on a lock. */
function connect(s: ConnectionState, sliceMs: number): Connection {
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
    applySchema(handle);
    s.conn = connectionOf(handle);
  }
  return s.conn;
}

/**
 * A connection over `handle`: its statements prepared once.
 *
 * @example
 * ```ts
 * import { DatabaseSync } from "node:sqlite";
 *
 * connectionOf(new DatabaseSync(":memory:")).statement("SELECT 1").get();
 * ```
 */
export function connectionOf(handle: DatabaseSync): Connection {
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

function dropHandle(s: ConnectionState): void {
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
