/**
 * The reflection DB's connection and its locking policy: one lazily opened
 * SQLite handle, WAL mode, the schema created if missing, and waiting on a
 * locked DB in short blocking slices with an `await`ed pause between them
 * (`node:sqlite` is synchronous: a long busy_timeout would freeze the event
 * loop, and with it every agent's pipe). No transaction spans an `await`, so
 * concurrent operations cannot interleave inside one.
 *
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { dirname } from "node:path";
import { errorMessage } from "../util/result.ts";
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

/** Default total wait on a locked DB before spooling: long enough for another writer's commit. */
export const LOCK_WAIT_MS = 5000;

/**
 * Longest single blocking wait on a lock (SQLite's busy_timeout). `node:sqlite`
 * blocks the event loop while it waits, so this stays short and the loop gets
 * a turn between slices.
 */
export const BUSY_SLICE_MS = 200;

/** Sleep between two blocking slices: lets timers and pipe reads run. */
const YIELD_MS = 15;

/** `SQLITE_BUSY` / `SQLITE_LOCKED`: worth waiting for. node:sqlite gives only the message. */
export function isLockError(e: unknown): boolean {
  return /database (table |schema )?is locked/i.test(errorMessage(e));
}

/** A lazily opened DB handle with its prepared statements. */
export interface Store {
  /** Run `op` in the DB, waiting on locks up to `lockWaitMs`; never throws. */
  run(
    lockWaitMs: number,
    op: (db: Connection) => void,
  ): Promise<{ ok: true } | { ok: false; locked: boolean; reason: string }>;
  close(): void;
}

/** An open DB with the statements a reflection needs. */
export interface Connection {
  db: DatabaseSync;
  insertReflection: StatementSync;
  insertTarget: StatementSync;
  findReflection: StatementSync;
}

export function createStore(dbPath: string): Store {
  let conn: Connection | undefined;
  let handle: DatabaseSync | undefined;
  let busyMs = -1;

  /** Open (or reuse) the handle, with at most `sliceMs` of blocking on a lock. */
  function open(sliceMs: number): Connection {
    if (handle === undefined) {
      Deno.mkdirSync(dirname(dbPath), { recursive: true });
      handle = new DatabaseSync(dbPath);
      busyMs = -1;
    }
    if (busyMs !== sliceMs) {
      handle.exec(`PRAGMA busy_timeout = ${sliceMs}`);
      busyMs = sliceMs;
    }
    if (conn === undefined) {
      handle.exec("PRAGMA journal_mode = WAL");
      handle.exec(REFLECTION_SCHEMA);
      conn = {
        db: handle,
        insertReflection: handle.prepare(
          `INSERT INTO chump_reflections
             (intended_goal, observed_outcome, outcome_class, error_pattern, hypothesis, created_at)
           VALUES (?, ?, ?, ?, ?, COALESCE(?, datetime('now')))`,
        ),
        insertTarget: handle.prepare(
          `INSERT INTO chump_improvement_targets
             (reflection_id, directive, priority, scope, created_at)
           VALUES (?, ?, ?, ?, COALESCE(?, datetime('now')))`,
        ),
        findReflection: handle.prepare(
          `SELECT 1 AS found FROM chump_reflections
            WHERE error_pattern = ? AND intended_goal = ? AND observed_outcome = ?
              AND hypothesis = ? AND created_at = ? LIMIT 1`,
        ),
      };
    }
    return conn;
  }

  function close(): void {
    const h = handle;
    handle = undefined;
    conn = undefined;
    try {
      h?.close();
    } catch {
      // Already closed.
    }
  }

  return {
    async run(lockWaitMs, op) {
      const start = Date.now();
      for (;;) {
        const remaining = Math.max(0, lockWaitMs - (Date.now() - start));
        try {
          op(open(Math.min(BUSY_SLICE_MS, remaining)));
          return { ok: true };
        } catch (e) {
          if (!isLockError(e)) {
            // A broken handle (unopenable, corrupt, read-only, disk full):
            // drop it so the next write opens afresh, and do not wait.
            close();
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
    },
    close,
  };
}

/** Both rows of one reflection in one transaction; `createdAt` overrides `datetime('now')`. */
export function insertReflection(c: Connection, r: DispatchReflection, createdAt?: string): void {
  c.db.exec("BEGIN IMMEDIATE");
  try {
    const { lastInsertRowid } = c.insertReflection.run(
      GOAL_PREFIX + r.gapId,
      observedOutcome(r),
      outcomeClass(r.outcome),
      DISPATCH_ERROR_PATTERN,
      r.notes,
      createdAt ?? null,
    );
    c.insertTarget.run(
      lastInsertRowid,
      directive(r),
      targetPriority(r.outcome),
      r.domain,
      createdAt ?? null,
    );
    c.db.exec("COMMIT");
  } catch (e) {
    try {
      if (c.db.isTransaction) c.db.exec("ROLLBACK");
    } catch {
      // SQLite already rolled back.
    }
    throw e;
  }
}

/** Whether a spooled row is already in the DB (an import that crashed before its rewrite). */
export function alreadyImported(c: Connection, r: DispatchReflection, createdAt: string): boolean {
  return c.findReflection.get(
    DISPATCH_ERROR_PATTERN,
    GOAL_PREFIX + r.gapId,
    observedOutcome(r),
    r.notes,
    createdAt,
  ) !== undefined;
}
