/**
 * End-to-end plumbing: a scratch repository with a bare `origin`, the demo
 * agent as the agent command, the real CLI as a subprocess, and readers for
 * the rows it leaves in SQLite.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { selfCommand } from "../lib/process/self_command.ts";
import { type Ran, ROOT, runMain, taskArgs } from "./_helpers.ts";
import { pidsWithEnv, waitFor } from "../testkit/process.ts";
import { GIT_ID, type ScratchRepo } from "../testkit/repo.ts";

export { gitOk, type ScratchRepo, scratchRepo } from "../testkit/repo.ts";
export { pidsWithEnv } from "../testkit/process.ts";

/** A backlog of open P1 gaps of effort `s`: `[id, extra yaml lines]`. */
export function backlogOf(gaps: [string, string?][]): string {
  const lines = ["gaps:"];
  for (const [id, extra] of gaps) {
    lines.push(`  - id: ${id}`, `    title: e2e ${id}`, "    priority: P1", "    effort: s");
    lines.push("    status: open");
    if (extra) lines.push(...extra.split("\n").map((l) => `    ${l}`));
  }
  return lines.join("\n") + "\n";
}

/** The demo agent as an --agent-cmd string. */
export function demoAgentCmd(): string {
  return selfCommand("demo-agent").map((w) => `'${w.replaceAll("'", `'"'"'`)}'`).join(" ");
}

/**
 * Run the orchestrator for real (`--no-dry-run --watch`) on a scratch repo
 * with the demo agent, fast ticks and the git provider unless overridden.
 */
export function orchestrate(
  scratch: ScratchRepo,
  args: string[],
  env: Record<string, string> = {},
): Promise<Ran> {
  return runMain(watchArgs(scratch, args), { cwd: ROOT, env: { ...GIT_ID, ...env } });
}

/**
 * The CLI arguments of {@linkcode orchestrate}; without `agent`, no
 * `--agent-cmd` (the repo's routing table chooses the agents).
 */
export function watchArgs(scratch: ScratchRepo, args: string[], agent = true): string[] {
  return [
    "--repo-root",
    scratch.repo,
    "--no-dry-run",
    "--watch",
    "--pr-provider",
    "git",
    "--tick",
    "100ms",
    // The gh provider here is the fake one (tests/fake_gh): no GitHub to spare.
    "--gh-min-tick",
    "1ms",
    "--kill-grace",
    "1s",
    ...(agent ? ["--agent-cmd", demoAgentCmd()] : []),
    ...args,
  ];
}

/**
 * A directory holding a fake `claude` (to put first on PATH): the demo agent,
 * given the arguments the claude preset passes (so it speaks stream-json).
 */
export async function fakeClaude(dir: string): Promise<string> {
  const bin = join(dir, "bin");
  await Deno.mkdir(bin, { recursive: true });
  const words = selfCommand("demo-agent").map((w) => `'${w.replaceAll("'", `'"'"'`)}'`);
  await Deno.writeTextFile(join(bin, "claude"), `#!/bin/sh\nexec ${words.join(" ")} "$@"\n`, {
    mode: 0o755,
  });
  return bin;
}

/** The environment of a run whose default agent is the fake claude. */
export function withClaude(bin: string, env: Record<string, string> = {}): Record<string, string> {
  return { PATH: `${bin}:${Deno.env.get("PATH") ?? ""}`, ...env };
}

/** A reflection row joined with its improvement target. */
export interface Row {
  goal: string;
  observed: string;
  class: string;
  pattern: string;
  hypothesis: string;
  directive: string;
  priority: string;
  scope: string;
}

/** Every reflection row of the DB, by gap id. */
export function reflectionRows(db: string): Map<string, Row> {
  const conn = new DatabaseSync(db, { readOnly: true });
  try {
    const table = conn.prepare(
      "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'chump_reflections'",
    ).get();
    if (!table) return new Map();
    const rows = conn.prepare(
      `SELECT r.intended_goal AS goal, r.observed_outcome AS observed, r.outcome_class AS class,
              r.error_pattern AS pattern, r.hypothesis AS hypothesis, t.directive AS directive,
              t.priority AS priority, t.scope AS scope
         FROM chump_reflections r LEFT JOIN chump_improvement_targets t ON t.reflection_id = r.id
        ORDER BY r.id`,
    ).all() as unknown as Row[];
    return new Map(rows.map((r) => [r.goal.replace(/^ship gap /, ""), r]));
  } finally {
    conn.close();
  }
}

/** How many reflection rows the DB holds for `gapId`. */
export function reflectionCount(db: string, gapId: string): number {
  const conn = new DatabaseSync(db, { readOnly: true });
  try {
    const row = conn.prepare("SELECT count(*) AS n FROM chump_reflections WHERE intended_goal = ?")
      .get(`ship gap ${gapId}`) as { n: number };
    return Number(row.n);
  } finally {
    conn.close();
  }
}

/** A lease row, as {@linkcode leaseRows} reads it. */
export interface LeaseRow {
  id: number;
  gap_id: string;
  state: string;
  outcome: string | null;
  pid: number | null;
  worktree: string;
  started_ms: number;
}

/** The lease ledger's rows, oldest first. */
export function leaseRows(db: string): LeaseRow[] {
  const conn = new DatabaseSync(db, { readOnly: true });
  try {
    return conn.prepare(
      "SELECT id, gap_id, state, outcome, pid, worktree, started_ms FROM chump_dispatch_leases " +
        "ORDER BY id",
    ).all() as unknown as LeaseRow[];
  } finally {
    conn.close();
  }
}

/** The lines of `text` that start with `prefix`. */
export function linesStarting(text: string, prefix: string): string[] {
  return text.split("\n").filter((l) => l.startsWith(prefix));
}

/** Does `path` exist? */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * An orchestrator running in the background through the `dispatch` task's
 * entry (main.ts, relaunched for a run that writes), in a process group of
 * its own (as in a terminal), its output collected as it comes.
 */
export interface Background {
  /** The task's first process (it relaunches main.ts with the run's write paths). */
  child: Deno.ChildProcess;
  /** Signal the whole group, as a terminal's Ctrl-C or a crash (SIGKILL) would. */
  signal(signal: Deno.Signal): void;
  /** Resolves once `count` stdout+stderr lines match `pattern` (rejects after 60 s). */
  waitFor(pattern: RegExp, count?: number): Promise<string[]>;
  /** Everything printed so far. */
  stdout(): string;
  stderr(): string;
  /** Waits for the exit (SIGKILLs it after 120 s so a hang fails instead of stalling CI). */
  finished(): Promise<Ran>;
}

/** Start the orchestrator like {@linkcode orchestrate}, without waiting for it. */
export function orchestrateInBackground(
  scratch: ScratchRepo,
  args: string[],
  env: Record<string, string> = {},
  demoAgent = true,
): Background {
  const child = new Deno.Command(Deno.execPath(), {
    args: [...taskArgs("dispatch"), ...watchArgs(scratch, args, demoAgent)],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...GIT_ID, ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    detached: true,
  }).spawn();
  let out = "";
  let err = "";
  const dec = () => new TextDecoderStream();
  const pump = async (s: ReadableStream<Uint8Array>, add: (t: string) => void) => {
    for await (const t of s.pipeThrough(dec())) add(t);
  };
  const pumped = Promise.all([
    pump(child.stdout, (t) => (out += t)),
    pump(child.stderr, (t) => (err += t)),
  ]);
  const group = (signal: Deno.Signal) => {
    try {
      Deno.kill(-child.pid, signal);
    } catch {
      // the group is gone
    }
  };
  const watchdog = setTimeout(() => group("SIGKILL"), 120_000);
  const status = child.status.finally(() => clearTimeout(watchdog));
  return {
    child,
    signal: group,
    waitFor(pattern, count = 1) {
      return waitFor(() => {
        const hits = `${out}\n${err}`.split("\n").filter((l) => pattern.test(l));
        return hits.length >= count && hits;
      }, { what: `${count} x ${pattern}` });
    },
    stdout: () => out,
    stderr: () => err,
    async finished() {
      const s = await status;
      await pumped;
      return { code: s.code, stdout: out, stderr: err };
    },
  };
}

/** End every process carrying `marker` in its environment (test cleanup after a failure). */
export async function killMarked(marker: string): Promise<void> {
  for (const pid of await pidsWithEnv(marker)) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // gone already
    }
  }
}

/**
 * A test's mark: its agents carry `CHUMP_TEST_MARK` in their environment, so
 * leftovers can be found (and asserted absent), and a `CHUMP_DEMO_READY_DIR`
 * where demo agents say they are ready (see {@linkcode Marked.ready}).
 * Disposing kills whatever still carries the mark and removes the ready dir.
 */
export interface Marked extends AsyncDisposable {
  /** The environment to give the orchestrator (its agents inherit it). */
  env: Record<string, string>;
  /** `CHUMP_TEST_MARK=<id>`, for {@linkcode pidsWithEnv}. */
  mark: string;
  /** Resolves with the agent's pid once the demo agent of `gapId` wrote its ready file. */
  ready(gapId: string): Promise<number>;
}

/** Make a {@linkcode Marked} environment, adding `env`. */
export async function marked(env: Record<string, string> = {}): Promise<Marked> {
  const id = crypto.randomUUID();
  const mark = `CHUMP_TEST_MARK=${id}`;
  const dir = await Deno.makeTempDir({ prefix: "chump-ready-" });
  return {
    env: { ...env, CHUMP_TEST_MARK: id, CHUMP_DEMO_READY_DIR: dir },
    mark,
    async ready(gapId) {
      const text = await waitForFile(join(dir, `${gapId}.ready`));
      return Number(text.trim());
    },
    async [Symbol.asyncDispose]() {
      await killMarked(mark);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/**
 * Resolves with the text of `path` once it exists and ends with a newline
 * (written completely); rejects after 60 s, so a test fails instead of hanging.
 */
export function waitForFile(path: string): Promise<string> {
  return waitFor(async () => {
    try {
      const text = await Deno.readTextFile(path);
      return text.endsWith("\n") && text;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      return false;
    }
  }, { what: path });
}

/**
 * An orchestrator running like {@linkcode orchestrateInBackground}, but on a
 * terminal of its own (a pseudo-terminal from `script`), so that
 * {@linkcode Terminal.hangUp} can close that terminal as a dropped SSH
 * connection or a closed terminal window does. Linux (util-linux `script`).
 */
export interface Terminal {
  /** Everything the terminal showed so far. */
  output(): string;
  /** Close the terminal: `script` dies, the pseudo-terminal hangs up. */
  hangUp(): void;
  /** Resolves when `script` exited. */
  closed: Promise<void>;
}

/** Start the orchestrator on a pseudo-terminal; see {@linkcode Terminal}. */
export function orchestrateInTerminal(
  scratch: ScratchRepo,
  args: string[],
  env: Record<string, string> = {},
): Terminal {
  const argv = [Deno.execPath(), ...taskArgs("dispatch"), ...watchArgs(scratch, args)];
  const line = argv.map((w) => `'${w.replaceAll("'", `'"'"'`)}'`).join(" ");
  const child = new Deno.Command("script", {
    args: ["-q", "-f", "-e", "-c", `exec ${line}`, "/dev/null"],
    cwd: ROOT,
    env: { NO_COLOR: "1", SHELL: "/bin/sh", ...GIT_ID, ...env },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    detached: true,
  }).spawn();
  let out = "";
  const pumped = (async () => {
    for await (const t of child.stdout.pipeThrough(new TextDecoderStream())) out += t;
  })();
  child.stderr.cancel().catch(() => {});
  return {
    output: () => out,
    hangUp() {
      try {
        child.kill("SIGKILL");
      } catch {
        // gone already
      }
    },
    closed: Promise.all([child.status, pumped]).then(() => {}),
  };
}

/** Poll until no process carries `mark` (the orchestrator and its agents exited); the leftovers after 60 s. */
export async function waitUntilNoneMarked(mark: string): Promise<number[]> {
  try {
    return await waitFor(async () => (await pidsWithEnv(mark)).length === 0 && [], {
      everyMs: 100,
      what: `no process marked ${mark}`,
    });
  } catch {
    return await pidsWithEnv(mark);
  }
}

/** Let the gated demo agents (`gate:<then>`) of `ids` act: each gets its `.go` file. */
export async function letGo(readyDir: string, ids: readonly string[]): Promise<void> {
  for (const id of ids) await Deno.writeTextFile(join(readyDir, `${id}.go`), "\n");
}

/** `watch` on the scratch repo with the git provider and fast ticks. */
export function watchRepo(
  scratch: ScratchRepo,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<Ran> {
  return runMain(
    ["watch", "--repo-root", scratch.repo, "--pr-provider", "git", "--tick", "100ms", ...args],
    { env: { ...GIT_ID, ...env } },
  );
}

/** Start the CLI (the `dispatch` task) with `args` in the background, its output piped. */
export function startCli(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: [...taskArgs("dispatch"), ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}
