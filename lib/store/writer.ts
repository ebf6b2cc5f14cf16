/**
 * Reflection writers: where a terminal outcome goes. The SQLite writer
 * records the reflection's rows AND the end of its lease in one transaction
 * (store/outcome.ts), so a crash never leaves a reflection with a live
 * lease (which a reap would take for an orphan and reflect on twice).
 *
 * Writers never throw and never lose a row: a locked DB is waited on (see
 * store/connection.ts), then the row goes to a spool file next to the DB (or in the temp
 * dir when that is not writable, or as a last resort to stderr) with its
 * lease id, and the next import records both, again in one transaction
 * (see spool.ts).
 *
 * @module
 */
import { errorMessage } from "../util/result.ts";
import { controlsToSpaces } from "../util/text.ts";
import { absolute, LEASE_LOCK_WAIT_MS, LOCK_WAIT_MS, openStore } from "./connection.ts";
import { recordOutcome } from "./outcome.ts";
import type { DispatchReflection } from "./reflection.ts";
import {
  appendToSpool,
  spoolLine,
  type SpoolOptions,
  spoolPaths,
  sqliteNow,
  unique,
} from "./spool.ts";

/**
 * Where a written reflection ended up. With `db` its lease (if any) ended
 * with it; with `spool`/`stderr` the lease is left for the import to end;
 * `discarded` (`--no-reflect`) carries `leaseError` when its lease could not be ended.
 */
export type WriteReceipt =
  | { stored: "db" | "memory" }
  /** Not written: the lease ended already or was taken over (another owner records it). */
  | { stored: "superseded" }
  | { stored: "discarded"; leaseError?: string }
  | { stored: "spool"; path: string; reason: string }
  | { stored: "stderr"; reason: string };

/**
 * One line for the operator about where the reflection of `gapId` went, or
 * `undefined` when there is nothing to say (it is in the DB, or dropped as
 * `--no-reflect` asked).
 *
 * @example
 * ```ts
 * describeReceipt(
 *   { stored: "spool", path: "/r/x.db.spool.jsonl", reason: "database is locked" },
 *   { gapId: "A-1", leaseId: 3 },
 * );
 * // "warning: reflection for A-1 spooled to /r/x.db.spool.jsonl (database is locked); its lease ends when the spool is imported"
 * describeReceipt({ stored: "db" }, { gapId: "A-1", leaseId: 3 }); // undefined
 * ```
 */
export function describeReceipt(
  receipt: WriteReceipt,
  of: { gapId: string; leaseId: number | null | undefined },
): string | undefined {
  switch (receipt.stored) {
    case "spool":
      return `warning: reflection for ${of.gapId} spooled to ${receipt.path} (${receipt.reason}); ` +
        "its lease ends when the spool is imported";
    case "stderr":
      return `warning: reflection for ${of.gapId} printed above, not stored (${receipt.reason})`;
    case "superseded":
      return `note: ${of.gapId} (lease ${of.leaseId}) was taken over or recorded by another ` +
        "orchestrator; its outcome is not written twice";
    case "discarded":
      return receipt.leaseError ? `warning: ${receipt.leaseError}` : undefined;
    default:
      return undefined;
  }
}

/** A sink for terminal outcomes. `write` never throws. */
export interface ReflectionWriter {
  /**
   * Record one outcome: its reflection and, when `r.leaseId` is set, the end
   * of that lease, in one transaction (the SQLite writer; test writers
   * keep or drop rows and touch no lease).
   */
  write(r: DispatchReflection): Promise<WriteReceipt>;
  /** Release the DB handle (idempotent). */
  close(): void;
}

/** Options of {@linkcode createSqliteWriter}. */
export interface SqliteWriterOptions extends SpoolOptions {
  /** Write reflection rows (default true); false (`--no-reflect`) only ends leases. */
  reflect?: boolean;
  /** Last resort output (default console.error). */
  stderr?: (line: string) => void;
}

/**
 * The production writer, on a connection to the DB (its own, or
 * `options.store`; store/connection.ts: opened on the first write, reopened
 * only after a failure, WAL mode, the schema created if missing): both rows of a reflection and the end of its lease in one
 * transaction. A locked DB is waited on up to `lockWaitMs`; any other failure
 * (unwritable, corrupt, disk full) spools at once. Every write tries the DB
 * first again. With `reflect: false` it only ends leases (waiting up to
 * {@linkcode LEASE_LOCK_WAIT_MS}: there is no spool for a lease end).
 *
 * @param dbPath the reflection DB (`<repo>/sessions/chump_memory.db`)
 * @param options reflect or not, lock wait, spool paths, last-resort output
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
  const {
    reflect = true,
    lockWaitMs = LOCK_WAIT_MS,
    stderr = (line: string) => console.error(line),
  } = options;
  const store = options.store ?? openStore(dbPath);
  let spools: string[] | undefined;

  async function spool(r: DispatchReflection, dbReason: string): Promise<WriteReceipt> {
    const line = spoolLine(r, sqliteNow(), absolute(dbPath));
    const reasons = [dbReason];
    if (spools === undefined) {
      try {
        const { spoolPath, fallbackSpoolPath } = spoolPaths(dbPath, options);
        spools = unique([spoolPath, fallbackSpoolPath]);
      } catch (e) {
        reasons.push(`no spool path: ${controlsToSpaces(errorMessage(e))}`);
      }
    }
    for (const path of spools ?? []) {
      try {
        await appendToSpool(path, line);
        return { stored: "spool", path, reason: reasons.join("; ") };
      } catch (e) {
        reasons.push(`spool ${path}: ${controlsToSpaces(errorMessage(e))}`);
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
      if (!reflect) {
        if (r.leaseId === undefined) return { stored: "discarded" };
        const ended = await store.run((c) => recordOutcome(c, r, { reflect: false }), {
          lockWaitMs: Math.max(lockWaitMs, LEASE_LOCK_WAIT_MS),
        });
        return ended.ok ? { stored: "discarded" } : {
          stored: "discarded",
          leaseError: `cannot end lease ${r.leaseId} in ${dbPath}: ${ended.reason}`,
        };
      }
      let reason: string;
      try {
        const done = await store.run((c) => recordOutcome(c, r), { lockWaitMs, durable: true });
        if (done.ok) return { stored: done.value === "superseded" ? "superseded" : "db" };
        reason = done.reason;
      } catch (e) {
        reason = controlsToSpaces(errorMessage(e));
      }
      return await spool(r, reason);
    },
    close() {
      if (options.store === undefined) store.close();
    },
  };
}
