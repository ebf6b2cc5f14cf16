/**
 * `status`: live and recent dispatches from the lease ledger, with whether
 * each agent and orchestrator is still alive, who watches it (watched,
 * adopted, unwatched, orphaned, settled) and where its output is logged.
 * Read-only (also where this process cannot write).
 *
 * @module
 */
import { EXIT, type Exit, type Io, runtimeError } from "../cli/io.ts";
import type { StatusOptions } from "../cli/commands.ts";
import { formatTable } from "../cli/table.ts";
import { formatUsd } from "../cost/prices.ts";
import { stopOnSignals } from "../process/interrupt.ts";
import { ok } from "../util/result.ts";
import { sleep } from "../util/sleep.ts";
import { cutTo, oneLine, terminalWidth } from "../util/text.ts";
import { readHeldBack, readStatusRows } from "../watch/status.ts";
import { resolvePaths } from "./paths.ts";

/**
 * Show the ledger; returns the exit code.
 *
 * @example
 * ```ts ignore
 * const code = await runStatus({ db: "sessions/chump_memory.db", limit: 20, json: false }, io);
 * ```
 */
export async function runStatus(options: StatusOptions, io: Io): Promise<Exit> {
  if (!options.watch) return await showStatus(options, io);
  // Redraw until Ctrl-C: on a terminal in place (home, clear), else one block after another.
  using stop = stopOnSignals();
  const tty = Deno.stdout.isTerminal();
  // On a terminal every line is cut to its width, as the live view's: nothing wraps.
  const screen: Io = tty ? { ...io, out: (text) => cutLines(text, io) } : io;
  while (!stop.signal.aborted) {
    if (tty) io.out("\x1b[H\x1b[2J");
    screen.out(
      `status at ${new Date().toISOString()} (every ${options.intervalMs} ms; Ctrl-C stops)`,
    );
    const shown = await showStatus(options, screen);
    if (!shown.ok) return shown;
    if (!tty) io.out("");
    await sleep(options.intervalMs, stop.signal);
  }
  return ok(EXIT.ok);
}

/** Each line of `text` cut to the terminal's width now. */
function cutLines(text: string, io: Io): void {
  const width = terminalWidth();
  io.out(text.split("\n").map((line) => cutTo(line, width)).join("\n"));
}

/** One `status` listing. */
async function showStatus(options: StatusOptions, io: Io): Promise<Exit> {
  if (options.ledger !== undefined) return await showFleet(options.ledger, options, io);
  const { db } = await resolvePaths(options);
  const read = await readStatusRows(db, options.limit);
  if (!read.ok) return runtimeError(read.error);
  const rows = read.value;
  if (!rows) {
    if (options.json) return ok(EXIT.ok);
    io.out(`no dispatches recorded in ${db}`);
    return ok(EXIT.ok);
  }
  if (options.json) {
    for (const r of rows) io.out(JSON.stringify(r));
    return ok(EXIT.ok);
  }
  io.out(formatTable(
    [
      "lease",
      "gap",
      "state",
      "outcome",
      "pid",
      "alive",
      "owner",
      "watch",
      "elapsed_s",
      "cost",
      "worktree",
      "branch",
      "log",
    ],
    rows.map((r) => [
      String(r.lease),
      r.gap,
      (r.state === "running" && r.orchestratorAlive === false ? "orphaned" : r.state) +
      (r.fixRound ? ` (fix ${r.fixRound})` : ""),
      r.outcome ?? "",
      r.pid === null ? "" : String(r.pid),
      r.pid === null ? "" : r.pidAlive ? "yes" : "no",
      `PID ${r.orchestratorPid}`,
      r.watch,
      String(r.elapsedS),
      r.costUsd === null ? "" : formatUsd(r.costUsd),
      r.worktree,
      r.branch,
      r.log ?? "",
    ]),
  ));
  const held = await readHeldBack(db);
  if (held.length > 0) io.out("\nheld back after failures in a row ('unpark GAP' to release):");
  for (const h of held) io.out(`  ${oneLine(h.gapId)}: ${h.why}`);
  return ok(EXIT.ok);
}

/** `status --ledger`: the whole fleet's leases from the shared ledger, newest first. */
async function showFleet(url: string, options: StatusOptions, io: Io): Promise<Exit> {
  const { listFleetLeases } = await import("../store/pg/claims.ts");
  const read = await listFleetLeases(url, options.limit);
  if (!read.ok) return runtimeError(read.error);
  if (options.json) {
    for (const l of read.value) io.out(JSON.stringify(l));
    return ok(EXIT.ok);
  }
  if (read.value.length === 0) {
    io.out("no dispatches recorded in the shared ledger");
    return ok(EXIT.ok);
  }
  io.out(formatTable(
    ["lease", "gap", "host", "state", "outcome", "gen", "elapsed_s", "heartbeat_s", "taken_by"],
    read.value.map((l) => [
      String(l.id),
      l.gapId,
      l.host,
      l.state,
      l.outcome ?? "",
      String(l.generation),
      String(l.elapsedS),
      l.heartbeatAgeS === null ? "" : String(l.heartbeatAgeS),
      l.takenBy ?? "",
    ]),
  ));
  return ok(EXIT.ok);
}
