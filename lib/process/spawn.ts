/**
 * Spawning agents and ending them: every agent runs in its own process group
 * (so it and everything it starts can be signalled together), without a
 * shell, with both output streams drained (an agent must never block on a
 * full pipe). Ending is SIGTERM to the group, a grace, then SIGKILL, and a
 * check that the group is really gone.
 *
 * Non-obvious choices:
 * - `detached: true` makes the agent a session and group leader (pgid = pid),
 *   so signalling `-pgid` reaches its grandchildren and never the orchestrator.
 * - Liveness comes from one shared `ps -A` listing (Linux and macOS alike):
 *   Deno lets a program read /proc only under `--allow-all`, and the
 *   orchestrator runs with a narrow `--allow-run=...,ps,kill`. Zombies do not
 *   count (a PID 1 that does not reap would otherwise keep a killed group
 *   "alive" forever). A process is identified by pid AND start time (epoch
 *   seconds, within a small tolerance), so a reused pid is never taken for ours.
 * - Signalling a group uses `Deno.kill(-pgid)` when Deno allows it (an
 *   unrestricted `--allow-run`), else the `kill` program.
 * - The prompt is written to stdin in the background and the stream closed;
 *   an agent that never reads its stdin blocks nothing, and a broken pipe is
 *   not an error.
 * - Nothing here throws: a failure to start is an error value, and signalling
 *   a group that is gone already is success.
 *
 * @module
 */
import { errorMessage, fail, ok, type Result } from "../util/result.ts";
import { createStderrTail, type StderrTail } from "./stderr_tail.ts";
import { oneLine } from "../util/text.ts";

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
}

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
  /** When it started, epoch seconds as a string: with the pid, tells a reused pid apart (see {@linkcode sameProcessAlive}). */
  startTime: string;
  /** When it was spawned, ms since the epoch. */
  spawnedAt: number;
  /** Exit code once it has exited (128 + signal number when killed by a signal), else null. */
  readonly exitCode: number | null;
  /** Resolves with the exit code when the process exits and both streams are drained. */
  readonly exited: Promise<number>;
  /** Last time (ms since the epoch) the agent wrote to stdout or stderr; spawnedAt until then. */
  readonly lastOutputAt: number;
  /** The WARN/ERROR/FAIL/PANIC tail of its stderr. */
  readonly tail: StderrTail;
}

/**
 * Starts agent processes. One production implementation; tests may swap it.
 *
 * @example
 * ```ts
 * const refusing: Spawner = { spawn: () => fail("spawning disabled in this test") };
 * ```
 */
export interface Spawner {
  /** Start the process; a failure to start (not found, permission) is an error value, not a throw. */
  spawn(request: SpawnRequest): Result<AgentProcess>;
}

/**
 * How {@linkcode terminateGroup} went.
 *
 * @example
 * ```ts
 * const result: TerminateResult = await terminateGroup(agent.pgid, { graceMs: 30_000 });
 * if (!result.gone) console.error(`agent ${agent.pid} survived: ${result.reason ?? "still running"}`);
 * ```
 */
export interface TerminateResult {
  /** True when SIGKILL had to be sent after the grace. */
  escalated: boolean;
  /** True when no live (non-zombie) process of the group remains. */
  gone: boolean;
  /** Why the group could not be signalled (e.g. Deno lacks an unrestricted `--allow-run`); absent when it could. */
  reason?: string;
}

/**
 * How often a dying group is checked: fast enough that a prompt exit is
 * noticed at once; concurrent checks share one `ps` run.
 */
const POLL_MS = 25;

/**
 * How long to wait for a group to vanish after SIGKILL, which cannot be
 * ignored; only a process stuck in the kernel (D state) takes longer.
 */
const KILL_WAIT_MS = 5_000;

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

function spawnAgent(request: SpawnRequest): Result<AgentProcess> {
  const [command, ...args] = request.argv;
  if (command === undefined || command.trim() === "") return fail("agent command is empty");
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
  let exitCode: number | null = null;

  const stdin = request.stdin === undefined ? undefined : feed(child.stdin, request.stdin);
  if (request.unwatched) child.unref();
  const quiet = { done: Promise.resolve(), stop: () => Promise.resolve() };
  const stdout = request.unwatched ? quiet : drain(child.stdout, () => {
    lastOutputAt = Date.now();
  });
  const stderr = request.unwatched ? quiet : drain(child.stderr, (chunk) => {
    tail.push(chunk);
    lastOutputAt = Date.now();
  });

  const exited = (async () => {
    const status = await child.status;
    await settledWithin([stdout.done, stderr.done, stdin?.done], DRAIN_AFTER_EXIT_MS);
    await Promise.all([stdout.stop(), stderr.stop()]);
    await settledWithin([stdin?.stop()], DRAIN_AFTER_EXIT_MS);
    tail.end();
    exitCode = status.code;
    return status.code;
  })();

  return ok({
    pid: child.pid,
    pgid: child.pid,
    startTime: String(Math.floor(spawnedAt / 1000)),
    spawnedAt,
    tail,
    exited,
    get exitCode() {
      return exitCode;
    },
    get lastOutputAt() {
      return lastOutputAt;
    },
  });
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

/** A background stream task: `done` settles when it ends, `stop()` ends it early. */
interface StreamTask {
  done: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Run `work` in the background; an error in it ends it like a normal end
 * (a broken pipe is how streams of a dead process end). `cancel` cuts it short.
 */
function streamTask(work: () => Promise<void>, cancel: () => Promise<void>): StreamTask {
  let finished = false;
  const done = (async () => {
    try {
      await work();
    } catch {
      // The pipe broke or was cancelled: nothing more will come or go.
    } finally {
      finished = true;
    }
  })();
  return {
    done,
    async stop() {
      if (!finished) await cancel().catch(() => {});
      await done;
    },
  };
}

/** Read `stream` to its end, handing each chunk to `onChunk`; a read error ends it like EOF. */
function drain(
  stream: ReadableStream<Uint8Array>,
  onChunk: (chunk: Uint8Array) => void,
): StreamTask {
  const reader = stream.getReader();
  return streamTask(async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      onChunk(value);
    }
  }, () => reader.cancel());
}

/** Write `text` to `stdin` and close it, in the background; EPIPE (the agent closed its end) is not an error. */
function feed(stdin: WritableStream<Uint8Array>, text: string): StreamTask {
  const writer = stdin.getWriter();
  return streamTask(async () => {
    await writer.write(new TextEncoder().encode(text));
    await writer.close();
  }, () => writer.abort());
}

/** Wait until every promise settled or `ms` passed, whichever is first; never rejects. */
async function settledWithin(promises: (Promise<unknown> | undefined)[], ms: number) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  try {
    await Promise.race([Promise.allSettled(promises), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * SIGTERM the process group, wait up to `graceMs` for it to empty, then SIGKILL it
 * and wait (briefly) until it is gone. `skipGrace` aborting cuts the grace short.
 * Never throws: a group that is gone already counts as terminated, and a group
 * that cannot be signalled (no permission, a refused id) comes back with a `reason`.
 *
 * @param pgid the group to end (an agent's pid); 0, 1, negative values and the
 *   orchestrator's own group are refused (`gone: false`)
 * @param options `graceMs` between SIGTERM and SIGKILL; `skipGrace` to cut it short
 * @returns whether SIGKILL was needed, whether the group is gone, and why not when it could not be signalled
 * @example
 * ```ts
 * const { escalated, gone } = await terminateGroup(agent.pgid, { graceMs: 30_000 });
 * ```
 */
export async function terminateGroup(
  pgid: number,
  options: { graceMs: number; skipGrace?: AbortSignal },
): Promise<TerminateResult> {
  const { graceMs, skipGrace } = options;
  if (!(await isForeignGroup(pgid))) {
    return { escalated: false, gone: false, reason: `refusing to signal process group ${pgid}` };
  }

  const term = await signalGroup(pgid, "SIGTERM");
  if (term === "gone") return { escalated: false, gone: true };
  if (term !== "sent") {
    return { escalated: false, gone: !(await groupAlive(pgid)), reason: term.denied };
  }

  const graceEnd = performance.now() + Math.max(0, graceMs);
  while ((await groupAlive(pgid)) && !skipGrace?.aborted && performance.now() < graceEnd) {
    await pause(Math.min(POLL_MS, Math.max(1, graceEnd - performance.now())), skipGrace);
  }
  if (!(await groupAlive(pgid))) return { escalated: false, gone: true };

  const kill = await signalGroup(pgid, "SIGKILL");
  if (kill === "gone") return { escalated: true, gone: true };
  if (kill !== "sent") {
    return { escalated: true, gone: !(await groupAlive(pgid)), reason: kill.denied };
  }
  const killEnd = performance.now() + KILL_WAIT_MS;
  while ((await groupAlive(pgid)) && performance.now() < killEnd) await pause(POLL_MS);
  return { escalated: true, gone: !(await groupAlive(pgid)) };
}

/**
 * True while any non-zombie process belongs to process group `pgid`
 * (unknown counts as alive: never conclude a group is gone without seeing it).
 *
 * @param pgid a process-group id
 * @returns whether the group still has a live member
 * @example
 * ```ts
 * if (await groupAlive(agent.pgid)) console.log("still running");
 * ```
 */
export async function groupAlive(pgid: number): Promise<boolean> {
  if (!Number.isInteger(pgid) || pgid <= 0) return false;
  return (await processTable()).groupAlive(pgid);
}

/**
 * True when `pid` runs (not a zombie) and, when `startTime` is given, started
 * then (within {@linkcode START_TOLERANCE_S}): the same process, not a reused
 * pid. Unknown (no `ps`) counts as alive.
 *
 * @param pid a process id, e.g. from a lease
 * @param startTime its start, epoch seconds as recorded (see {@linkcode AgentProcess.startTime})
 * @returns whether that very process is still alive
 * @example
 * ```ts
 * if (!(await sameProcessAlive(lease.pid, lease.pidStart))) console.log("agent gone");
 * ```
 */
export async function sameProcessAlive(pid: number, startTime?: string): Promise<boolean> {
  return (await processTable({ fresh: true })).alive(pid, startTime);
}

/**
 * Start times recorded by this module are epoch seconds taken by the
 * orchestrator around the spawn; `ps` reports elapsed seconds. The two agree
 * within a second or two; a pid reused that fast is not a real risk.
 */
export const START_TOLERANCE_S = 3;

/**
 * This process's start, in epoch seconds (the unit of {@linkcode AgentProcess.startTime}).
 *
 * @example
 * ```ts
 * const lease = { orchestratorPid: Deno.pid, orchestratorStart: selfStartTime() };
 * ```
 */
export function selfStartTime(): string {
  return String(Math.floor(performance.timeOrigin / 1000));
}

/** One answer about many processes, from one `ps` listing. */
export interface ProcessTable {
  /** `pid` runs and, if given, started at `startTime` (epoch seconds, as a string). */
  alive(pid: number, startTime?: string | null): boolean;
  /** Some non-zombie process is in group `pgid`. */
  groupAlive(pgid: number): boolean;
  /** The group the orchestrator itself runs in, when known. */
  readonly ownGroup?: number;
  /** The listing could not be taken: every answer is "alive". */
  readonly unknown: boolean;
}

/** The `ps` run in flight, shared by every caller that asks meanwhile (a kill polls every 25 ms). */
let inFlight: Promise<ProcessTable> | undefined;

/**
 * A snapshot of the process table. Callers that ask while a listing is
 * being taken share it (it may have started a moment before they asked, so a
 * process spawned in that moment can be missing: fine for polling a dying
 * group); `fresh` takes a new listing. A finished listing is never reused. Read with `ps -A -o pid=,pgid=,stat=,etime=`
 * (Linux and macOS alike): Deno lets a program read /proc only under
 * `--allow-all`, so `ps` keeps the orchestrator within `--allow-run=...,ps`.
 *
 * @example
 * ```ts
 * const table = await processTable();
 * table.alive(lease.pid, lease.pidStart);
 * ```
 */
export function processTable(options: { fresh?: boolean } = {}): Promise<ProcessTable> {
  if (options.fresh) return readTable();
  if (inFlight) return inFlight;
  const table = readTable().finally(() => {
    inFlight = undefined;
  });
  inFlight = table;
  return table;
}

interface PsRow {
  pgid: number;
  zombie: boolean;
  /** Epoch seconds. */
  start: number;
}

async function readTable(): Promise<ProcessTable> {
  let text: string;
  try {
    const out = await new Deno.Command("ps", {
      args: ["-A", "-o", "pid=,pgid=,stat=,etime="],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
      env: { LC_ALL: "C" },
    }).output();
    if (!out.success) return UNKNOWN_TABLE;
    text = new TextDecoder().decode(out.stdout);
  } catch {
    return UNKNOWN_TABLE;
  }
  const now = Math.floor(Date.now() / 1000);
  const rows = new Map<number, PsRow>();
  const groups = new Set<number>();
  for (const line of text.split("\n")) {
    const [pid, pgid, stat, etime] = line.trim().split(/\s+/);
    const elapsed = parseElapsed(etime ?? "");
    if (!pid || elapsed === undefined) continue;
    const row = { pgid: Number(pgid), zombie: /^[ZX]/.test(stat ?? ""), start: now - elapsed };
    rows.set(Number(pid), row);
    if (!row.zombie) groups.add(row.pgid);
  }
  return {
    unknown: false,
    ownGroup: rows.get(Deno.pid)?.pgid,
    alive(pid, startTime) {
      const row = rows.get(pid);
      if (!row || row.zombie) return false;
      if (startTime === undefined || startTime === null || startTime === "") return true;
      const recorded = Number(startTime);
      return Number.isFinite(recorded) && Math.abs(row.start - recorded) <= START_TOLERANCE_S;
    },
    groupAlive: (pgid) => groups.has(pgid),
  };
}

const UNKNOWN_TABLE: ProcessTable = { unknown: true, alive: () => true, groupAlive: () => true };

/**
 * `ps` etime, `[[dd-]hh:]mm:ss`, in seconds.
 *
 * @example
 * ```ts
 * parseElapsed("1-02:03:04"); // 93784
 * ```
 */
export function parseElapsed(etime: string): number | undefined {
  const m = /^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)$/.exec(etime);
  if (!m) return undefined;
  const [, d, h, mi, s] = m;
  return ((Number(d ?? 0) * 24 + Number(h ?? 0)) * 60 + Number(mi)) * 60 + Number(s);
}

/**
 * Send `signal` to every process of group `pgid`: sent, gone already, or why
 * not. `Deno.kill(-pgid)` needs an unrestricted `--allow-run`; under a narrow
 * one the `kill` program does it.
 */
async function signalGroup(
  pgid: number,
  signal: Deno.Signal,
): Promise<"sent" | "gone" | { denied: string }> {
  try {
    Deno.kill(-pgid, signal);
    return "sent";
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return "gone";
    if (!(e instanceof Deno.errors.NotCapable)) {
      return {
        denied: `cannot send ${signal} to process group ${pgid}: ${oneLine(errorMessage(e))}`,
      };
    }
  }
  try {
    const out = await new Deno.Command("kill", {
      args: ["-s", signal.replace(/^SIG/, ""), "--", `-${pgid}`],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
      env: { LC_ALL: "C" },
    }).output();
    if (out.success) return "sent";
    const why = new TextDecoder().decode(out.stderr).trim();
    if (/no such process/i.test(why)) return "gone";
    return { denied: `cannot send ${signal} to process group ${pgid}: ${oneLine(why)}` };
  } catch (e) {
    return {
      denied: `cannot send ${signal} to process group ${pgid}: ${oneLine(errorMessage(e))} ` +
        "(grant --allow-run=kill)",
    };
  }
}

/** A group we may signal: a real id, and not the one the orchestrator itself runs in. */
async function isForeignGroup(pgid: number): Promise<boolean> {
  if (!Number.isInteger(pgid) || pgid <= 1 || pgid === Deno.pid) return false;
  const own = (await processTable()).ownGroup;
  return own === undefined || own !== pgid;
}

/** Sleep `ms`, or less when `signal` aborts. */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
