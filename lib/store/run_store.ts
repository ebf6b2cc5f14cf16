/**
 * What a writing command (`--no-dry-run`, `reap`) opens before it acts: the
 * lease ledger and the outcome writer on the DB's one connection, and the
 * spool imported first, so every lease whose outcome is still spooled is
 * ended by its own reflection before anything looks for orphans (a reap must
 * never write a second reflection for it).
 *
 * @module
 */
import type { Liveness } from "../process/liveness.ts";
import { openStore } from "./connection.ts";
import { type Ledger, openLedger } from "./ledger.ts";
import { importSpool, type SpoolImport } from "./spool.ts";
import { createSqliteWriter, type ReflectionWriter, type SqliteWriterOptions } from "./writer.ts";
import { fail, ok, type Result } from "../util/result.ts";

/** The ledger and writer of one run; `close` releases both. */
export interface RunStore {
  ledger: Ledger;
  writer: ReflectionWriter;
  /** What the spool import did (undefined with `reflect: false`: nothing was imported). */
  imported?: SpoolImport;
  close(): void;
}

/** Options of {@linkcode openRunStore}. */
export interface RunStoreOptions extends SqliteWriterOptions {
  /** Where to report the import (one line each). */
  err: (line: string) => void;
  /** Whose leases are alive, and who this orchestrator is (process/liveness.ts). */
  liveness: Liveness;
}

/**
 * Open the ledger and the writer of the DB at `dbPath` on one connection
 * and, when reflecting, import its spool (each row with the end of its lease, in one transaction),
 * saying what was imported and what is still waiting.
 *
 * @returns the store, or one line when the DB cannot be opened at all
 * @example
 * ```ts
 * import { processLiveness } from "../process/liveness.ts";
 *
 * const dir = Deno.makeTempDirSync();
 * const store = await openRunStore(`${dir}/chump_memory.db`, {
 *   err: console.error,
 *   liveness: processLiveness(),
 * });
 * if (store.ok) store.value.close();
 * ```
 */
export async function openRunStore(
  dbPath: string,
  options: RunStoreOptions,
): Promise<Result<RunStore>> {
  const { err, reflect = true } = options;
  const store = openStore(dbPath);
  const ledger = openLedger(dbPath, options.liveness, store);
  if (!ledger.ok) {
    store.close();
    return fail(ledger.error);
  }
  let imported: SpoolImport | undefined;
  if (reflect) {
    imported = await importSpool(dbPath, { ...options, store });
    if (imported.imported > 0) {
      err(`imported ${imported.imported} spooled reflection(s) into ${dbPath}`);
    }
    if (imported.left > 0) {
      err(
        `warning: ${imported.left} spooled reflection(s) still waiting in ${
          imported.paths.join(", ")
        }`,
      );
    }
    for (const e of imported.errors) err(`warning: spool: ${e}`);
  }
  const writer = createSqliteWriter(dbPath, { ...options, store });
  return ok({ ledger: ledger.value, writer, imported, close: () => store.close() });
}
