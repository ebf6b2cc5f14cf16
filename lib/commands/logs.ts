/**
 * `logs GAP-ID|LEASE-ID [-f] [--lines N]`: an agent's output, from the files
 * its waiter writes (process/waiter.ts): the last lines of its stdout and
 * stderr files, each under a `==> path <==` header as `tail` prints several
 * files; with `-f`, then every new line as it comes (a header whenever the
 * file changes), until the agent ended and everything was printed, or
 * Ctrl-C. A gap id means its newest dispatch. Read-only.
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
import { findLease } from "../store/ledger.ts";
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
  while (!stop.signal.aborted) {
    // Read the status first: once it is there, what follows is the last of the output.
    const ended = (await readStatus(files)) !== undefined;
    for (const path of [files.out, files.err]) {
      const { text, end } = await readFrom(path, offsets.get(path) ?? 0);
      offsets.set(path, end);
      if (text !== "") printer.text(path, text);
    }
    if (ended) break;
    await sleep(FOLLOW_MS, stop.signal);
  }
  printer.flush();
  return ok(EXIT.ok);
}

/** Prints whole lines under `==> path <==` headers, a new header when the file changes. */
function linePrinter(io: Io) {
  let current = "";
  const partial = new Map<string, string>();
  return {
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
