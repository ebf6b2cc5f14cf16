/**
 * The execute command (`--no-dry-run`, CONTRACT §3-§6): check what the run
 * will need, import spooled reflections, reap what a crashed run left, then
 * dispatch (and with `--watch` follow every agent to an outcome).
 *
 * @module
 */
import { join } from "node:path";
import { armAgent } from "../dispatch/agent.ts";
import { Cascade } from "../learn/cascade.ts";
import { Cooldowns } from "../learn/classify.ts";
import { loadLearning } from "../learn/load.ts";
import { seededRandom } from "../learn/policy.ts";
import { adaptiveDeadlines, deadlinesLine } from "../learn/deadlines.ts";
import { promptLessons } from "../learn/lessons.ts";
import { queryReflections, type ReflectionSource } from "../store/query.ts";
import { joinFleet, ledgerUrl, openReflections } from "./sources.ts";
import { gapDomain } from "../store/reflection.ts";
import { EXIT, type Io } from "../cli/io.ts";
import { type DispatchOptions, PROGRAM, type WatchFlags } from "../cli/parse.ts";
import { resolvePaths } from "../cli/paths.ts";
import { firstCannotRun, missingWrite } from "../cli/permissions.ts";
import { listenForInterrupts } from "../process/interrupt.ts";
import { gitWorkspace } from "../git/workspace.ts";
import { applyFaults, type Fault, parseFaults } from "../dispatch/faults.ts";
import { gitTopLevel, resolveCommit } from "../git/git.ts";
import { realSpawner } from "../process/spawn.ts";
import { logsDirFor } from "../process/waiter.ts";
import { terminateGroup } from "../process/signal.ts";
import { openRunStore } from "../store/run_store.ts";
import { runDispatches } from "../watch/run.ts";
import type { RunConfig } from "../watch/state.ts";
import { outcomeCounts, runExitCode, type RunResult, summaryLines } from "../watch/summary.ts";
import { checkGhAuth, createGhProvider } from "../watch/providers/gh.ts";
import { createGitProvider } from "../watch/providers/git.ts";
import { reapOrphans } from "../watch/reap.ts";
import { type AdoptedDispatch, adoptOrphans } from "../watch/adopt.ts";
import type { Ledger } from "../store/ledger.ts";
import type { ReflectionWriter } from "../store/writer.ts";
import type { PrProvider } from "../watch/providers/types.ts";
import { type Events, fileEvents, jsonLineEvents, NO_EVENTS } from "../watch/events.ts";
import { createLiveView, type LiveView } from "../watch/live.ts";
import { agentTemplate, loadAndWarn } from "./dry_run.ts";
import type { Gap } from "../backlog/load.ts";
import type { AgentTemplate } from "../dispatch/agent.ts";
import { ok } from "../util/result.ts";

/** How {@linkcode runExecute} runs. */
export interface ExecuteMode {
  /** `watch`: adopt and watch what gone orchestrators left, dispatch nothing new. */
  adoptOnly?: boolean;
}

/** Dispatch for real (or, `adoptOnly`, only adopt and watch); returns the exit code. */
export async function runExecute(
  options: DispatchOptions,
  io: Io,
  mode: ExecuteMode = {},
): Promise<number> {
  const prepared = await prepare(options, io, mode);
  if (typeof prepared === "number") return prepared;
  const { paths, gaps, startCommit, run } = prepared;
  const runId = crypto.randomUUID();
  const { events, plain: lines } = eventsOf(options, runId, io);
  const live = liveViewOf(options);
  const plain: Io = live ? { ...lines, out: (l) => live.line(l) } : lines;
  // Listening from here on: a Ctrl-C during the spool import or the reap below
  // lets them finish, then stops the run before it dispatches anything (exit 130).
  using interrupt = listenForInterrupts(io.err);
  const opened = await openRunStore(paths.db, { reflect: options.reflect, err: io.err });
  if (!opened.ok) {
    io.err(`${PROGRAM}: error: ${opened.error}`);
    return EXIT.failure;
  }
  const { ledger } = opened.value;
  const shared = await joinFleet(options, io, runId, paths.db);
  if (shared === null) {
    opened.value.close();
    return EXIT.failure;
  }
  // With a shared ledger, each outcome goes there first (and is spooled when it cannot).
  const writer = shared
    ? shared.writer(opened.value.writer, ledger, options.reflect)
    : opened.value.writer;
  const provider = options.prProvider === "gh"
    ? createGhProvider({ cwd: paths.repoRoot })
    : createGitProvider({ repoRoot: paths.repoRoot, baseRef: options.baseRef });
  try {
    events.emit("run_started", {}, {
      pid: Deno.pid,
      watch: options.watch,
      max_parallel: options.maxParallel,
      adopt_only: mode.adoptOnly ?? false,
    });
    const adopted = options.watch
      ? await adoptAndReap(options, paths.repoRoot, { ledger, writer, provider, io: plain })
      : await noteOrphans(ledger, io);
    const result = await runDispatches(gaps, {
      repoRoot: paths.repoRoot,
      baseRef: options.baseRef,
      startCommit,
      maxParallel: options.maxParallel,
      maxTotal: options.maxTotal,
      order: options.order,
      watch: options.watch,
      tickMs: options.tickMs,
      deadlines: run.deadlines,
      maxWatchMs: options.maxWatchMs,
      exitGraceTicks: options.exitGraceTicks,
      killGraceMs: options.killGraceMs,
      idleTimeoutMs: options.idleTimeoutMs,
      agent: run.agent,
      routing: prepared.routing,
      ...prepared.learned,
    }, {
      workspace: gitWorkspace(paths.repoRoot),
      spawner: run.spawner,
      provider,
      writer,
      ledger,
      terminate: terminateGroup,
      out: plain.out,
      err: io.err,
      interrupt,
      logsDir: logsDirFor(paths.db),
      logCapBytes: options.logCapBytes,
      runId,
      shared,
      adopted,
      events,
      live,
    });
    live?.close();
    report(result, options.watch, plain, mode);
    const code = runExitCode(result, options.watch);
    events.emit("run_finished", {}, { exit_code: code, ...outcomeCounts(result) });
    return code;
  } finally {
    await shared?.close();
    opened.value.close();
  }
}

/**
 * The live table, when it is wanted: `--watch`, stdout a terminal, no
 * `--no-live`, and stdout not taken by `--events -`.
 */
function liveViewOf(options: DispatchOptions): LiveView | undefined {
  if (!options.watch || options.noLive || options.events === "-") return undefined;
  if (!Deno.stdout.isTerminal()) return undefined;
  const encoder = new TextEncoder();
  return createLiveView((text) => {
    try {
      let rest = encoder.encode(text);
      while (rest.length > 0) rest = rest.subarray(Deno.stdout.writeSync(rest));
    } catch {
      // The terminal is gone (a hangup): nothing to draw on.
    }
  }, () => {
    try {
      // A terminal that does not say its size (0 columns) gets the classic 80.
      return Deno.consoleSize().columns || 80;
    } catch {
      return 80;
    }
  });
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
export async function adoptAndReap(
  options: WatchFlags,
  repoRoot: string,
  store: { ledger: Ledger; writer: ReflectionWriter; provider: PrProvider; io: Io },
): Promise<AdoptedDispatch[]> {
  const { ledger, writer, provider, io } = store;
  const adopted = await adoptOrphans({
    ledger,
    repoRoot,
    baseRef: options.baseRef,
    deadlines: options.deadlines,
    maxWatchMs: options.maxWatchMs,
    logCapBytes: options.logCapBytes,
    out: io.out,
    err: io.err,
  });
  const reaped = await reapOrphans({
    ledger,
    writer,
    terminate: terminateGroup,
    killGraceMs: options.killGraceMs,
    out: io.out,
    err: io.err,
    provider,
  });
  if (reaped.length > 0) {
    io.out(`reaped ${reaped.length} dispatch(es) left behind by a crashed orchestrator`);
  }
  return adopted;
}

/** A run that does not watch leaves others' agents alone, and says how to pick them up. */
async function noteOrphans(ledger: Ledger, io: Io): Promise<undefined> {
  const orphans = await ledger.orphans();
  if (orphans.length > 0) {
    io.err(
      `note: ${orphans.length} dispatch(es) of a stopped orchestrator are unwatched: ` +
        `'${PROGRAM} watch' adopts them, '${PROGRAM} reap' ends them`,
    );
  }
  return undefined;
}

/** The run's closing lines on stdout. */
function report(result: RunResult, watch: boolean, io: Io, mode: ExecuteMode): void {
  const none = result.outcomes.length + result.failures.length + result.detached === 0;
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

/** What a run needs, checked before anything is written or started. */
interface Prepared {
  paths: Awaited<ReturnType<typeof resolvePaths>>;
  /** The backlog's gaps (none when only adopting). */
  gaps: readonly Gap[];
  startCommit: string;
  run: ReturnType<typeof applyFaults>;
  /** A routing table's cascades, when one is in use. */
  routing?: RunConfig["routing"];
  /** Adaptive deadlines and lessons, from the reflections. */
  learned?: Pick<RunConfig, "deadlineOf" | "lessonsFor" | "lessonsOff">;
}

/**
 * Every check a run makes before it touches anything: depth rule, backlog,
 * agent template, repository and base ref, fault injection, permissions and
 * the PR provider's login. Returns what the run needs, or the exit code after
 * one line on stderr.
 */
async function prepare(
  options: DispatchOptions,
  io: Io,
  mode: ExecuteMode,
): Promise<Prepared | number> {
  const fail = (line: string): number => {
    io.err(`${PROGRAM}: error: ${line}`);
    return EXIT.usage;
  };
  const depth = Number(io.env("CHUMP_DISPATCH_DEPTH") ?? "0");
  if (Number.isFinite(depth) && depth >= 1) {
    return fail(
      `refusing to dispatch: CHUMP_DISPATCH_DEPTH=${depth} means this runs ` +
        "inside a dispatched agent, and agents may not dispatch agents (depth-1 rule)",
    );
  }
  const paths = await resolvePaths(options);
  let gaps: readonly Gap[] = [];
  let template: AgentTemplate | undefined;
  if (!mode.adoptOnly) {
    const backlog = await loadAndWarn(paths.backlog, io, paths.defaultBacklog);
    if (!backlog) return EXIT.usage;
    gaps = backlog.gaps;
    template = agentTemplate(options, io);
    if (!template) return EXIT.usage;
  }
  // What the run learns from: the local reflections, or with a shared ledger the whole fleet's.
  using reflections = await openReflections(
    mode.adoptOnly ? undefined : ledgerUrl(options, io),
    paths.db,
    io,
  );
  if (!reflections) return EXIT.failure;
  const source = reflections.source;
  const routed = mode.adoptOnly ? undefined : await routingOf(options, io, paths, source);
  if (typeof routed === "string") return fail(routed);

  if (await gitTopLevel(paths.repoRoot) === undefined) {
    return fail(`${paths.repoRoot} is not a git repository (pass --repo-root)`);
  }
  const startCommit = await resolveCommit(paths.repoRoot, options.baseRef);
  if (startCommit === undefined) {
    return fail(
      `base ref '${options.baseRef}' does not resolve in ${paths.repoRoot} ` +
        "(fetch it, or pass --base-ref)",
    );
  }

  const faults = mode.adoptOnly ? ok(new Set<Fault>()) : parseFaults(io.env("CHUMP_FAULT_INJECT"));
  if (!faults.ok) return fail(faults.error);
  if (faults.value.size > 0) io.err(`warning: fault injection: ${[...faults.value].join(", ")}`);
  const run = applyFaults(faults.value, {
    // Only adopting: no agent is started, so none is checked either.
    agent: template ?? { words: [], label: "none" },
    deadlines: options.deadlines,
    spawner: realSpawner,
  });
  const learned = mode.adoptOnly ? undefined : learnedOf(options, io, source, run.deadlines);
  const problem = preflight({
    agents: faults.value.has("spawn_fail") || !template
      ? []
      : routed?.programs ?? [run.agent.words[0]],
    gh: options.watch && options.prProvider === "gh",
    writes: [
      [paths.db, "the reflection DB and lease ledger"],
      [join(paths.repoRoot, ".claude", "worktrees"), "the worktrees"],
      ...(options.events !== undefined && options.events !== "-"
        ? [[options.events, "the events file"] as [string, string]]
        : []),
    ],
  });
  if (problem) return fail(problem);
  if (options.watch && options.prProvider === "gh") {
    // A gh that is not logged in would fail every tick: say so before dispatching anything.
    const ready = await checkGhAuth({ cwd: paths.repoRoot });
    if (!ready.ok) {
      return fail(
        `the gh PR provider cannot work: ${ready.error} ` +
          "(log in with 'gh auth login', or pass --pr-provider git)",
      );
    }
  }
  return { paths, gaps, startCommit, run, routing: routed?.routing, learned };
}

/**
 * What the reflections teach this run: adaptive deadlines (unless
 * `--deadline` was given; the run says which it uses and why) and each
 * domain's lessons for the prompts (unless `--no-lessons`).
 */
function learnedOf(
  options: DispatchOptions,
  io: Io,
  db: ReflectionSource,
  deadlines: DispatchOptions["deadlines"],
): Pick<RunConfig, "deadlineOf" | "lessonsFor" | "lessonsOff"> {
  const read = queryReflections(db, { limit: Number.MAX_SAFE_INTEGER });
  if (!read.ok) io.err(`warning: ${read.error}; no adaptive deadlines or lessons in this run`);
  const rows = read.ok ? read.value : [];
  const out: Pick<RunConfig, "deadlineOf" | "lessonsFor" | "lessonsOff"> = {};
  // Deadlines given (--deadline, or a fault's) are kept as given.
  if (!options.deadlinesExplicit && deadlines === options.deadlines) {
    const adaptive = adaptiveDeadlines(rows, deadlines);
    if (rows.length > 0) io.err(`note: ${deadlinesLine(adaptive)}`);
    out.deadlineOf = (gap) => adaptive.of(gap.effort, gapDomain(gap.id));
  }
  if (options.noLessons) out.lessonsOff = true;
  else {
    const byDomain = new Map<string, string[]>();
    out.lessonsFor = (gap) => {
      const domain = gapDomain(gap.id);
      if (!byDomain.has(domain)) byDomain.set(domain, promptLessons(rows, domain));
      return byDomain.get(domain)!;
    };
  }
  return out;
}

/**
 * The routing table's cascades for this run, when there is a table and no
 * explicit agent command; with the programs its arms run (for the preflight).
 * A malformed table (or a named one that cannot be read) is one line.
 */
async function routingOf(
  options: DispatchOptions,
  io: Io,
  paths: { repoRoot: string },
  reflections: ReflectionSource,
): Promise<{ routing: RunConfig["routing"]; programs: string[] } | string | undefined> {
  const explicit = options.agentCmd !== undefined ||
    (io.env("CHUMP_AGENT_CMD") ?? "").trim() !== "";
  if (explicit) {
    if (options.routing !== undefined) {
      return "--routing conflicts with --agent-cmd / CHUMP_AGENT_CMD (the table chooses the agents)";
    }
    return undefined;
  }
  const learning = await loadLearning({
    repoRoot: paths.repoRoot,
    db: reflections,
    routing: options.routing,
    windowMs: options.learnWindowMs,
  });
  if (!learning.ok) return learning.error;
  const { table, scoreboard } = learning.value;
  if (!table) return undefined;
  for (const w of table.warnings) io.err(`warning: ${w}`);
  const seed = options.seed ?? crypto.getRandomValues(new Uint32Array(1))[0];
  const programs = new Set<string>();
  for (const c of [...table.defaultCandidates, ...table.routes.flatMap((r) => r.candidates)]) {
    const agent = armAgent(c, "GAP", table.backends);
    if (!agent.ok) return `${table.path}: ${agent.error}`;
    programs.add(agent.value.argv[0]);
  }
  io.err(
    `note: routing table ${table.path}: ${table.routes.length} route(s); order ${options.learn}` +
      (options.learn === "thompson" ? ` (seed ${seed})` : "") +
      `; scoreboard of ${scoreboard.rows} reflection(s); at most ${options.maxAttempts} ` +
      "attempt(s) per gap",
  );
  const cascade = new Cascade({
    table,
    scores: scoreboard,
    policy: options.learn,
    random: seededRandom(seed),
    maxAttempts: options.maxAttempts,
    cooldowns: new Cooldowns(),
  });
  return { routing: { cascade, backends: table.backends }, programs: [...programs] };
}

/**
 * Before dispatching anything: can this process run what it will run and
 * write what it will write? The first problem, as one line.
 */
function preflight(
  needs: { agents: string[]; gh: boolean; writes: [string, string][] },
): string | undefined {
  const runs: [string, string, string?][] = [
    ["git", "git"],
    ["sh", "agent waiters and process checks"],
    ["ps", "process checks"],
    ["kill", "ending agents"],
  ];
  if (needs.gh) {
    runs.push([
      "gh",
      "the PR provider program",
      "install the GitHub CLI, or pass --pr-provider git",
    ]);
  }
  for (const agent of needs.agents) runs.push([agent, "the agent command"]);
  const cannot = firstCannotRun(runs);
  if (cannot) return cannot;
  for (const [path, what] of needs.writes) {
    const problem = missingWrite(path, what);
    if (problem) return problem;
  }
  return undefined;
}
