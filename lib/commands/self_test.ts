/**
 * `--self-test`: the whole pipeline on the embedded 4-gap synthetic backlog,
 * with no network, no `claude` and no `gh`: a scratch git repo with a bare
 * `origin`, one real demo-agent process per gap that commits and pushes to
 * `origin/main`, the `git` PR provider, the monitor loop, and reflection rows
 * in a scratch SQLite DB that are then read back and checked.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { join } from "../util/path.ts";
import { parseBacklogText } from "../backlog/parse.ts";
import { git, gitReason, resolveCommit } from "../git/git.ts";
import { openRunStore } from "../store/run_store.ts";
import { exactSelfIdentity, processLiveness } from "../process/liveness.ts";
import { Processes } from "../process/table.ts";
import { createGitProvider } from "../watch/providers/git.ts";
import { realSpawner } from "../process/spawn.ts";
import { terminateGroup } from "../process/signal.ts";
import { errorMessage, ok } from "../util/result.ts";
import { type Interrupt, listenForInterrupts } from "../process/interrupt.ts";
import type { Exit, Io } from "../cli/io.ts";
import type { DispatchOptions } from "../cli/catalog.ts";
import { runDispatches } from "../watch/run.ts";
import { runExitCode, summaryLines } from "../watch/summary.ts";
import { selfCommand } from "../process/self_command.ts";
import { firstCannotRun } from "./permissions.ts";
import { gitWorkspace } from "../git/workspace.ts";
import { DEFAULT_DEADLINES } from "../util/duration.ts";

/**
 * `--self-test` from the command line: the self-test, stopped by SIGINT or
 * SIGTERM (its repo is a temp dir removed at its end: nothing is left to adopt).
 *
 * @example
 * ```ts ignore
 * const exit = await runSelfTestCommand({ maxParallel: 2 }, io);
 * ```
 */
export async function runSelfTestCommand(
  options: Pick<DispatchOptions, "maxParallel">,
  io: Io,
): Promise<Exit> {
  using interrupt = listenForInterrupts(io.err);
  const { stop, hurry, signalName } = interrupt;
  return ok(
    await runSelfTest(io, {
      maxParallel: options.maxParallel,
      interrupt: { stop, hurry, signalName },
    }),
  );
}

/** The seed's synthetic backlog (`fixtures/synthetic-backlog.yaml`), embedded. */
const SELF_TEST_BACKLOG = `# Four noop gaps for chump-orchestrator --self-test.
gaps:
  - id: SYNTH-001
    title: synthetic noop gap 1
    description: e2e fixture; no real work
    priority: P1
    effort: s
    status: open
  - id: SYNTH-002
    title: synthetic noop gap 2
    description: e2e fixture; no real work
    priority: P1
    effort: s
    status: open
  - id: SYNTH-003
    title: synthetic noop gap 3
    description: e2e fixture; no real work
    priority: P2
    effort: s
    status: open
  - id: SYNTH-004
    title: synthetic noop gap 4
    description: e2e fixture; no real work
    priority: P2
    effort: s
    status: open
`;

/** Fast ticks: the demo agents finish in well under a second each. */
const SELF_TEST_TICK_MS = 100;

/** What the self-test prints through. */
interface SelfTestIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

/** Options of {@linkcode runSelfTest}. */
interface SelfTestOptions {
  /** Agents at once (default 2, as the CLI). */
  maxParallel?: number;
  interrupt?: Interrupt;
}

/**
 * Run the self-test; prints `self-test PASSED: ...` or `self-test FAILED: <why>`.
 *
 * @returns 0 when it passed, 1 when it failed, 130 when interrupted
 */
async function runSelfTest(io: SelfTestIo, options: SelfTestOptions = {}): Promise<number> {
  // What it will start, checked first: one clear line instead of four spawn failures.
  const problem = firstCannotRun([
    ["git", "git"],
    [selfCommand()[0], "the self-test's agent, this program"],
  ]);
  if (problem) {
    io.err(`self-test FAILED: ${problem}`);
    return 1;
  }
  const started = performance.now();
  const dir = await Deno.makeTempDir({ prefix: "chump-self-test-" });
  try {
    const why = await selfTestIn(dir, io, options);
    const secs = ((performance.now() - started) / 1000).toFixed(1);
    if (why === "interrupted") {
      io.err("self-test FAILED: interrupted");
      return 130;
    }
    if (why !== undefined) {
      io.err(`self-test FAILED: ${why}`);
      return 1;
    }
    io.out(
      `self-test PASSED: 4/4 synthetic gaps shipped through real worktrees, agents and the git ` +
        `provider; 4 reflections verified in SQLite (${secs}s)`,
    );
    return 0;
  } catch (e) {
    io.err(`self-test FAILED: ${errorMessage(e).split("\n")[0]}`);
    return 1;
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** The self-test in a scratch directory; undefined when it passed, else why not. */
async function selfTestIn(
  dir: string,
  io: SelfTestIo,
  options: SelfTestOptions,
): Promise<string | undefined> {
  const origin = join(dir, "origin.git");
  const repo = join(dir, "repo");
  const setup = await scratchRepo(origin, repo);
  if (setup !== undefined) return setup;

  const parsed = parseBacklogText(SELF_TEST_BACKLOG, "<embedded self-test backlog>");
  if (!parsed.ok) return parsed.error;
  const startCommit = await resolveCommit(repo, "origin/main");
  if (!startCommit) return "origin/main does not resolve in the scratch repo";

  const db = join(repo, "sessions", "chump_memory.db");
  const processes = new Processes();
  const liveness = processLiveness(await exactSelfIdentity(processes), processes);
  const store = await openRunStore(db, { err: io.err, liveness });
  if (!store.ok) return store.error;
  const { ledger, writer } = store.value;
  try {
    const result = await runDispatches(parsed.value.gaps, {
      repoRoot: repo,
      baseRef: "origin/main",
      startCommit,
      maxParallel: options.maxParallel ?? 2,
      order: "priority",
      watch: true,
      tickMs: SELF_TEST_TICK_MS,
      deadlines: DEFAULT_DEADLINES,
      exitGraceTicks: 2,
      killGraceMs: 2000,
      // The demo agent speaks Claude Code's stream-json, so the self-test shows what each
      // dispatch cost (its tokens at the built-in price of the model it says it is).
      agent: {
        words: selfCommand("demo-agent", "--behaviour", "ship", "--output-format", "stream-json"),
        label: "demo-agent",
        format: "claude-stream",
      },
    }, {
      workspace: gitWorkspace(repo),
      spawner: realSpawner,
      provider: createGitProvider({ repoRoot: repo, baseRef: "origin/main" }),
      writer,
      ledger,
      processes,
      terminate: (pgid, o) => terminateGroup(pgid, { ...o, processes }),
      out: io.out,
      err: io.err,
      interrupt: options.interrupt,
    });
    for (const line of summaryLines(result)) io.out(line);
    if (result.interrupted) return "interrupted";
    if (runExitCode(result, true) !== 0) {
      const bad = [...result.failures.map((f) => `${f.gapId}: ${f.reason}`)];
      for (const o of result.outcomes) {
        if (o.outcome !== "shipped") bad.push(`${o.gapId} ${o.outcome} (${o.reason})`);
      }
      return `not every gap shipped: ${bad.join("; ")}`;
    }
  } finally {
    store.value.close();
  }
  return verifyRows(db);
}

async function scratchRepo(origin: string, repo: string): Promise<string | undefined> {
  const id = ["-c", "user.name=chump self-test", "-c", "user.email=self-test@chump.invalid"];
  const steps: [string[], string][] = [
    [["init", "--quiet", "--bare", "--initial-branch=main", origin], "."],
    [["init", "--quiet", "--initial-branch=main", repo], "."],
  ];
  for (const [args, cwd] of steps) {
    const r = await git(args, cwd === "." ? Deno.cwd() : cwd);
    if (r.code !== 0) return `git ${args[0]}: ${gitReason(r)}`;
  }
  await Deno.mkdir(join(repo, "docs"), { recursive: true });
  await Deno.writeTextFile(join(repo, "docs", "gaps.yaml"), SELF_TEST_BACKLOG);
  await Deno.writeTextFile(
    join(repo, "CLAUDE.md"),
    "# Rules for agents\nShip small, tested changes.\n",
  );
  await Deno.writeTextFile(join(repo, ".gitignore"), "/sessions/\n/.claude/\n");
  const more: string[][] = [
    ["add", "."],
    [...id, "commit", "--quiet", "-m", "self-test scratch repo"],
    ["remote", "add", "origin", origin],
    ["push", "--quiet", "origin", "main"],
    ["fetch", "--quiet", "origin"],
  ];
  for (const args of more) {
    const r = await git(args, repo);
    if (r.code !== 0) {
      return `git ${args.find((a) => !a.startsWith("-") && !a.includes("="))}: ${gitReason(r)}`;
    }
  }
  return undefined;
}

/** Read the rows back: 4 shipped reflections with their targets, exactly as the contract. */
function verifyRows(dbPath: string): string | undefined {
  const db = new DatabaseSync(dbPath, { readOnly: true });
  try {
    const rows = db.prepare(
      `SELECT r.intended_goal AS goal, r.observed_outcome AS observed, r.outcome_class AS class,
              r.error_pattern AS pattern, r.hypothesis AS notes, t.directive AS directive, t.priority AS priority, t.scope AS scope
         FROM chump_reflections r JOIN chump_improvement_targets t ON t.reflection_id = r.id
        ORDER BY r.id`,
    ).all() as Record<string, string>[];
    if (rows.length !== 4) return `expected 4 reflections, found ${rows.length}`;
    const goals = rows.map((r) => r.goal).sort();
    const want = ["SYNTH-001", "SYNTH-002", "SYNTH-003", "SYNTH-004"];
    if (goals.join() !== want.map((id) => `ship gap ${id}`).join()) {
      return `unexpected reflection goals: ${goals.join(", ")}`;
    }
    for (const r of rows) {
      const id = r.goal.slice("ship gap ".length);
      const checks: [boolean, string][] = [
        [
          /^outcome=shipped duration_s=\d+ pr=None$/.test(r.observed),
          `observed_outcome '${r.observed}'`,
        ],
        [r.class === "success", `outcome_class '${r.class}'`],
        [/\ncost_usd=\d+\.\d{4}\ntokens_in=\d+\n/.test(r.notes), `cost in the notes '${r.notes}'`],
        [r.pattern === "orchestrator_dispatch", `error_pattern '${r.pattern}'`],
        [r.priority === "low", `priority '${r.priority}'`],
        [r.scope === "synth", `scope '${r.scope}'`],
        [
          new RegExp(
            `^dispatched gap=${id} effort=s domain=synth outcome=shipped duration_s=\\d+ ` +
              `parallel_siblings=\\d+ pr_number=None notes=backend=demo-agent$`,
          ).test(r.directive),
          `directive '${r.directive}'`,
        ],
      ];
      const bad = checks.find(([good]) => !good);
      if (bad) return `reflection for ${id} has an unexpected ${bad[1]}`;
    }
    return undefined;
  } finally {
    db.close();
  }
}
