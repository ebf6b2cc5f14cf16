/**
 * The shared ledger as commands use it: joining it (a run, `watch`, `reap`)
 * and where a reading command (`reflections`, `lessons`, `route`, and a
 * run's learning) takes its reflections from: the local DB, or with
 * `--ledger` the whole fleet's. The PostgreSQL driver is loaded only then.
 *
 * @module
 */
import type { Io } from "../cli/io.ts";
import { type DispatchOptions, PROGRAM } from "../cli/parse.ts";
import type { Fleet } from "../store/pg/fleet.ts";
import type { ReflectionSource } from "../store/query.ts";

/** Reflections opened for reading; disposing releases what was opened (the fleet's copy). */
export interface OpenReflections extends Disposable {
  source: ReflectionSource;
}

/**
 * The reflections of `db`, or of the fleet when `ledger` is given; undefined
 * after one line on `io.err` when the ledger cannot be read.
 *
 * @example
 * ```ts ignore
 * using reflections = await openReflections(undefined, "/repo/sessions/chump_memory.db", io);
 * if (!reflections) return EXIT.failure;
 * ```
 */
export async function openReflections(
  ledger: string | undefined,
  db: string,
  io: Io,
): Promise<OpenReflections | undefined> {
  if (ledger === undefined) return { source: db, [Symbol.dispose]() {} };
  const { readFleetReflections } = await import("../store/pg/reflections.ts");
  const fleet = await readFleetReflections(ledger);
  if (!fleet.ok) {
    io.err(`${PROGRAM}: error: ${fleet.error}`);
    return undefined;
  }
  return { source: fleet.value, [Symbol.dispose]: () => fleet.value.db.close() };
}

/** The shared ledger's URL: `--ledger`, else `CHUMP_LEDGER_URL`; undefined: none. */
export function ledgerUrl(options: Pick<DispatchOptions, "ledger">, io: Io): string | undefined {
  return options.ledger ?? (io.env("CHUMP_LEDGER_URL") || undefined);
}

/** This host's name in the shared ledger: `--host-id`, else the host name. */
export function hostIdOf(options: Pick<DispatchOptions, "hostId">): string {
  if (options.hostId !== undefined) return options.hostId;
  try {
    return Deno.hostname();
  } catch {
    return "unknown-host";
  }
}

/**
 * Join the shared ledger of `--ledger` / `CHUMP_LEDGER_URL` (undefined: none;
 * null: it cannot be opened, said in one line). Rows it cannot take wait in
 * `<db>.pg-spool.jsonl`.
 */
export async function joinFleet(
  options:
    & Pick<DispatchOptions, "ledger" | "hostId">
    & Partial<Pick<DispatchOptions, "leaseTtlMs" | "takeOverAfterMs" | "fleetMax">>,
  io: Io,
  runId: string,
  db: string,
): Promise<Fleet | undefined | null> {
  const url = ledgerUrl(options, io);
  if (url === undefined) {
    const fleetOnly = [
      options.leaseTtlMs !== undefined && "--lease-ttl",
      options.takeOverAfterMs !== undefined && "--take-over-after",
      options.fleetMax !== undefined && "--fleet-max",
    ].filter(Boolean);
    if (fleetOnly.length > 0) {
      io.err(
        `warning: ${
          fleetOnly.join(", ")
        } apply to a shared ledger; without --ledger they do nothing`,
      );
    }
    return undefined;
  }
  const { openFleet } = await import("../store/pg/fleet.ts");
  const fleet = await openFleet(url, {
    hostId: hostIdOf(options),
    runId,
    spoolPath: `${db}.pg-spool.jsonl`,
    err: io.err,
    leaseTtlMs: options.leaseTtlMs,
    takeOverAfterMs: options.takeOverAfterMs,
    fleetMax: options.fleetMax,
  });
  if (!fleet.ok) {
    io.err(`${PROGRAM}: error: ${fleet.error}`);
    return null;
  }
  return fleet.value;
}
