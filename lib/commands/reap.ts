/**
 * `reap`: end what a crashed orchestrator (or a run without `--watch`) left
 * behind (see watch/reap.ts), after importing the spool: a dispatch whose
 * outcome is still spooled is ended by that outcome, not reaped as an
 * orphan with a second reflection.
 *
 * @module
 */
import { EXIT, type Exit, type Io, runtimeError } from "../cli/io.ts";
import type { ReapOptions } from "../cli/commands.ts";
import { ok } from "../util/result.ts";
import { resolvePaths } from "./paths.ts";
import { openLedgerIfExists } from "../store/ledger.ts";
import { reapEscaped, reapOrphans } from "../watch/reap.ts";
import { openReaper, reaperLiveness } from "./_reaper.ts";

/**
 * Reap; returns the exit code.
 *
 * @example
 * ```ts ignore
 * const exit = await runReap(options, io);
 * ```
 */
export async function runReap(options: ReapOptions, io: Io): Promise<Exit> {
  const paths = await resolvePaths(options);
  const who = await reaperLiveness();
  const exists = openLedgerIfExists(paths.db, who.liveness);
  if (!exists.ok) return runtimeError(exists.error);
  if (!exists.value) {
    io.out(`nothing to reap: no dispatches recorded in ${paths.db}`);
    return ok(EXIT.ok);
  }
  exists.value.close();
  const reaper = await openReaper(options, io, paths, who);
  if (!reaper.ok) return reaper;
  try {
    const reaped = await reapOrphans(reaper.value.deps);
    const escaped = await reapEscaped(reaper.value.deps);
    if (reaped.length > 0) {
      io.out(`reaped ${reaped.length} dispatch(es) left behind by a crashed orchestrator`);
    } else if (escaped === 0) {
      io.out("nothing to reap: every recorded dispatch has a live orchestrator or has ended");
    }
    return ok(EXIT.ok);
  } finally {
    await reaper.value.close();
  }
}
