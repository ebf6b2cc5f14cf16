/**
 * `reap`: end what a crashed orchestrator left behind (see watch/reap.ts).
 *
 * @module
 */
import { EXIT, type Io } from "../cli/io.ts";
import { PROGRAM, type ReapOptions } from "../cli/parse.ts";
import { resolvePaths } from "../cli/paths.ts";
import { terminateGroup } from "../process/signal.ts";
import { openLedger, openLedgerIfExists } from "../store/ledger.ts";
import { createNoopWriter, createSqliteWriter } from "../store/writer.ts";
import { reapOrphans } from "../watch/reap.ts";
import { createGhProvider } from "../watch/providers/gh.ts";
import { createGitProvider } from "../watch/providers/git.ts";

/** Reap; returns the exit code. */
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
  const ledger = openLedger(db);
  if (!ledger.ok) {
    io.err(`${PROGRAM}: error: ${ledger.error}`);
    return EXIT.failure;
  }
  const writer = options.reflect ? createSqliteWriter(db) : createNoopWriter();
  try {
    const reaped = await reapOrphans({
      ledger: ledger.value,
      writer,
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
    writer.close();
    ledger.value.close();
  }
}
