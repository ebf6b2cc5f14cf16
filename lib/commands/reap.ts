/**
 * `reap`: end what a crashed orchestrator left behind (see watch/reap.ts),
 * after importing the spool: a dispatch whose outcome is still spooled is
 * ended by that outcome, not reaped as an orphan with a second reflection.
 *
 * @module
 */
import { EXIT, type Exit, type Io, runtimeError } from "../cli/io.ts";
import type { ReapOptions } from "../cli/commands.ts";
import { ok } from "../util/result.ts";
import { resolvePaths } from "./paths.ts";
import { exactSelfIdentity, processLiveness } from "../process/liveness.ts";
import { terminateGroup } from "../process/signal.ts";
import { Processes } from "../process/table.ts";
import { openLedgerIfExists } from "../store/ledger.ts";
import { openRunStore } from "../store/run_store.ts";
import { reapOrphans } from "../watch/reap.ts";
import { createGhProvider } from "../watch/providers/gh.ts";
import { createGitProvider } from "../watch/providers/git.ts";
import { joinFleet } from "./_sources.ts";

/**
 * Reap; returns the exit code.
 *
 * @example
 * ```ts ignore
 * const exit = await runReap(options, io);
 * ```
 */
export async function runReap(options: ReapOptions, io: Io): Promise<Exit> {
  const { db, repoRoot } = await resolvePaths(options);
  const processes = new Processes();
  const liveness = processLiveness(await exactSelfIdentity(processes), processes);
  const exists = openLedgerIfExists(db, liveness);
  if (!exists.ok) return runtimeError(exists.error);
  if (!exists.value) {
    io.out(`nothing to reap: no dispatches recorded in ${db}`);
    return ok(EXIT.ok);
  }
  exists.value.close();
  const reflect = !options.noReflect;
  const store = await openRunStore(db, { reflect, err: io.err, liveness });
  if (!store.ok) return runtimeError(store.error);
  // With a shared ledger, reaped outcomes end their shared leases and reach the fleet's tables.
  const joined = await joinFleet(options, io, crypto.randomUUID(), db);
  if (!joined.ok) {
    store.value.close();
    return joined;
  }
  const fleet = joined.value;
  try {
    const reaped = await reapOrphans({
      ledger: store.value.ledger,
      writer: fleet
        ? fleet.writer(store.value.writer, store.value.ledger, reflect)
        : store.value.writer,
      processes,
      terminate: (pgid, o) => terminateGroup(pgid, { ...o, processes }),
      killGraceMs: options.killGraceMs,
      out: io.out,
      err: io.err,
      provider: options.prProvider === "gh"
        ? createGhProvider({ cwd: repoRoot })
        : createGitProvider({ repoRoot, baseRef: options.baseRef }),
    });
    io.out(
      reaped.length === 0
        ? "nothing to reap: every recorded dispatch has a live orchestrator or has ended"
        : `reaped ${reaped.length} dispatch(es) left behind by a crashed orchestrator`,
    );
    return ok(EXIT.ok);
  } finally {
    await fleet?.heartbeat([], true);
    await fleet?.close();
    store.value.close();
  }
}
