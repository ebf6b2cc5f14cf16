/**
 * `logs GAP-ID|LEASE-ID [-f] [--lines N]`: an agent's output, from the files
 * its waiter writes (process/waiter.ts): the last lines of its stdout and
 * stderr files, each under a `==> path <==` header as `tail` prints several
 * files; with `-f`, then every new line as it comes (the file being printed
 * read first, so a header comes only when the other file has new lines),
 * until the agent ended and everything was printed, then `agent ended (exit
 * N)` and exit N (or Ctrl-C). An agent that is gone without an exit status
 * (its waiter was killed with it) ends the follow too, exit 1. A gap id
 * means its newest dispatch. Read-only.
 *
 * @module
 */
import { EXIT, type Exit, type Io, runtimeError, usageError } from "../cli/io.ts";
import type { LogsOptions } from "../cli/commands.ts";
import { stopOnSignals } from "../process/interrupt.ts";
import { resolvePaths } from "./paths.ts";
import { FOLLOW_MS } from "../process/follow.ts";
import { lastLines, readFrom } from "../process/log_read.ts";
import { agentFiles, readStatus } from "../process/waiter.ts";
import { findLease, type Lease } from "../store/ledger.ts";
import { groupOwner, Processes } from "../process/table.ts";
import { processLiveness } from "../process/liveness.ts";
import { ok } from "../util/result.ts";
import { sleep } from "../util/sleep.ts";

/** Print (and follow) one dispatch's output; returns the exit code. */
export async function runLogs(options: LogsOptions, io: Io): Promise<Exit> {
  const { db } = await resolvePaths(options);
  const found = await findLease(db, options.target, processLiveness());
  if (!found.ok) return usageError(found.error);
  const lease = found.value;
  if (lease.logBase === null) {
    return runtimeError(
      `lease ${lease.id} (${lease.gapId}) kept no log files ` +
        "(dispatched by an older version, or its agent never started)",
    );
  }
  const files = agentFiles(lease.logBase);
  const printer = linePrinter(io);
  const offsets = new Map<string, number>();
  for (const path of [files.out, files.err]) {
    const { lines, end } = await lastLines(path, options.lines);
    printer.header(path);
    for (const line of lines) io.out(line);
    offsets.set(path, end);
  }
  if (!options.follow) return ok(EXIT.ok);
  using stop = stopOnSignals();
  const processes = new Processes();
  const reload = async () => {
    const again = await findLease(db, String(lease.id), processLiveness());
    return again.ok ? again.value : undefined;
  };
  let ended: Ended | undefined;
  while (!stop.signal.aborted && ended === undefined) {
    // Read the status first: once it is there, what follows is the last of the output.
    ended = await endOf(files, lease, processes, reload);
    // The file printed last first: a header only when the other one has new lines.
    const order = printer.current === files.err ? [files.err, files.out] : [files.out, files.err];
    for (const path of order) {
      const { text, end } = await readFrom(path, offsets.get(path) ?? 0);
      offsets.set(path, end);
      if (text !== "") printer.text(path, text);
    }
    if (ended === undefined) await sleep(FOLLOW_MS, stop.signal);
  }
  printer.flush();
  if (ended === undefined) return ok(EXIT.ok); // Ctrl-C
  if (ended.code === undefined) {
    io.out("agent ended (its exit status was not recorded: its waiter was ended with it)");
    return ok(EXIT.failure);
  }
  io.out(`agent ended (exit ${ended.code})`);
  return ok(ended.code);
}

/** How the followed agent ended: its exit code, or undefined when none was recorded. */
interface Ended {
  code?: number;
}

/** Has the agent ended: its status file, or its process gone without one? */
async function endOf(
  files: ReturnType<typeof agentFiles>,
  lease: Lease,
  processes: Processes,
  reload: () => Promise<Lease | undefined>,
): Promise<Ended | undefined> {
  const code = await readStatus(files);
  if (code !== undefined) return { code };
  let agent = lease;
  if (agent.pid === null) {
    // Followed before its agent started: look again at the lease (it may have ended without one).
    const again = await reload();
    if (again?.state === "ended" && again.pid === null) return {};
    if (!again) return undefined;
    agent = again;
  }
  const pid = agent.pid;
  if (pid === null) return undefined;
  const table = await processes.table({ fresh: true });
  if (table.unknown || groupOwner(table, pid, agent.pidStart) !== "none") return undefined;
  // Gone: a status written as it went is read once more before saying there is none.
  const last = await readStatus(files);
  return last === undefined ? {} : { code: last };
}

/** Prints whole lines under `==> path <==` headers, a new header when the file changes. */
function linePrinter(io: Io) {
  let current = "";
  const partial = new Map<string, string>();
  return {
    /** The file whose lines were printed last. */
    get current() {
      return current;
    },
    header(path: string) {
      io.out(`==> ${path} <==`);
      current = path;
    },
    text(path: string, text: string) {
      const lines = ((partial.get(path) ?? "") + text).split("\n");
      partial.set(path, lines.pop()!);
      if (lines.length === 0) return;
      if (path !== current) this.header(path);
      for (const line of lines) io.out(line);
    },
    flush() {
      for (const [path, rest] of partial) {
        if (rest === "") continue;
        if (path !== current) this.header(path);
        io.out(rest);
      }
      partial.clear();
    },
  };
}
