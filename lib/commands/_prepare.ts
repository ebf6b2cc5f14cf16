/**
 * What a real run (`--no-dry-run`, or `watch`) checks and gathers before it
 * touches anything: the depth rule, the backlog, the agent template, the
 * repository and base ref, fault injection, the routing table's cascades and
 * what the reflections teach (adaptive deadlines, lessons), permissions and
 * the PR provider's login. The first problem is a {@linkcode Failure}.
 *
 * @module
 */
import { loadPrices } from "../cost/price_file.ts";
import type { PriceTable } from "../cost/prices.ts";
import { join } from "../util/path.ts";
import type { Gap } from "../backlog/gap.ts";
import type { DispatchOptions } from "../cli/catalog.ts";
import { type Failure, type Io, usageError } from "../cli/io.ts";
import { type AgentTemplate, armAgent } from "../dispatch/agent.ts";
import { applyFaults, type Fault, parseFaults } from "../dispatch/faults.ts";
import { gitTopLevel, resolveCommit } from "../git/git.ts";
import { Cascade } from "../learn/cascade.ts";
import { Cooldowns } from "../learn/classify.ts";
import { deadlinesLine } from "../learn/deadlines.ts";
import type { Learned } from "../learn/learner.ts";
import { type Learning, loadLearning, readLearnRows } from "../learn/load.ts";
import { runSeed, seededRandom } from "../learn/policy.ts";
import { realSpawner } from "../process/spawn.ts";
import type { ReflectionSource } from "../store/query.ts";
import { gapDomain } from "../store/reflection.ts";
import { DEFAULT_DEADLINES } from "../util/duration.ts";
import { fail, ok, type Result } from "../util/result.ts";
import { checkGhAuth } from "../watch/providers/gh.ts";
import type { RunConfig } from "../watch/state.ts";
import { agentTemplate, ledgerUrl, loadAndWarn, openReflections } from "./_sources.ts";
import { resolvePaths, type RunPathsResolved } from "./paths.ts";
import { firstCannotRun, missingWrite } from "./permissions.ts";

/** What a run needs, checked before anything is written or started. */
export interface Prepared {
  paths: RunPathsResolved;
  /** The backlog's gaps (none when only adopting). */
  gaps: readonly Gap[];
  startCommit: string;
  /** The agent template, deadlines and spawner, after fault injection. */
  run: ReturnType<typeof applyFaults>;
  /** A routing table's cascades, when one is in use. */
  routing?: RunConfig["routing"];
  /** Adaptive deadlines, early ends and lessons, from the reflections, kept up to date. */
  learned?: Pick<RunConfig, "deadlineOf" | "earlyEndOf" | "lessonsFor" | "lessonsOff" | "learned">;
  /** What tokens cost (`--prices` over the built-in table). */
  prices: PriceTable;
}

/**
 * Every check a run makes before it touches anything.
 *
 * @param adoptOnly `watch`: no backlog, no agent, nothing learned
 * @example
 * ```ts ignore
 * const prepared = await prepare(options, io, false);
 * ```
 */
export async function prepare(
  options: DispatchOptions,
  io: Io,
  adoptOnly: boolean,
): Promise<Result<Prepared, Failure>> {
  const depth = Number(io.env("CHUMP_DISPATCH_DEPTH") ?? "0");
  if (Number.isFinite(depth) && depth >= 1) {
    return usageError(
      `refusing to dispatch: CHUMP_DISPATCH_DEPTH=${depth} means this runs ` +
        "inside a dispatched agent, and agents may not dispatch agents (depth-1 rule)",
    );
  }
  const paths = await resolvePaths(options);
  const prices = await loadPrices(options.prices);
  if (!prices.ok) return usageError(prices.error);
  const inputs = adoptOnly ? ok(NOTHING_TO_DISPATCH) : await backlogAndAgent(options, io, paths);
  if (!inputs.ok) return inputs;
  const { gaps, template } = inputs.value;
  // What the run learns from: the local reflections, or with a shared ledger the whole fleet's.
  const url = adoptOnly ? ok(undefined) : ledgerUrl(options, io);
  if (!url.ok) return url;
  const opened = await openReflections(url.value, paths.db);
  if (!opened.ok) return opened;
  using reflections = opened.value;
  const faults = adoptOnly ? ok(new Set<Fault>()) : parseFaults(io.env("CHUMP_FAULT_INJECT"));
  if (!faults.ok) return usageError(faults.error);
  if (faults.value.size > 0) io.err(`warning: fault injection: ${[...faults.value].join(", ")}`);
  const run = applyFaults(faults.value, {
    // Only adopting: no agent is started, so none is checked either.
    agent: template ?? { words: [], label: "none" },
    deadlines: options.deadlines ?? DEFAULT_DEADLINES,
    spawner: realSpawner,
  });
  const learning = adoptOnly ? ok(undefined) : await learningOf(options, io, {
    paths,
    ledger: url.value,
    source: reflections.source,
    deadlines: run.deadlines,
  });
  if (!learning.ok) return learning;
  const routed = learning.value ? routingOf(options, io, learning.value) : ok(undefined);
  if (!routed.ok) return routed;
  const startCommit = await repoAndBase(paths.repoRoot, options.baseRef);
  if (!startCommit.ok) return startCommit;
  const learned = learning.value && learnedOf(options, io, learning.value.learned, run.deadlines);
  const problem = preflight({
    agents: faults.value.has("spawn_fail") || !template
      ? []
      : routed.value?.programs ?? [run.agent.words[0]],
    gh: options.watch && options.prProvider === "gh",
    writes: [
      [paths.db, "the reflection DB and lease ledger"],
      [join(paths.repoRoot, ".claude", "worktrees"), "the worktrees"],
      ...(options.events !== undefined && options.events !== "-"
        ? [[options.events, "the events file"] as [string, string]]
        : []),
    ],
  });
  if (problem) return usageError(problem);
  const gh = await ghReady(options, paths.repoRoot);
  if (!gh.ok) return gh;
  return ok({
    paths,
    gaps,
    startCommit: startCommit.value,
    run,
    routing: routed.value?.routing,
    learned,
    prices: prices.value,
  });
}

/** What `watch` dispatches: nothing. */
const NOTHING_TO_DISPATCH: { gaps: readonly Gap[]; template?: AgentTemplate } = { gaps: [] };

/** The backlog (its warnings said) and the agent template. */
async function backlogAndAgent(
  options: DispatchOptions,
  io: Io,
  paths: RunPathsResolved,
): Promise<Result<{ gaps: readonly Gap[]; template?: AgentTemplate }, Failure>> {
  const backlog = await loadAndWarn(paths.backlog, io, paths.defaultBacklog);
  if (!backlog.ok) return backlog;
  const template = agentTemplate(options, io);
  if (!template.ok) return template;
  return ok({ gaps: backlog.value.gaps, template: template.value });
}

/** The repository is one, and the base ref's commit (where every branch of the run starts). */
async function repoAndBase(repoRoot: string, baseRef: string): Promise<Result<string, Failure>> {
  if (await gitTopLevel(repoRoot) === undefined) {
    return usageError(`${repoRoot} is not a git repository (pass --repo-root)`);
  }
  const startCommit = await resolveCommit(repoRoot, baseRef);
  if (startCommit === undefined) {
    return usageError(
      `base ref '${baseRef}' does not resolve in ${repoRoot} (fetch it, or pass --base-ref)`,
    );
  }
  return ok(startCommit);
}

/** A gh that is not logged in would fail every tick: say so before dispatching anything. */
async function ghReady(options: DispatchOptions, repoRoot: string): Promise<Result<void, Failure>> {
  if (!options.watch || options.prProvider !== "gh") return ok(undefined);
  const ready = await checkGhAuth({ cwd: repoRoot });
  if (ready.ok) return ok(undefined);
  return usageError(
    `the gh PR provider cannot work: ${ready.error} ` +
      "(log in with 'gh auth login', or pass --pr-provider git)",
  );
}

/**
 * What the reflections teach this run, kept up to date as it goes
 * (learn/learner.ts): adaptive deadlines and early ends (unless
 * `--deadline` was given; the run says which it uses and why) and each
 * domain's lessons for the prompts (unless `--no-lessons`).
 */
function learnedOf(
  options: DispatchOptions,
  io: Io,
  learned: Learned,
  deadlines: RunConfig["deadlines"],
): Pick<RunConfig, "deadlineOf" | "earlyEndOf" | "lessonsFor" | "lessonsOff" | "learned"> {
  const out: ReturnType<typeof learnedOf> = { learned };
  // Deadlines given (--deadline, or a fault's) are kept as given.
  if (options.deadlines === undefined && deadlines === DEFAULT_DEADLINES) {
    if (learned.rows.length > 0) io.err(`note: ${deadlinesLine(learned.deadlines())}`);
    out.deadlineOf = (gap, arm) => learned.deadlines().of(gap.effort, gapDomain(gap.id), arm);
    out.earlyEndOf = (gap, arm) => learned.deadlines().earlyEnd(gap.effort, gapDomain(gap.id), arm);
  }
  if (options.noLessons) out.lessonsOff = true;
  else out.lessonsFor = (gap) => learned.lessons(gapDomain(gap.id));
  return out;
}

/**
 * The routing table and what the reflections teach (`--learn-window`
 * narrows both the scoreboard and the deadlines and lessons); with an
 * explicit agent command no table is read.
 */
async function learningOf(
  options: DispatchOptions,
  io: Io,
  at: {
    paths: RunPathsResolved;
    ledger: string | undefined;
    source: ReflectionSource;
    deadlines: RunConfig["deadlines"];
  },
): Promise<Result<Learning, Failure>> {
  const explicit = options.agentCmd !== undefined ||
    (io.env("CHUMP_AGENT_CMD") ?? "").trim() !== "";
  if (explicit && options.routing !== undefined) {
    return usageError(
      "--routing conflicts with --agent-cmd / CHUMP_AGENT_CMD (the table chooses the agents)",
    );
  }
  const learning = await loadLearning({
    repoRoot: at.paths.repoRoot,
    db: at.source,
    routing: options.routing,
    noTable: explicit,
    windowMs: options.learnWindowMs,
    deadlines: at.deadlines,
    // The heartbeat re-reads the reflections: what other orchestrators (hosts) recorded.
    reload: async () => {
      const opened = await openReflections(at.ledger, at.paths.db);
      if (!opened.ok) return fail(opened.error.message);
      using again = opened.value;
      return readLearnRows(again.source);
    },
    warn: (message) => io.err(`warning: ${message}`),
  });
  return learning.ok ? learning : usageError(learning.error);
}

/**
 * The routing table's cascades for this run, when there is a table and no
 * explicit agent command; with the programs its arms run (for the preflight).
 */
function routingOf(
  options: DispatchOptions,
  io: Io,
  learning: Learning,
): Result<{ routing: RunConfig["routing"]; programs: string[] } | undefined, Failure> {
  // No table (none found, or an explicit agent command read none): the run's one agent.
  const { table, learned } = learning;
  if (!table) return ok(undefined);
  for (const w of table.warnings) io.err(`warning: ${w}`);
  const seed = runSeed(options.seed);
  const programs = new Set<string>();
  for (const c of [...table.defaultCandidates, ...table.routes.flatMap((r) => r.candidates)]) {
    const agent = armAgent(c, "GAP", table.backends);
    if (!agent.ok) return usageError(`${table.path}: ${agent.error}`);
    programs.add(agent.value.argv[0]);
  }
  const learn = options.learn === "thompson"
    ? ` (seed ${seed}; ${options.learnObjective}; learning as it goes)`
    : "";
  io.err(
    `note: routing table ${table.path}: ${table.routes.length} route(s); order ${options.learn}` +
      `${learn}; scoreboard of ${learned.scores.rows} reflection(s); at most ` +
      `${options.maxAttempts} attempt(s) per gap`,
  );
  const cascade = new Cascade({
    table,
    scores: learned.scores,
    policy: options.learn,
    objective: options.learnObjective,
    random: seededRandom(seed),
    maxAttempts: options.maxAttempts,
    cooldowns: new Cooldowns(),
  });
  return ok({ routing: { cascade, backends: table.backends }, programs: [...programs] });
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
