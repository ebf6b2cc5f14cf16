/**
 * `stop GAP|LEASE`: end one dispatch's agent (TERM, the kill grace, KILL,
 * its whole process group) and record it `killed`, `stopped by the
 * operator`, whoever watches it (its lease is taken over first, so a run
 * that watches it does not record it a second time). A gap id means its
 * newest dispatch.
 *
 * @module
 */
import type { StopOptions } from "../cli/commands.ts";
import { EXIT, type Exit, type Io, runtimeError, usageError } from "../cli/io.ts";
import { findLease } from "../store/ledger.ts";
import { ok } from "../util/result.ts";
import { stopLease } from "../watch/reap.ts";
import { openReaper, reaperLiveness } from "./_reaper.ts";
import { resolvePaths } from "./paths.ts";

/**
 * Stop one dispatch; returns the exit code.
 *
 * @example
 * ```ts ignore
 * const exit = await runStop({ ...options, target: "AUTO-013" }, io);
 * ```
 */
export async function runStop(options: StopOptions, io: Io): Promise<Exit> {
  const paths = await resolvePaths(options);
  const who = await reaperLiveness();
  const found = await findLease(paths.db, options.target, who.liveness);
  if (!found.ok) return usageError(found.error);
  const lease = found.value;
  if (lease.state === "ended") {
    return runtimeError(
      `lease ${lease.id} (${lease.gapId}) has ended already (${lease.outcome ?? "no outcome"}): ` +
        "nothing to stop",
    );
  }
  const reaper = await openReaper(options, io, paths, who);
  if (!reaper.ok) return reaper;
  try {
    const stopped = await stopLease(reaper.value.deps, lease);
    return stopped.ok ? ok(EXIT.ok) : runtimeError(stopped.error);
  } finally {
    await reaper.value.close();
  }
}
