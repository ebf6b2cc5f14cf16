/**
 * `unpark GAP`: forget a gap's failures in a row (store/backoff.ts), so a
 * parked or backing-off gap may be dispatched again: in this host's ledger,
 * and with `--ledger` (or `CHUMP_LEDGER_URL`) for the whole fleet.
 *
 * @module
 */
import type { UnparkOptions } from "../cli/commands.ts";
import { EXIT, type Exit, type Io, runtimeError } from "../cli/io.ts";
import { processLiveness } from "../process/liveness.ts";
import type { GapBackoff } from "../store/backoff.ts";
import { openLedger } from "../store/ledger.ts";
import { ok, type Result } from "../util/result.ts";
import { oneLine } from "../util/text.ts";
import { ledgerUrl } from "./_sources.ts";
import { resolvePaths } from "./paths.ts";

/**
 * Unpark one gap; say what it had.
 *
 * @example
 * ```ts ignore
 * await runUnpark({ gapId: "A-1", ... }, io); // "unparked A-1: it had 3 failures in a row (last: exit code 1)"
 * ```
 */
export async function runUnpark(options: UnparkOptions, io: Io): Promise<Exit> {
  const { db } = await resolvePaths(options);
  const url = ledgerUrl(options, io);
  if (!url.ok) return url;
  const opened = openLedger(db, processLiveness());
  if (!opened.ok) return runtimeError(opened.error);
  let local: Result<GapBackoff | undefined>;
  try {
    local = await opened.value.unpark(options.gapId);
  } finally {
    opened.value.close();
  }
  if (!local.ok) return runtimeError(local.error);
  let fleet: GapBackoff | undefined;
  if (url.value !== undefined) {
    const { openPg } = await import("../store/pg/connect.ts");
    const { unparkShared } = await import("../store/pg/backoff.ts");
    const pg = await openPg(url.value);
    if (!pg.ok) return runtimeError(pg.error);
    try {
      const shared = await unparkShared(pg.value, options.gapId);
      if (!shared.ok) return runtimeError(shared.error);
      fleet = shared.value;
    } finally {
      await pg.value.close();
    }
  }
  const had = fleet ?? local.value;
  const id = oneLine(options.gapId);
  if (!had) {
    io.out(`${id} was neither parked nor backing off${url.value ? " (in the fleet)" : ""}`);
    return ok(EXIT.ok);
  }
  io.out(
    `unparked ${id}: it had ${had.failures} failure${had.failures === 1 ? "" : "s"} in a row ` +
      `(last: ${oneLine(had.reason, 200)}); the next run may dispatch it` +
      (url.value ? " (on any host)" : ""),
  );
  return ok(EXIT.ok);
}
