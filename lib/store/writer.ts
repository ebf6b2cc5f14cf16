/**
 * Reflection writers: where a {@linkcode DispatchReflection} goes. Writers
 * never throw and never lose a row: a locked DB is waited on (see db.ts),
 * then the row goes to a spool file next to the DB (or in the temp dir when
 * that is not writable, or as a last resort to stderr), and the next run
 * imports it (see spool.ts).
 *
 * @module
 */
import { errorMessage } from "../util/result.ts";
import { controlsToSpaces as oneLine } from "../util/text.ts";
import { createStore, insertReflection, LOCK_WAIT_MS } from "./db.ts";
import type { DispatchReflection } from "./reflection.ts";
import { absolute, appendToSpool, spoolLine, spoolPaths, sqliteNow, unique } from "./spool.ts";

/** Where a written reflection ended up. */
export type WriteReceipt =
  | { stored: "db" | "memory" | "discarded" }
  | { stored: "spool"; path: string; reason: string }
  | { stored: "stderr"; reason: string };

/**
 * One line for the operator when a reflection did not reach the DB, or
 * `undefined` when there is nothing to say.
 *
 * @example
 * ```ts
 * describeReceipt({ stored: "spool", path: "/r/x.db.spool.jsonl", reason: "database is locked" });
 * // "reflection spooled to /r/x.db.spool.jsonl (database is locked); the next run imports it"
 * describeReceipt({ stored: "db" }); // undefined
 * ```
 */
export function describeReceipt(receipt: WriteReceipt): string | undefined {
  if (receipt.stored === "spool") {
    return `reflection spooled to ${receipt.path} (${receipt.reason}); the next run imports it`;
  }
  if (receipt.stored === "stderr") {
    return `reflection not stored (${receipt.reason}); it was printed as REFLECTION-NOT-STORED`;
  }
  return undefined;
}

/** A sink for reflections. `write` never throws. */
export interface ReflectionWriter {
  write(r: DispatchReflection): Promise<WriteReceipt>;
  /** Release the DB handle (idempotent). */
  close(): void;
}

/**
 * A writer that drops every row (`--no-reflect`).
 *
 * @example
 * ```ts
 * const receipt = await createNoopWriter().write({
 *   gapId: "A-1", effort: "s", domain: "a", outcome: "shipped", durationS: 1,
 *   parallelSiblings: 0, notes: "",
 * });
 * // receipt.stored === "discarded"
 * ```
 */
export function createNoopWriter(): ReflectionWriter {
  return {
    write: () => Promise.resolve({ stored: "discarded" }),
    close() {},
  };
}

/**
 * A writer that keeps copies of the rows in `rows` (for tests).
 *
 * @example
 * ```ts
 * const w = createMemoryWriter();
 * await w.write({
 *   gapId: "A-1", effort: "s", domain: "a", outcome: "killed", durationS: 3,
 *   parallelSiblings: 0, notes: "exit code 1",
 * });
 * // w.rows.length === 1
 * ```
 */
export function createMemoryWriter(): ReflectionWriter & { rows: DispatchReflection[] } {
  const rows: DispatchReflection[] = [];
  return {
    rows,
    write(r) {
      rows.push({ ...r });
      return Promise.resolve({ stored: "memory" });
    },
    close() {},
  };
}

/** Options of {@linkcode createSqliteWriter}. */
export interface SqliteWriterOptions {
  /** Total time to keep retrying a locked DB before spooling (default 5000 ms). */
  lockWaitMs?: number;
  /** Where to write when the DB cannot take a row; default `<db>.spool.jsonl`. */
  spoolPath?: string;
  /** Fallback spool when spoolPath is not writable; default in the temp dir, named after the DB. */
  fallbackSpoolPath?: string;
  /** Last resort output (default console.error). */
  stderr?: (line: string) => void;
}

/**
 * The production writer: one SQLite handle for the writer's lifetime, opened
 * on the first write (reopened only after a failure), WAL mode, the schema
 * created if missing, both rows of a reflection in one transaction. A locked
 * DB is waited on up to `lockWaitMs`; any other failure (unwritable, corrupt,
 * disk full) spools at once. Every write tries the DB first again.
 *
 * @param dbPath the reflection DB (`<repo>/sessions/chump_memory.db`)
 * @param options lock wait, spool paths, last-resort output
 * @returns a writer whose `write` never throws
 *
 * @example
 * ```ts
 * const dir = Deno.makeTempDirSync();
 * const w = createSqliteWriter(`${dir}/sessions/chump_memory.db`);
 * const receipt = await w.write({
 *   gapId: "AUTO-013", effort: "m", domain: "auto", outcome: "shipped", durationS: 90,
 *   parallelSiblings: 0, prNumber: 12, notes: "backend=claude",
 * });
 * w.close();
 * // receipt.stored === "db"
 * ```
 */
export function createSqliteWriter(
  dbPath: string,
  options: SqliteWriterOptions = {},
): ReflectionWriter {
  const { lockWaitMs = LOCK_WAIT_MS, stderr = (line: string) => console.error(line) } = options;
  const store = createStore(dbPath);
  let spools: string[] | undefined;

  async function spool(r: DispatchReflection, dbReason: string): Promise<WriteReceipt> {
    const line = spoolLine(r, sqliteNow(), absolute(dbPath));
    const reasons = [dbReason];
    if (spools === undefined) {
      try {
        const { spoolPath, fallbackSpoolPath } = spoolPaths(dbPath, options);
        spools = unique([spoolPath, fallbackSpoolPath]);
      } catch (e) {
        reasons.push(`no spool path: ${oneLine(errorMessage(e))}`);
      }
    }
    for (const path of spools ?? []) {
      try {
        await appendToSpool(path, line);
        return { stored: "spool", path, reason: reasons.join("; ") };
      } catch (e) {
        reasons.push(`spool ${path}: ${oneLine(errorMessage(e))}`);
      }
    }
    try {
      stderr(`REFLECTION-NOT-STORED: ${line}`);
    } catch {
      // Nowhere left to say it.
    }
    return { stored: "stderr", reason: reasons.join("; ") };
  }

  return {
    async write(r) {
      let reason: string;
      try {
        const done = await store.run(lockWaitMs, (db) => insertReflection(db, r));
        if (done.ok) return { stored: "db" };
        reason = done.reason;
      } catch (e) {
        reason = oneLine(errorMessage(e));
      }
      return await spool(r, reason);
    },
    close() {
      store.close();
    },
  };
}
