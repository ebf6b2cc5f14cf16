/**
 * Spawning agents: every agent runs in its own process group (so it and
 * everything it starts can be signalled together), without a shell, with
 * both output streams drained (an agent must never block on a full pipe).
 *
 * Non-obvious choices:
 * - `detached: true` makes the agent a session and group leader (pgid = pid),
 *   so signalling `-pgid` reaches its grandchildren and never the orchestrator.
 * - The prompt is written to stdin in the background and the stream closed;
 *   an agent that never reads its stdin blocks nothing, and a broken pipe is
 *   not an error.
 * - Nothing here throws: a failure to start is an error value.
 *
 * @module
 */
import { errorMessage, fail, ok, type Result } from "../util/result.ts";
import { createStderrTail, type StderrTail } from "./stderr_tail.ts";
import type { SessionMeter } from "../cost/session.ts";
import { oneLine } from "../util/text.ts";
import { envVar } from "../util/env.ts";
import { followLogs } from "./follow.ts";
import { type AgentFiles, waiterArgs } from "./waiter.ts";
import { drain, feed, settledWithin } from "./streams.ts";
import { delimiter, dirname, join, resolve } from "../util/path.ts";

/**
 * What to start.
 *
 * @example
 * ```ts
 * const request: SpawnRequest = {
 *   argv: ["claude", "-p", "--dangerously-skip-permissions"],
 *   cwd: "/repo/.claude/worktrees/auto-013",
 *   env: { CHUMP_DISPATCH_DEPTH: "1", CHUMP_GAP_ID: "AUTO-013" },
 *   stdin: "You are working on gap AUTO-013 ...",
 * };
 * ```
 */
export interface SpawnRequest {
  /** argv[0] and its arguments; never run through a shell. */
  argv: readonly string[];
  /** Working directory of the agent (its worktree). */
  cwd: string;
  /** Added to the inherited environment. */
  env: Readonly<Record<string, string>>;
  /** Written to the agent's stdin, which is then closed; stdin is /dev/null when absent. */
  stdin?: string;
  /**
   * Nobody will watch it: its output goes to /dev/null instead of pipes (a
   * pipe would break, killing it, when the orchestrator exits) and it does
   * not keep the orchestrator alive.
   */
  unwatched?: boolean;
  /**
   * Run it under a waiter (process/waiter.ts) with its output in these
   * files and its exit status recorded there: it then outlives this
   * process. Without files its output is piped to this process.
   */
  files?: AgentFiles;
  /** Where its stdout goes when the agent speaks a structured session (cost/session.ts). */
  session?: SessionMeter;
}

/**
 * The exit code of an agent whose exit status nobody recorded (an adopted
 * agent whose waiter was killed with it, or a lease that predates waiters).
 */
export const EXIT_UNRECORDED = -1;

/**
 * A running (or finished) agent process.
 *
 * @example
 * ```ts
 * const r = realSpawner.spawn({ argv: ["sleep", "1"], cwd: ".", env: {} });
 * if (r.ok) {
 *   const agent: AgentProcess = r.value;
 *   console.log(agent.pid, agent.exitCode); // 4242 null
 *   console.log(await agent.exited, agent.tail.lines()); // 0 []
 * }
 * ```
 */
export interface AgentProcess {
  /** Process id of the agent. */
  pid: number;
  /** Process-group id (equals pid: the agent leads its own group). */
  pgid: number;
  /**
   * Our wall clock just after the spawn, in whole epoch seconds, as a
   * string: the fallback identity when the process table cannot give the
   * exact one (see process/table.ts `identify`).
   */
  startTime: string;
  /** When it was spawned, ms since the epoch. */
  spawnedAt: number;
  /**
   * Exit code once it has exited (128 + signal number when killed by a
   * signal; {@linkcode EXIT_UNRECORDED} when it ended unrecorded), else null.
   */
  readonly exitCode: number | null;
  /** Resolves with the exit code when the process exits and both streams are drained. */
  readonly exited: Promise<number>;
  /**
   * When it ended (ms since the epoch: for an agent that ended while nobody
   * watched, when its waiter wrote its status), once {@linkcode exitCode} is
   * set; null while it runs, or when it is not known.
   */
  readonly endedAt: number | null;
  /** Last time (ms since the epoch) the agent wrote to stdout or stderr; spawnedAt until then. */
  readonly lastOutputAt: number;
  /** The WARN/ERROR/FAIL/PANIC tail of its stderr. */
  readonly tail: StderrTail;
  /** Its structured session (tokens, cost), when its stdout speaks one; complete once it exited. */
  readonly session?: SessionMeter;
}

/**
 * Starts agent processes. One production implementation; tests may swap it.
 *
 * @example
 * ```ts
 * import { fail } from "../util/result.ts";
 *
 * const refusing: Spawner = { spawn: () => fail("spawning disabled in this test") };
 * ```
 */
export interface Spawner {
  /** Start the process; a failure to start (not found, permission) is an error value, not a throw. */
  spawn(request: SpawnRequest): Result<AgentProcess>;
}

/**
 * How long the output streams may stay open after the agent exited. A
 * grandchild that inherited them (a daemon the agent started) would
 * otherwise keep `exited` pending for as long as it lives.
 */
const DRAIN_AFTER_EXIT_MS = 2_000;

/**
 * The production {@linkcode Spawner}: starts `argv` directly (no shell) in a
 * new process group, feeds the prompt to stdin, drains stdout and stderr
 * (stderr into a {@linkcode StderrTail}).
 *
 * @example
 * ```ts
 * const r = realSpawner.spawn({
 *   argv: ["claude", "-p"],
 *   cwd: "/repo/.claude/worktrees/auto-013",
 *   env: { CHUMP_GAP_ID: "AUTO-013" },
 *   stdin: "ship gap AUTO-013",
 * });
 * if (r.ok) console.log(r.value.pid, await r.value.exited, r.value.tail.lines());
 * else console.error(r.error); // e.g. "agent command 'claude' not found on PATH"
 * ```
 */
export const realSpawner: Spawner = { spawn: spawnAgent };

/**
 * A dispatch with no agent of this host's: another host's dispatch whose
 * lease was taken over and whose PR is watched instead of dispatching the gap
 * again. It counts as an agent that exited 0 at `startedAt`, with no output.
 *
 * @example
 * ```ts
 * noAgent(Date.now()).exitCode; // 0
 * ```
 */
export function noAgent(startedAt: number): AgentProcess {
  return {
    pid: 0,
    pgid: 0,
    startTime: "",
    spawnedAt: startedAt,
    tail: createStderrTail(),
    exited: Promise.resolve(0),
    exitCode: 0,
    endedAt: null,
    lastOutputAt: startedAt,
  };
}

function spawnAgent(request: SpawnRequest): Result<AgentProcess> {
  const [command, ...args] = request.argv;
  if (command === undefined || command.trim() === "") return fail("agent command is empty");
  if (request.files) return spawnWaited(request, command, request.files);
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(command, {
      args,
      cwd: request.cwd,
      env: { ...request.env },
      detached: true,
      stdin: request.stdin === undefined ? "null" : "piped",
      stdout: request.unwatched ? "null" : "piped",
      stderr: request.unwatched ? "null" : "piped",
    }).spawn();
  } catch (e) {
    return fail(spawnFailure(command, request.cwd, e));
  }

  const spawnedAt = Date.now();
  const tail = createStderrTail();
  let lastOutputAt = spawnedAt;

  const stdin = request.stdin === undefined ? undefined : feed(child.stdin, request.stdin);
  if (request.unwatched) child.unref();
  const quiet = { done: Promise.resolve(), stop: () => Promise.resolve() };
  const session = request.session;
  const stdout = request.unwatched ? quiet : drain(child.stdout, (chunk) => {
    session?.push(chunk);
    lastOutputAt = Date.now();
  });
  const stderr = request.unwatched ? quiet : drain(child.stderr, (chunk) => {
    tail.push(chunk);
    lastOutputAt = Date.now();
  });

  return ok(childAgent(child, spawnedAt, { tail, session }, () => lastOutputAt, async () => {
    await settledWithin([stdout.done, stderr.done, stdin?.done], DRAIN_AFTER_EXIT_MS);
    await Promise.all([stdout.stop(), stderr.stop()]);
    await settledWithin([stdin?.stop()], DRAIN_AFTER_EXIT_MS);
  }));
}

/**
 * The {@linkcode AgentProcess} of a child we started: its exit code is set
 * once it exited and `drain` finished (so the tail is complete by then).
 */
function childAgent(
  child: Deno.ChildProcess,
  spawnedAt: number,
  { tail, session }: { tail: StderrTail; session?: SessionMeter },
  lastOutputAt: () => number,
  drain: () => Promise<void>,
): AgentProcess {
  let exitCode: number | null = null;
  let endedAt: number | null = null;
  const exited = (async () => {
    const status = await child.status;
    endedAt = Date.now();
    await drain();
    tail.end();
    session?.end();
    exitCode = status.code;
    return status.code;
  })();
  return {
    pid: child.pid,
    pgid: child.pid,
    startTime: String(Math.floor(spawnedAt / 1000)),
    spawnedAt,
    tail,
    session,
    exited,
    get exitCode() {
      return exitCode;
    },
    get endedAt() {
      return exitCode === null ? null : endedAt;
    },
    get lastOutputAt() {
      return lastOutputAt();
    },
  };
}

/**
 * Start the agent under its waiter. The waiter is `sh`, so what Deno would
 * have refused or not found for the agent itself is checked here first, with
 * the same one-line errors.
 */
function spawnWaited(
  request: SpawnRequest,
  command: string,
  files: AgentFiles,
): Result<AgentProcess> {
  const refused = startable(command, request);
  if (refused) return fail(refused);
  let child: Deno.ChildProcess;
  try {
    Deno.mkdirSync(dirname(files.base), { recursive: true });
    let stdin: string | undefined;
    if (request.stdin !== undefined) {
      Deno.writeTextFileSync(files.prompt, request.stdin);
      stdin = files.prompt;
    }
    child = new Deno.Command("sh", {
      args: waiterArgs(files, request.argv, stdin),
      cwd: request.cwd,
      env: { ...request.env },
      detached: true,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
  } catch (e) {
    return fail(spawnFailure(command, request.cwd, e));
  }
  const spawnedAt = Date.now();
  const tail = createStderrTail();
  // Nobody watches an unwatched agent: no follower, and it does not keep us alive.
  const session = request.session;
  const follower = request.unwatched ? undefined : followLogs(files, tail, spawnedAt, session);
  if (request.unwatched) child.unref();
  return ok(
    childAgent(
      child,
      spawnedAt,
      { tail, session },
      () => follower?.lastOutputAt ?? spawnedAt,
      async () => await follower?.stop(),
    ),
  );
}

/**
 * Why `command` cannot be started, as Deno would say it for a direct spawn:
 * not allowed by --allow-run, or not found (on PATH, or as a path).
 */
function startable(command: string, request: SpawnRequest): string | undefined {
  const name = oneLine(command);
  try {
    if (Deno.permissions.querySync({ name: "run", command }).state !== "granted") {
      return `not allowed to run '${name}': grant it with --allow-run=${name}`;
    }
  } catch {
    // A Deno that cannot answer: let the spawn say what is wrong.
  }
  if (command.includes("/")) {
    const kind = fileKind(resolve(request.cwd, command));
    if (kind === "executable") return undefined;
    return kind === "missing"
      ? `agent command '${name}' not found`
      : `cannot run agent command '${name}': permission denied (is it an executable file?)`;
  }
  const path = request.env.PATH ?? envVar("PATH") ?? "";
  const found = path.split(delimiter).some((dir) =>
    dir !== "" && fileKind(join(dir, command)) === "executable"
  );
  return found ? undefined : `agent command '${name}' not found on PATH`;
}

/** Is `path` an executable file, another existing thing, or missing? */
function fileKind(path: string): "executable" | "other" | "missing" {
  try {
    const st = Deno.statSync(path);
    return st.isFile && ((st.mode ?? 0o111) & 0o111) !== 0 ? "executable" : "other";
  } catch {
    return "missing";
  }
}

/** One line saying why `command` did not start. */
function spawnFailure(command: string, cwd: string, e: unknown): string {
  const name = oneLine(command);
  const message = oneLine(errorMessage(e));
  if (e instanceof Deno.errors.NotFound) {
    if (/\bcwd\b/i.test(message) || !isDirectory(cwd)) {
      return `working directory of agent '${name}' not found: ${oneLine(cwd)}`;
    }
    return command.includes("/")
      ? `agent command '${name}' not found`
      : `agent command '${name}' not found on PATH`;
  }
  if (e instanceof Deno.errors.NotCapable) {
    // Deno names the command or path it refused, e.g. `Requires run access to "claude"`.
    const refused = /"([^"]+)"/.exec(message)?.[1] ?? name;
    return `not allowed to run '${name}': grant it with --allow-run=${refused}`;
  }
  if (e instanceof Deno.errors.PermissionDenied) {
    return `cannot run agent command '${name}': permission denied (is it an executable file?)`;
  }
  return `cannot start agent command '${name}': ${message}`;
}

function isDirectory(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return true; // unknown: do not blame the directory
  }
}
