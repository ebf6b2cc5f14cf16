/**
 * The execute command (`--no-dry-run`, CONTRACT §3-§6): check what the run
 * will need, import spooled reflections, reap what a crashed run left, then
 * dispatch (and with `--watch` follow every agent to an outcome).
 *
 * @module
 */
import { join } from "node:path";
import { EXIT, type Io } from "../cli/io.ts";
import { type DispatchOptions, PROGRAM } from "../cli/parse.ts";
import { resolvePaths } from "../cli/paths.ts";
import { firstCannotRun, missingWrite } from "../cli/permissions.ts";
import { listenForInterrupts } from "../cli/interrupt.ts";
import { gitWorkspace } from "../git/workspace.ts";
import { applyFaults, parseFaults } from "../dispatch/faults.ts";
import { gitTopLevel, resolveCommit } from "../git/git.ts";
import { realSpawner } from "../process/spawn.ts";
import { terminateGroup } from "../process/signal.ts";
import { openRunStore } from "../store/run_store.ts";
import { runDispatches, runExitCode, type RunResult, summaryLines } from "../watch/loop.ts";
import { checkGhAuth, createGhProvider } from "../watch/providers/gh.ts";
import { createGitProvider } from "../watch/providers/git.ts";
import { reapOrphans } from "../watch/reap.ts";
import { agentTemplate, loadAndWarn } from "./dry_run.ts";

/** Dispatch for real; returns the exit code. */
export async function runExecute(options: DispatchOptions, io: Io): Promise<number> {
  const prepared = await prepare(options, io);
  if (typeof prepared === "number") return prepared;
  const { paths, backlog, startCommit, run } = prepared;
  // Listening from here on: a Ctrl-C during the spool import or the reap below
  // lets them finish, then stops the run before it dispatches anything (exit 130).
  using interrupt = listenForInterrupts(io.err);
  const opened = await openRunStore(paths.db, { reflect: options.reflect, err: io.err });
  if (!opened.ok) {
    io.err(`${PROGRAM}: error: ${opened.error}`);
    return EXIT.failure;
  }
  const { ledger, writer } = opened.value;
  const provider = options.prProvider === "gh"
    ? createGhProvider({ cwd: paths.repoRoot })
    : createGitProvider({ repoRoot: paths.repoRoot, baseRef: options.baseRef });
  try {
    const reaped = await reapOrphans({
      ledger,
      writer,
      terminate: terminateGroup,
      killGraceMs: options.killGraceMs,
      out: io.out,
      err: io.err,
      // Only a watched run has checked that its provider can work.
      provider: options.watch ? provider : undefined,
    });
    if (reaped.length > 0) {
      io.out(`reaped ${reaped.length} dispatch(es) left behind by a crashed orchestrator`);
    }
    const result = await runDispatches(backlog.gaps, {
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
      agent: run.agent,
    }, {
      workspace: gitWorkspace(paths.repoRoot),
      spawner: run.spawner,
      provider,
      writer,
      ledger,
      terminate: terminateGroup,
      out: io.out,
      err: io.err,
      interrupt,
    });
    report(result, options.watch, io);
    return runExitCode(result, options.watch);
  } finally {
    opened.value.close();
  }
}

/** The run's closing lines on stdout. */
function report(result: RunResult, watch: boolean, io: Io): void {
  const none = result.outcomes.length + result.failures.length + result.detached === 0;
  if (none && !result.interrupted) {
    io.out("nothing to dispatch: no pickable gap (see the dry run for why)");
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
  backlog: NonNullable<Awaited<ReturnType<typeof loadAndWarn>>>;
  startCommit: string;
  run: ReturnType<typeof applyFaults>;
}

/**
 * Every check a run makes before it touches anything: depth rule, backlog,
 * agent template, repository and base ref, fault injection, permissions and
 * the PR provider's login. Returns what the run needs, or the exit code after
 * one line on stderr.
 */
async function prepare(options: DispatchOptions, io: Io): Promise<Prepared | number> {
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
  const backlog = await loadAndWarn(paths.backlog, io, paths.defaultBacklog);
  if (!backlog) return EXIT.usage;

  const template = agentTemplate(options, io);
  if (!template) return EXIT.usage;

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

  const faults = parseFaults(io.env("CHUMP_FAULT_INJECT"));
  if (!faults.ok) return fail(faults.error);
  if (faults.value.size > 0) io.err(`warning: fault injection: ${[...faults.value].join(", ")}`);
  const run = applyFaults(faults.value, {
    agent: template,
    deadlines: options.deadlines,
    spawner: realSpawner,
  });
  const problem = preflight({
    agent: faults.value.has("spawn_fail") ? undefined : run.agent.words[0],
    gh: options.watch && options.prProvider === "gh",
    writes: [
      [paths.db, "the reflection DB and lease ledger"],
      [join(paths.repoRoot, ".claude", "worktrees"), "the worktrees"],
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
  return { paths, backlog, startCommit, run };
}

/**
 * Before dispatching anything: can this process run what it will run and
 * write what it will write? The first problem, as one line.
 */
function preflight(
  needs: { agent?: string; gh: boolean; writes: [string, string][] },
): string | undefined {
  const runs: [string, string, string?][] = [
    ["git", "git"],
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
  if (needs.agent !== undefined) runs.push([needs.agent, "the agent command"]);
  const cannot = firstCannotRun(runs);
  if (cannot) return cannot;
  for (const [path, what] of needs.writes) {
    const problem = missingWrite(path, what);
    if (problem) return problem;
  }
  return undefined;
}
