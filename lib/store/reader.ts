/**
 * Reading the DB without writing it (`status`, `reflections`, the dry run,
 * the dashboard): read-only, creating nothing, and working in a directory
 * this process cannot write (a WAL DB is then read from an in-memory
 * snapshot when that loses nothing).
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { errorMessage, fail, ok, type Result } from "../util/result.ts";
import { controlsToSpaces } from "../util/text.ts";
import { connectionOf, isLockError, LOCK_WAIT_MS, type Store } from "./connection.ts";

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
    throw new Error(controlsToSpaces(errorMessage(e)));
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
      throw new Error(controlsToSpaces(errorMessage(e)));
    }
    if (hasLog(dbPath)) {
      // A snapshot would miss the log's commits: say why instead of showing stale rows.
      throw new Error(
        `${
          controlsToSpaces(errorMessage(e))
        } (its write-ahead log ${dbPath}-wal has no index, and ` +
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
    return fail(controlsToSpaces(errorMessage(e)));
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
          reason: controlsToSpaces(errorMessage(e)),
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
    throw new Error(controlsToSpaces(errorMessage(e)));
  }
}
