/**
 * Which processes are alive, from one shared `ps -A` listing (Linux and
 * macOS alike): Deno lets a program read /proc only under `--allow-all`, and
 * the orchestrator runs with a narrow `--allow-run=...,ps,kill`. Zombies do
 * not count (a PID 1 that does not reap would otherwise keep a killed group
 * "alive" forever).
 *
 * A process is identified by pid AND a start in epoch seconds, so a reused
 * pid is not taken for ours. Neither side is the kernel's start time: what we
 * record is our wall clock around the spawn (an agent) or when our runtime
 * started (the orchestrator itself), and what we compare it with is the wall
 * clock now minus the elapsed time `ps` reports (`etime`, whole seconds).
 * They agree within {@linkcode START_TOLERANCE_S} unless the wall clock was
 * stepped in between.
 *
 * @module
 */
import { runHelper } from "./helper.ts";

/**
 * True while any non-zombie process belongs to process group `pgid`
 * (unknown counts as alive: never conclude a group is gone without seeing it).
 *
 * @param pgid a process-group id
 * @returns whether the group still has a live member
 * @example
 * ```ts
 * declare const agent: { pgid: number };
 * if (await groupAlive(agent.pgid)) console.log("still running");
 * ```
 */
export async function groupAlive(pgid: number): Promise<boolean> {
  if (!Number.isInteger(pgid) || pgid <= 0) return false;
  return (await processTable()).groupAlive(pgid);
}
/**
 * True when `pid` runs (not a zombie) and, when `startTime` is given, started
 * then by `ps` (within {@linkcode START_TOLERANCE_S}): the same process, not a
 * reused pid. Unknown (no `ps`) counts as alive.
 *
 * @param pid a process id, e.g. from a lease
 * @param startTime its start, epoch seconds as recorded (see {@linkcode AgentProcess.startTime})
 * @returns whether that very process is still alive
 * @example
 * ```ts
 * declare const lease: { pid: number; pidStart: string };
 * if (!(await sameProcessAlive(lease.pid, lease.pidStart))) console.log("agent gone");
 * ```
 */
export async function sameProcessAlive(pid: number, startTime?: string): Promise<boolean> {
  return (await processTable({ fresh: true })).alive(pid, startTime);
}

/**
 * How far a recorded start (epoch seconds from our wall clock, taken just
 * after the spawn or at our runtime's start) may be from `ps`'s (now minus
 * `etime`, rounded down to the second) and still be the same process: the
 * two differ by the rounding of each and the time a spawn or a runtime start
 * takes, a second or two; a pid reused within that window is not a real
 * risk. A wall-clock step larger than this makes a live process look gone.
 */
export const START_TOLERANCE_S = 3;

/**
 * When this process's runtime started (`performance.timeOrigin`, a moment
 * after the kernel started it), in whole epoch seconds: the unit of
 * {@linkcode AgentProcess.startTime}.
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
 * declare const lease: { pid: number; pidStart: string };
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

/** A `ps` listing that takes longer than this is not trusted: every answer is "alive". */
const PS_TIMEOUT_MS = 10_000;

interface PsRow {
  pgid: number;
  zombie: boolean;
  /** Epoch seconds. */
  start: number;
}

async function readTable(): Promise<ProcessTable> {
  const out = await runHelper("ps", ["-A", "-o", "pid=,pgid=,stat=,etime="], {
    env: { LC_ALL: "C" },
    timeoutMs: PS_TIMEOUT_MS,
  });
  if (!out.started || out.code !== 0 || out.stopped) return UNKNOWN_TABLE;
  const text = new TextDecoder().decode(out.stdout);
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
