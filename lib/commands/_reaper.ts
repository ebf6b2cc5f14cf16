/**
 * What `reap` and `stop` share: the DB's ledger and writer (the spool
 * imported first), the shared ledger when there is one (outcomes end their
 * shared leases and reach the fleet's tables too), the process table, and
 * the reaping dependencies built on them.
 *
 * @module
 */
import type { ReapOptions } from "../cli/commands.ts";
import { type Failure, type Io, runtimeError } from "../cli/io.ts";
import { exactSelfIdentity, type Liveness, processLiveness } from "../process/liveness.ts";
import { terminateGroup } from "../process/signal.ts";
import { Processes } from "../process/table.ts";
import { openRunStore } from "../store/run_store.ts";
import { ok, type Result } from "../util/result.ts";
import { createGhProvider } from "../watch/providers/gh.ts";
import { createGitProvider } from "../watch/providers/git.ts";
import type { ReapDeps } from "../watch/reap.ts";
import { joinFleet } from "./_sources.ts";

/** An open reaper: its dependencies, and how to let go of them. */
export interface Reaper {
  deps: ReapDeps;
  close(): Promise<void>;
}

/** Who this process is, and the process table it asks. */
export async function reaperLiveness(): Promise<{ processes: Processes; liveness: Liveness }> {
  const processes = new Processes();
  return { processes, liveness: processLiveness(await exactSelfIdentity(processes), processes) };
}

/**
 * Open what reaping the DB at `db` needs.
 *
 * @example
 * ```ts ignore
 * const reaper = await openReaper(options, io, db, repoRoot);
 * ```
 */
export async function openReaper(
  options: Omit<ReapOptions, "prProvider" | "baseRef"> & Partial<ReapOptions>,
  io: Io,
  paths: { db: string; repoRoot: string },
  who: { processes: Processes; liveness: Liveness },
): Promise<Result<Reaper, Failure>> {
  const reflect = !options.noReflect;
  const store = await openRunStore(paths.db, { reflect, err: io.err, liveness: who.liveness });
  if (!store.ok) return runtimeError(store.error);
  const joined = await joinFleet(options, io, crypto.randomUUID(), paths.db);
  if (!joined.ok) {
    store.value.close();
    return joined;
  }
  const fleet = joined.value;
  const { ledger, writer } = store.value;
  const { processes } = who;
  const { repoRoot } = paths;
  return ok({
    deps: {
      ledger,
      writer: fleet ? fleet.writer(writer, ledger, reflect) : writer,
      processes,
      terminate: (pgid, o) => terminateGroup(pgid, { ...o, processes }),
      killGraceMs: options.killGraceMs,
      out: io.out,
      err: io.err,
      provider: options.prProvider === undefined
        ? undefined
        : options.prProvider === "gh"
        ? createGhProvider({ cwd: repoRoot })
        : createGitProvider({ repoRoot, baseRef: options.baseRef ?? "origin/main" }),
    },
    async close() {
      await fleet?.heartbeat([], true);
      await fleet?.close();
      store.value.close();
    },
  });
}
