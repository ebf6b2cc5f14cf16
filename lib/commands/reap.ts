/**
 * `reap`: end what a crashed orchestrator left behind (see watch/reap.ts),
 * after importing the spool: a dispatch whose outcome is still spooled is
 * ended by that outcome, not reaped as an orphan with a second reflection.
 *
 * @module
 */
import { EXIT, type Io } from "../cli/io.ts";
import { PROGRAM, type ReapOptions } from "../cli/parse.ts";
import { resolvePaths } from "../cli/paths.ts";
import { terminateGroup } from "../process/signal.ts";
import { openLedgerIfExists } from "../store/ledger.ts";
import { openRunStore } from "../store/run_store.ts";
import { reapOrphans } from "../watch/reap.ts";
import { createGhProvider } from "../watch/providers/gh.ts";
import { createGitProvider } from "../watch/providers/git.ts";
import { joinFleet } from "./sources.ts";

/**
 * Reap; returns the exit code.
 *
 * @example
 * ```ts ignore
 * const code = await runReap({ db: "sessions/chump_memory.db", killGraceMs: 30_000, reflect: true }, io);
 * ```
 */
export async function runReap(options: ReapOptions, io: Io): Promise<number> {
  const { db, repoRoot } = await resolvePaths(options);
  const exists = openLedgerIfExists(db);
  if (!exists.ok) {
    io.err(`${PROGRAM}: error: ${exists.error}`);
    return EXIT.failure;
  }
  if (!exists.value) {
    io.out(`nothing to reap: no dispatches recorded in ${db}`);
    return EXIT.ok;
  }
  exists.value.close();
  const store = await openRunStore(db, { reflect: options.reflect, err: io.err });
  if (!store.ok) {
    io.err(`${PROGRAM}: error: ${store.error}`);
    return EXIT.failure;
  }
  // With a shared ledger, reaped outcomes end their shared leases and reach the fleet's tables.
  const fleet = await joinFleet(options, io, crypto.randomUUID(), db);
  if (fleet === null) {
    store.value.close();
    return EXIT.failure;
  }
  try {
    const reaped = await reapOrphans({
      ledger: store.value.ledger,
      writer: fleet
        ? fleet.writer(store.value.writer, store.value.ledger, options.reflect)
        : store.value.writer,
      terminate: terminateGroup,
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
    return EXIT.ok;
  } finally {
    await fleet?.heartbeat([], true);
    await fleet?.close();
    store.value.close();
  }
}
