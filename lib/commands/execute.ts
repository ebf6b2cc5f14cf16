/**
 * The execute command (`--no-dry-run`, CONTRACT §3-§6), and `watch`: check
 * what the run will need (commands/_prepare.ts), import spooled
 * reflections, adopt and reap what a gone run left, then dispatch (and with
 * `--watch` follow every agent to an outcome).
 *
 * @module
 */
import type { DispatchOptions } from "../cli/catalog.ts";
import { type Exit, type Io, PROGRAM, runtimeError } from "../cli/io.ts";
import { gitWorkspace } from "../git/workspace.ts";
import { listenForInterrupts } from "../process/interrupt.ts";
import { exactSelfIdentity, processLiveness } from "../process/liveness.ts";
import { terminateGroup, type TerminateOptions } from "../process/signal.ts";
import { Processes } from "../process/table.ts";
import { logsDirFor } from "../process/waiter.ts";
import type { Ledger } from "../store/ledger.ts";
import { openRunStore } from "../store/run_store.ts";
import type { ReflectionWriter } from "../store/writer.ts";
import { DEFAULT_DEADLINES, formatDuration } from "../util/duration.ts";
import { ok } from "../util/result.ts";
import { terminalWidth } from "../util/text.ts";
import { type AdoptedDispatch, adoptOrphans } from "../watch/adopt.ts";
import { type Events, fileEvents, jsonLineEvents, NO_EVENTS } from "../watch/events.ts";
import { createLiveView, type LiveView } from "../watch/live.ts";
import { createGhProvider } from "../watch/providers/gh.ts";
import { createGitProvider } from "../watch/providers/git.ts";
import type { PrProvider } from "../watch/providers/types.ts";
import { reapEscaped, reapOrphans } from "../watch/reap.ts";
import { runDispatches } from "../watch/run.ts";
import type { RunConfig } from "../watch/state.ts";
import { roundUsd } from "../cost/prices.ts";
import { BUDGET_DAY_MS } from "../cost/budget.ts";
import {
  outcomeCounts,
  runExitCode,
  type RunResult,
  spentUsd,
  summaryLines,
} from "../watch/summary.ts";
import { prepare, type Prepared } from "./_prepare.ts";
import { joinFleet } from "./_sources.ts";

/**
 * Longest a run's end waits for a shared ledger that does not answer to take
 * its outcomes (shorter when `--lease-ttl` is: past it the leases are suspect anyway).
 */
const LEDGER_EXIT_WAIT_MS = 60_000;

/** How {@linkcode runExecute} runs. */
export interface ExecuteMode {
  /** `watch`: adopt and watch what gone orchestrators left, dispatch nothing new. */
  adoptOnly?: boolean;
}

/**
 * Dispatch for real (or, `adoptOnly`, only adopt and watch).
 *
 * @example
 * ```ts ignore
 * const exit = await runExecute(options, io);
 * ```
 */
export async function runExecute(
  options: DispatchOptions,
  io: Io,
  mode: ExecuteMode = {},
): Promise<Exit> {
  const prepared = await prepare(options, io, mode.adoptOnly ?? false);
  if (!prepared.ok) return prepared;
  const { paths } = prepared.value;
  const runId = crypto.randomUUID();
  // Listening from here on: a Ctrl-C during the spool import or the reap below
  // lets them finish, then stops the run before it dispatches anything (exit 130).
  using interrupt = listenForInterrupts(io.err);
  const reflect = !options.noReflect;
  const processes = new Processes();
  const liveness = processLiveness(await exactSelfIdentity(processes), processes);
  const opened = await openRunStore(paths.db, { reflect, err: io.err, liveness });
  if (!opened.ok) return runtimeError(opened.error);
  const joined = await joinFleet(options, io, runId, paths.db);
  if (!joined.ok) {
    opened.value.close();
    return joined;
  }
  const shared = joined.value;
  const { ledger } = opened.value;
  // With a shared ledger, each outcome goes there first (and is spooled when it cannot).
  const writer = shared ? shared.writer(opened.value.writer, ledger, reflect) : opened.value.writer;
  try {
    const code = await execute(options, io, mode, prepared.value, {
      runId,
      ledger,
      writer,
      shared,
      interrupt,
      processes,
    });
    return ok(code);
  } finally {
    await shared?.close();
    opened.value.close();
  }
}

/** The run's settings, from the flags and what was prepared. */
function runConfigOf(options: DispatchOptions, io: Io, prepared: Prepared): RunConfig {
  const { paths, startCommit, run } = prepared;
  return {
    repoRoot: paths.repoRoot,
    baseRef: options.baseRef,
    startCommit,
    maxParallel: options.maxParallel,
    maxTotal: options.maxTotal,
    order: options.order,
    watch: options.watch,
    tickMs: tickOf(options, io),
    deadlines: run.deadlines,
    maxWatchMs: options.maxWatchMs,
    exitGraceTicks: options.exitGraceTicks,
    killGraceMs: options.killGraceMs,
    idleTimeoutMs: options.idleTimeoutMs,
    agent: run.agent,
    routing: prepared.routing,
    ...prepared.learned,
    ledgerExitWaitMs: Math.min(options.leaseTtlMs ?? LEDGER_EXIT_WAIT_MS, LEDGER_EXIT_WAIT_MS),
    prices: prepared.prices,
    backoff: { retryAfterMs: options.retryAfterMs, parkAfter: options.parkAfter },
    fixRounds: options.prProvider === "gh" ? options.fixRounds : 0,
    autoMerge: options.autoMerge,
    pauseWhenBaseRed: options.pauseWhenBaseRed,
    budgets: {
      gapUsd: options.budgetGapUsd,
      runUsd: options.budgetRunUsd,
      dayUsd: options.budgetDayUsd,
    },
  };
}

/** The branch a base ref names on GitHub: `origin/main` and `refs/heads/main` are `main`. */
function branchOfRef(ref: string): string {
  return ref.replace(/^refs\/heads\//, "").replace(/^refs\/remotes\/[^/]+\//, "")
    .replace(/^origin\//, "");
}

/** What a run holds open while it runs. */
interface Held {
  runId: string;
  ledger: Ledger;
  writer: ReflectionWriter;
  shared?: Parameters<typeof runDispatches>[2]["shared"];
  interrupt: Parameters<typeof runDispatches>[2]["interrupt"];
  processes: Processes;
}

/** The run itself: adopt (or note orphans), dispatch and watch, report; its exit code. */
async function execute(
  options: DispatchOptions,
  io: Io,
  mode: ExecuteMode,
  prepared: Prepared,
  held: Held,
): Promise<number> {
  const { paths, gaps, run } = prepared;
  const { events, plain: lines } = eventsOf(options, held.runId, io);
  const live = liveViewOf(options);
  // On the live view, both streams' lines go above the table (a raw one would be drawn over).
  const plain: Io = live
    ? { ...lines, out: (l) => live.line(l), err: (l) => live.line(l, "err") }
    : lines;
  const provider = options.prProvider === "gh"
    ? createGhProvider({
      cwd: paths.repoRoot,
      baseBranch: options.pauseWhenBaseRed ? branchOfRef(options.baseRef) : undefined,
    })
    : createGitProvider({ repoRoot: paths.repoRoot, baseRef: options.baseRef });
  events.emit("run_started", {}, {
    pid: Deno.pid,
    watch: options.watch,
    max_parallel: options.maxParallel,
    adopt_only: mode.adoptOnly ?? false,
  });
  const adopted = options.watch
    ? await adoptAndReap(options, paths.repoRoot, { ...held, provider, io: plain })
    : await noteOrphans(held.ledger, io);
  const result = await runDispatches(gaps, runConfigOf(options, io, prepared), {
    workspace: gitWorkspace(paths.repoRoot),
    spawner: run.spawner,
    provider,
    writer: held.writer,
    ledger: held.ledger,
    terminate: terminatorOf(held.processes),
    processes: held.processes,
    out: plain.out,
    err: plain.err,
    interrupt: held.interrupt,
    logsDir: logsDirFor(paths.db),
    logCapBytes: options.logCapBytes,
    runId: held.runId,
    shared: held.shared,
    adopted,
    events,
    live,
    daySpend: () =>
      held.shared?.spentByOthers?.() ?? held.ledger.spentByOthers(Date.now() - BUDGET_DAY_MS),
  });
  live?.close();
  report(result, options.watch, plain, mode);
  const code = runExitCode(result, options.watch);
  events.emit("run_finished", {}, {
    exit_code: code,
    ...outcomeCounts(result),
    spent_usd: result.outcomes.some((o) => o.cost) ? roundUsd(spentUsd(result)) : null,
  });
  return code;
}

/**
 * The live table, when it is wanted: `--watch`, stdout a terminal, no
 * `--no-live`, and stdout not taken by `--events -`.
 */
function liveViewOf(options: DispatchOptions): LiveView | undefined {
  if (!options.watch || options.noLive || options.events === "-") return undefined;
  if (!Deno.stdout.isTerminal()) return undefined;
  const encoder = new TextEncoder();
  const writeTo = (stream: { writeSync(p: Uint8Array): number }) => (text: string) => {
    try {
      let rest = encoder.encode(text);
      while (rest.length > 0) rest = rest.subarray(stream.writeSync(rest));
    } catch {
      // The terminal is gone (a hangup): nothing to draw on.
    }
  };
  return createLiveView(writeTo(Deno.stdout), terminalWidth, writeTo(Deno.stderr));
}

/**
 * Where this run's events go (`--events`), and the plain lines' output:
 * with `--events -` the events take stdout and the plain lines are dropped.
 */
function eventsOf(
  options: DispatchOptions,
  runId: string,
  io: Io,
): { events: Events; plain: Io } {
  if (options.events === undefined) return { events: NO_EVENTS, plain: io };
  if (options.events === "-") {
    return { events: jsonLineEvents(runId, io.out, io.err), plain: { ...io, out: () => {} } };
  }
  return { events: fileEvents(options.events, runId, io.err), plain: io };
}

/**
 * A watching run first takes over what gone orchestrators left (adoption:
 * their agents are watched, not killed), then reaps what cannot be adopted
 * (a lease whose agent never started).
 */
/**
 * The run's tick: `--tick`, but with the gh provider never under
 * `--gh-min-tick` (each tick is one GitHub request), with a warning when it
 * is raised.
 */
function tickOf(options: DispatchOptions, io: Io): number {
  const { tickMs, ghMinTickMs, prProvider } = options;
  if (!options.watch || prProvider !== "gh" || tickMs >= ghMinTickMs) return tickMs;
  io.err(
    `warning: --tick ${formatDuration(tickMs)} is under the gh provider's floor: ticking every ` +
      `${formatDuration(ghMinTickMs)} (each tick is one GitHub request; GitHub allows 5,000 an ` +
      "hour; see --gh-min-tick)",
  );
  return ghMinTickMs;
}

async function adoptAndReap(
  options: DispatchOptions,
  repoRoot: string,
  store: Held & { provider: PrProvider; io: Io },
): Promise<AdoptedDispatch[]> {
  const { ledger, writer, provider, io, processes } = store;
  const adopted = await adoptOrphans({
    ledger,
    processes,
    repoRoot,
    baseRef: options.baseRef,
    deadlines: options.deadlines ?? DEFAULT_DEADLINES,
    maxWatchMs: options.maxWatchMs,
    logCapBytes: options.logCapBytes,
    out: io.out,
    err: io.err,
  });
  const reapDeps = {
    ledger,
    writer,
    processes,
    terminate: terminatorOf(processes),
    killGraceMs: options.killGraceMs,
    out: io.out,
    err: io.err,
    provider,
  };
  const reaped = await reapOrphans(reapDeps);
  await reapEscaped(reapDeps);
  if (reaped.length > 0) {
    io.out(`reaped ${reaped.length} dispatch(es) left behind by a crashed orchestrator`);
  }
  return adopted;
}

/** A run that does not watch leaves others' agents alone, and says how to pick them up. */
async function noteOrphans(ledger: Ledger, io: Io): Promise<undefined> {
  const orphans = await ledger.orphans();
  if (!orphans.ok) io.err(`warning: ${orphans.error}; unwatched dispatches not looked for`);
  else if (orphans.value.length > 0) {
    io.err(
      `note: ${orphans.value.length} dispatch(es) of a stopped orchestrator are unwatched: ` +
        `'${PROGRAM} watch' adopts them, '${PROGRAM} reap' ends them`,
    );
  }
  return undefined;
}

/** Ending a group, on the run's process table (its kills share their listings). */
function terminatorOf(processes: Processes) {
  return (pgid: number, o: Omit<TerminateOptions, "processes">) =>
    terminateGroup(pgid, { ...o, processes });
}

/** The run's closing lines on stdout. */
function report(result: RunResult, watch: boolean, io: Io, mode: ExecuteMode): void {
  const none = result.outcomes.length + result.failures.length + result.detached +
      (result.lost?.length ?? 0) === 0;
  if (none && !result.interrupted) {
    io.out(
      mode.adoptOnly
        ? "nothing to watch: no dispatch was left by a stopped orchestrator"
        : "nothing to dispatch: no pickable gap (see the dry run for why)",
    );
  } else if (watch || result.interrupted) {
    for (const line of summaryLines(result)) io.out(line);
  } else {
    io.out(
      `${result.detached} agent(s) started and left running unwatched; ` +
        "use --watch to follow them to an outcome and write reflections",
    );
  }
}
