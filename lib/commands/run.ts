/**
 * The program behind the CLI: command -> work -> exit code. Output goes
 * through an injected {@linkcode Io} so tests can run it in-process.
 *
 * @module
 */
import { join } from "node:path";
import { resolveAgentTemplate } from "../dispatch/agent.ts";
import { type Backlog, loadBacklog } from "../backlog/load.ts";
import {
  type Command,
  type DispatchOptions,
  parseCli,
  PROGRAM,
  type ReapOptions,
  type ReflectionsOptions,
  type StatusOptions,
  VERSION,
} from "../cli/parse.ts";
import { runDemoAgent } from "./demo_agent.ts";
import { gitWorkspace } from "../dispatch/dispatch.ts";
import { gitTopLevel, resolveCommit } from "../git/git.ts";
import { applyFaults, parseFaults } from "../dispatch/faults.ts";
import { dropWritesIfReadOnly, firstCannotRun, missingWrite } from "../cli/permissions.ts";
import { listenForInterrupts } from "../cli/interrupt.ts";
import {
  agentAlive,
  openLedger,
  openLedgerIfExists,
  orchestratorAlive,
  selfIdentity,
} from "../store/ledger.ts";
import { pickableGaps } from "../backlog/picker.ts";
import { renderPlan } from "../backlog/plan.ts";
import { processTable, realSpawner, terminateGroup } from "../process/spawn.ts";
import { createGhProvider } from "../watch/providers/gh.ts";
import { createGitProvider } from "../watch/providers/git.ts";
import {
  createNoopWriter,
  createSqliteWriter,
  importSpool,
  queryReflections,
} from "../store/reflections.ts";
import { errorMessage } from "../util/result.ts";
import { reapOrphans } from "../watch/reap.ts";
import { runDispatches, runExitCode, summaryLines } from "../watch/loop.ts";
import { runSelfTest } from "./self_test.ts";
import { assignSlugs, worktreeFor } from "../dispatch/slug.ts";
import { oneLine } from "../util/text.ts";
import { resolvePaths } from "../cli/paths.ts";

/** Where output goes and how the environment is read. Relative paths are relative to the cwd. */
export interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
  env: (name: string) => string | undefined;
}

/** Exit codes of CONTRACT §6. */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  notShipped: 3,
  interrupted: 130,
} as const;

/** Warnings printed per run before they are summarised (a 100k-gap backlog can have thousands). */
const MAX_WARNINGS_SHOWN = 50;

/**
 * Run a command line to completion.
 *
 * @param argv arguments without the program name
 * @param io output and environment
 * @returns the exit code
 * @example
 * ```ts
 * const code = await runCli(["--help"], io);
 * ```
 */
export async function runCli(argv: readonly string[], io: Io): Promise<number> {
  const parsed = parseCli(argv);
  if (!parsed.ok) {
    io.err(`${PROGRAM}: error: ${parsed.error}`);
    return EXIT.usage;
  }
  if (Deno.build.standalone) dropWritesIfReadOnly(parsed.value);
  return await runCommand(parsed.value, io);
}

async function runCommand(command: Command, io: Io): Promise<number> {
  switch (command.kind) {
    case "help":
      io.out(command.text);
      return EXIT.ok;
    case "version":
      io.out(`${PROGRAM} ${VERSION}`);
      return EXIT.ok;
    case "dispatch":
      return command.options.dryRun
        ? await runDryRun(command.options, io)
        : await runExecute(command.options, io);
    case "self-test": {
      using interrupt = listenForInterrupts(io.err);
      return await runSelfTest(io, { maxParallel: command.options.maxParallel, interrupt });
    }
    case "demo-agent":
      return await runDemoAgent(command.args);
    case "reflections":
      return await runReflections(command.options, io);
    case "status":
      return await runStatus(command.options, io);
    case "reap":
      return await runReap(command.options, io);
  }
}

/**
 * Load a backlog and print its warnings; on failure print the one-line error.
 *
 * @returns the backlog, or undefined after printing why not
 */
export async function loadAndWarn(
  path: string,
  io: Io,
  isDefault = false,
): Promise<Backlog | undefined> {
  const loaded = await loadBacklog(path);
  if (!loaded.ok) {
    const hint = isDefault && loaded.error.startsWith("backlog not found")
      ? " (the default is docs/gaps.yaml under the repo root; pass --backlog PATH)"
      : "";
    io.err(`${PROGRAM}: error: ${loaded.error}${hint}`);
    return undefined;
  }
  const { warnings } = loaded.value;
  for (const w of warnings.slice(0, MAX_WARNINGS_SHOWN)) io.err(`warning: ${w}`);
  if (warnings.length > MAX_WARNINGS_SHOWN) {
    io.err(`warning: ... and ${warnings.length - MAX_WARNINGS_SHOWN} more warnings`);
  }
  return loaded.value;
}

async function runDryRun(options: DispatchOptions, io: Io): Promise<number> {
  const paths = await resolvePaths(options);
  const backlog = await loadAndWarn(paths.backlog, io, paths.defaultBacklog);
  if (!backlog) return EXIT.usage;
  const leased = await leasedGaps(paths.db, io);
  const pickable = pickableGaps(backlog.gaps, { limit: Infinity, order: options.order, leased });
  const picks = pickable.slice(0, options.maxParallel);
  const slugs = assignSlugs(backlog.gaps.map((g) => g.id));
  const lines = renderPlan({
    source: paths.backlog,
    gaps: backlog.gaps,
    pickable: pickable.length,
    picks,
    worktreeOf: (id) => worktreeFor(paths.repoRoot, slugs.get(id)!),
    maxParallel: options.maxParallel,
    order: options.order,
    leased: leased.size,
  });
  for (const line of lines) io.out(line);
  return EXIT.ok;
}

/** Gap ids held by live leases, read without creating the DB. */
async function leasedGaps(db: string, io: Io): Promise<Set<string>> {
  const ledger = openLedgerIfExists(db);
  if (!ledger.ok) {
    io.err(`warning: ${ledger.error}; leases not checked`);
    return new Set();
  }
  if (!ledger.value) return new Set();
  try {
    return await ledger.value.liveGapIds();
  } finally {
    ledger.value.close();
  }
}

async function runExecute(options: DispatchOptions, io: Io): Promise<number> {
  const depth = Number(io.env("CHUMP_DISPATCH_DEPTH") ?? "0");
  if (Number.isFinite(depth) && depth >= 1) {
    io.err(
      `${PROGRAM}: error: refusing to dispatch: CHUMP_DISPATCH_DEPTH=${depth} means this runs ` +
        "inside a dispatched agent, and agents may not dispatch agents (depth-1 rule)",
    );
    return EXIT.usage;
  }
  const paths = await resolvePaths(options);
  const backlog = await loadAndWarn(paths.backlog, io, paths.defaultBacklog);
  if (!backlog) return EXIT.usage;

  const template = resolveAgentTemplate({
    agentCmd: options.agentCmd,
    envCmd: io.env("CHUMP_AGENT_CMD"),
    backend: io.env("CHUMP_DISPATCH_BACKEND"),
  });
  if (!template.ok) {
    io.err(`${PROGRAM}: error: ${template.error}`);
    return EXIT.usage;
  }
  if (template.value.warning) io.err(`warning: ${template.value.warning}`);

  const top = await gitTopLevel(paths.repoRoot);
  if (top === undefined) {
    io.err(`${PROGRAM}: error: ${paths.repoRoot} is not a git repository (pass --repo-root)`);
    return EXIT.usage;
  }
  const startCommit = await resolveCommit(paths.repoRoot, options.baseRef);
  if (startCommit === undefined) {
    io.err(
      `${PROGRAM}: error: base ref '${options.baseRef}' does not resolve in ${paths.repoRoot} ` +
        "(fetch it, or pass --base-ref)",
    );
    return EXIT.usage;
  }

  const db = paths.db;
  const faults = parseFaults(io.env("CHUMP_FAULT_INJECT"));
  if (!faults.ok) {
    io.err(`${PROGRAM}: error: ${faults.error}`);
    return EXIT.usage;
  }
  if (faults.value.size > 0) io.err(`warning: fault injection: ${[...faults.value].join(", ")}`);
  const run = applyFaults(faults.value, {
    agent: template.value,
    deadlines: options.deadlines,
    spawner: realSpawner,
  });
  const problem = preflight({
    agent: faults.value.has("spawn_fail") ? undefined : run.agent.words[0],
    gh: options.watch && options.prProvider === "gh",
    writes: [
      [db, "the reflection DB and lease ledger"],
      [join(paths.repoRoot, ".claude", "worktrees"), "the worktrees"],
    ],
  });
  if (problem) {
    io.err(`${PROGRAM}: error: ${problem}`);
    return EXIT.usage;
  }
  const ledger = openLedger(db);
  if (!ledger.ok) {
    io.err(`${PROGRAM}: error: ${ledger.error}`);
    return EXIT.failure;
  }
  if (options.reflect) {
    const imported = await importSpool(db);
    if (imported.imported > 0) {
      io.err(`imported ${imported.imported} spooled reflection(s) into ${db}`);
    }
    if (imported.left > 0) {
      io.err(
        `warning: ${imported.left} spooled reflection(s) still waiting in ${
          imported.paths.join(", ")
        }`,
      );
    }
    for (const e of imported.errors) io.err(`warning: spool: ${e}`);
    // A spooled outcome ends its lease: the dispatch is not an orphan to reap.
    for (const l of imported.leaseOutcomes) await ledger.value.end(l.leaseId, l.outcome, l.notes);
  }
  const writer = options.reflect ? createSqliteWriter(db) : createNoopWriter();
  const reaped = await reapOrphans({
    ledger: ledger.value,
    writer,
    terminate: terminateGroup,
    killGraceMs: options.killGraceMs,
    out: io.out,
    err: io.err,
  });
  if (reaped.length > 0) {
    io.out(`reaped ${reaped.length} dispatch(es) left behind by a crashed orchestrator`);
  }
  const provider = options.prProvider === "gh"
    ? createGhProvider({ cwd: paths.repoRoot })
    : createGitProvider({ repoRoot: paths.repoRoot, baseRef: options.baseRef });
  using interrupt = listenForInterrupts(io.err);
  try {
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
      ledger: ledger.value,
      terminate: terminateGroup,
      out: io.out,
      err: io.err,
      interrupt,
    });
    if (result.outcomes.length + result.failures.length + result.detached === 0) {
      io.out("nothing to dispatch: no pickable gap (see the dry run for why)");
    } else if (options.watch || result.interrupted) {
      for (const line of summaryLines(result)) io.out(line);
    } else {
      io.out(
        `${result.detached} agent(s) started and left running unwatched; ` +
          "use --watch to follow them to an outcome and write reflections",
      );
    }
    return runExitCode(result, options.watch);
  } finally {
    writer.close();
    ledger.value.close();
  }
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

async function runReflections(options: ReflectionsOptions, io: Io): Promise<number> {
  const { db } = await resolvePaths(options);
  let rows;
  try {
    rows = queryReflections(db, {
      limit: options.limit,
      outcome: options.outcome,
      gapId: options.gap,
    });
  } catch (e) {
    io.err(
      `${PROGRAM}: error: cannot read reflections from ${db}: ${errorMessage(e).split("\n")[0]}`,
    );
    return EXIT.failure;
  }
  if (options.json) {
    for (const r of rows) io.out(JSON.stringify(r));
    return EXIT.ok;
  }
  if (rows.length === 0) {
    io.out(`no dispatch reflections in ${db}`);
    return EXIT.ok;
  }
  io.out(formatTable(
    ["id", "created_at", "gap", "outcome", "duration_s", "pr", "priority", "notes"],
    rows.map((r) => [
      String(r.id),
      r.createdAt,
      r.gapId,
      r.outcome,
      r.durationS === null ? "" : String(r.durationS),
      r.prNumber === null ? "" : `#${r.prNumber}`,
      r.priority,
      oneLine(r.notes.split("\n")[0] ?? "", 60),
    ]),
  ));
  return EXIT.ok;
}

async function runStatus(options: StatusOptions, io: Io): Promise<number> {
  const { db } = await resolvePaths(options);
  const opened = openLedgerIfExists(db);
  if (!opened.ok) {
    io.err(`${PROGRAM}: error: ${opened.error}`);
    return EXIT.failure;
  }
  if (!opened.value) {
    if (options.json) return EXIT.ok;
    io.out(`no dispatches recorded in ${db}`);
    return EXIT.ok;
  }
  const ledger = opened.value;
  try {
    const self = selfIdentity();
    const table = await processTable({ fresh: true });
    const now = Date.now();
    const rows = ledger.list(options.limit).map((l) => ({
      lease: l.id,
      gap: l.gapId,
      state: l.state,
      outcome: l.outcome,
      pid: l.pid,
      pidAlive: agentAlive(l, table),
      orchestratorPid: l.orchestratorPid,
      orchestratorAlive: l.state === "ended" ? null : orchestratorAlive(l, self, table),
      elapsedS: Math.round(((l.state === "ended" ? l.updatedMs : now) - l.startedMs) / 1000),
      worktree: l.worktree,
      branch: l.branch,
      startedAt: new Date(l.startedMs).toISOString(),
    }));
    if (options.json) {
      for (const r of rows) io.out(JSON.stringify(r));
      return EXIT.ok;
    }
    io.out(formatTable(
      ["lease", "gap", "state", "outcome", "pid", "alive", "elapsed_s", "worktree", "branch"],
      rows.map((r) => [
        String(r.lease),
        r.gap,
        r.state === "running" && r.orchestratorAlive === false ? "orphaned" : r.state,
        r.outcome ?? "",
        r.pid === null ? "" : String(r.pid),
        r.pid === null ? "" : r.pidAlive ? "yes" : "no",
        String(r.elapsedS),
        r.worktree,
        r.branch,
      ]),
    ));
    return EXIT.ok;
  } finally {
    ledger.close();
  }
}

async function runReap(options: ReapOptions, io: Io): Promise<number> {
  const { db } = await resolvePaths(options);
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

/**
 * Columns padded to their widest cell.
 *
 * @example
 * ```ts
 * formatTable(["a", "b"], [["1", "22"]]); // "a  b\n1  22"
 * ```
 */
export function formatTable(header: string[], rows: string[][]): string {
  const all = [header, ...rows.map((r) => r.map((c) => oneLine(c, 120)))];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  return all.map((r) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd()).join("\n");
}
