/**
 * Which processes are alive, and which process a pid is, from one shared
 * listing of the process table. Zombies do not count (a PID 1 that does not
 * reap would otherwise keep a killed group "alive" forever).
 *
 * The identity rule: a process is its pid AND its start.
 * - Linux: the start is the kernel's, in clock ticks since boot
 *   (`/proc/<pid>/stat` field 22), with the boot id
 *   (`/proc/sys/kernel/random/boot_id`): written `proc:<boot id>:<ticks>`.
 *   Equal means equal, exactly; no wall clock is involved, so a clock step
 *   never makes a live agent look dead, and a recycled pid (same number, other
 *   start, or another boot) never looks like ours.
 * - Elsewhere (macOS, or /proc unreadable): `ps -A` and a start in epoch
 *   seconds (wall clock now minus `etime`), compared with the one recorded
 *   within {@linkcode START_TOLERANCE_S}. Leases written by older versions
 *   carry that form too and are compared the same way.
 *
 * Deno lets a program read /proc only under `--allow-all`, so the listing is
 * taken by a helper: `sh` with a constant script (`cat` of every
 * `/proc/<pid>/stat`; no data ever reaches the shell), or `ps`.
 *
 * @module
 */
import { runHelper } from "./helper.ts";

/**
 * Where only `ps` is there (no /proc): how far a recorded start (epoch
 * seconds from our wall clock, taken just after the spawn or at our
 * runtime's start) may be from `ps`'s (now minus
 * `etime`, rounded down to the second) and still be the same process: the
 * two differ by the rounding of each and the time a spawn or a runtime start
 * takes, a second or two; a pid reused within that window is not a real
 * risk. A wall-clock step larger than this makes a live process look gone.
 */
const START_TOLERANCE_S = 3;

/**
 * When this process's runtime started (`performance.timeOrigin`, a moment
 * after the kernel started it), in whole epoch seconds: the fallback
 * identity where the process table gives none (see {@linkcode Processes.identify}).
 *
 * @example
 * ```ts
 * const lease = { orchestratorPid: Deno.pid, orchestratorStart: selfStartTime() };
 * ```
 */
export function selfStartTime(): string {
  return String(Math.floor(performance.timeOrigin / 1000));
}

/** One answer about many processes, from one listing. */
export interface ProcessTable {
  /**
   * `pid` runs and, when `start` is given, is that very process: `start` is
   * an identity from {@linkcode ProcessTable.identityOf} or, from older
   * leases, epoch seconds (compared within {@linkcode START_TOLERANCE_S}).
   */
  alive(pid: number, start?: string | null): boolean;
  /** Some non-zombie process is in group `pgid`. */
  groupAlive(pgid: number): boolean;
  /** The group of live process `pid` (undefined when it is not running). */
  groupOf(pid: number): number | undefined;
  /** When live process `pid` started, epoch seconds (undefined when it is not running). */
  startOf(pid: number): number | undefined;
  /** The live (non-zombie) processes of group `pgid`. */
  membersOf(pgid: number): number[];
  /** The identity to record for live process `pid` (undefined when it is not running). */
  identityOf(pid: number): string | undefined;
  /** The group the orchestrator itself runs in, when known. */
  readonly ownGroup?: number;
  /** The listing could not be taken: every answer is "alive". */
  readonly unknown: boolean;
}

/**
 * The process table as one run (or one command) asks it, with what is
 * shared between its callers: a listing being taken is shared by everyone
 * who asks meanwhile (a kill polls every 25 ms, several kills at once share
 * their listings), and exact identities asked for together are read in one
 * helper run. Created at the edge (a command), passed down; nothing of it
 * is module state.
 */
export class Processes {
  /** The listing in flight, shared by every caller that asks meanwhile. */
  #inFlight?: Promise<ProcessTable>;
  /** Pids waiting for their stat line (see {@linkcode Processes.identify}). */
  #batch?: Batch;

  /**
   * A snapshot of the process table. Callers that ask while a listing is
   * being taken share it (it may have started a moment before they asked,
   * so a process spawned in that moment can be missing: fine for polling a
   * dying group); `fresh` takes a new listing. A finished listing is never
   * reused. Read with `ps -A -o pid=,pgid=,stat=,etime=` (Linux and macOS
   * alike) or /proc through a helper: Deno lets a program read /proc only
   * under `--allow-all`.
   */
  table(options: { fresh?: boolean } = {}): Promise<ProcessTable> {
    if (options.fresh) return readTable();
    if (this.#inFlight) return this.#inFlight;
    const table = readTable().finally(() => {
      this.#inFlight = undefined;
    });
    this.#inFlight = table;
    return table;
  }

  /**
   * True while any non-zombie process belongs to process group `pgid`
   * (unknown counts as alive: never conclude a group is gone without seeing it).
   */
  async groupAlive(pgid: number): Promise<boolean> {
    if (!Number.isInteger(pgid) || pgid <= 0) return false;
    return (await this.table()).groupAlive(pgid);
  }

  /**
   * The identity of live process `pid` (see the module doc), from a fresh
   * listing; falls back to `fallback` (epoch seconds) when the process is
   * already gone or the listing failed. Pids asked for within
   * {@linkcode BATCH_MS} of each other share one helper run (a dispatch
   * round of many agents costs one or two, not one each).
   */
  async identify(pid: number, fallback: string): Promise<string> {
    if (Deno.build.os === "linux") {
      const row = await this.#procRowOf(pid);
      if (row) return row.zombie ? fallback : row.identity;
    }
    return (await this.table({ fresh: true })).identityOf(pid) ?? fallback;
  }

  /** Read the pending batch of {@linkcode Processes.identify} now instead of after its wait. */
  flushIdentify(): void {
    this.#batch?.flush();
  }

  /** The /proc row of one live pid, read in a batch with the others asked for meanwhile. */
  async #procRowOf(pid: number): Promise<Row | undefined> {
    this.#batch ??= this.#newBatch();
    this.#batch.pids.add(pid);
    return (await this.#batch.read)?.get(pid);
  }

  #newBatch(): Batch {
    const pids = new Set<number>();
    let flush = () => {};
    const flushed = new Promise<void>((resolve) => (flush = resolve));
    const read = (async () => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([flushed, new Promise((r) => (timer = setTimeout(r, BATCH_MS)))]);
      clearTimeout(timer);
      this.#batch = undefined;
      return await readStats([...pids]);
    })();
    return { pids, read, flush };
  }
}

/** A listing that takes longer than this is not trusted: every answer is "alive". */
const LIST_TIMEOUT_MS = 10_000;

/**
 * Linux: the boot id, /proc/stat (for `btime`), /proc/uptime and every
 * process's stat line, in one helper run. A constant: nothing from a gap or
 * a lease reaches the shell. A process that ends during the glob is simply
 * missing.
 */
const PROC_SCRIPT =
  "cd /proc && cat sys/kernel/random/boot_id stat uptime [0-9]*/stat 2>/dev/null; exit 0";

/** Clock ticks per second of /proc (USER_HZ: 100 on every Linux ABI Deno runs on). */
const USER_HZ = 100;

interface Row {
  pgid: number;
  zombie: boolean;
  /** Epoch seconds (derived; for identities in the epoch form). */
  start: number;
  /** `proc:<boot id>:<ticks>` on Linux, else epoch seconds as a string. */
  identity: string;
}

/**
 * A fresh listing of the process table.
 *
 * @example
 * ```ts
 * (await readTable()).alive(Deno.pid); // true
 * ```
 */
export async function readTable(): Promise<ProcessTable> {
  if (Deno.build.os === "linux") {
    const rows = await readProc();
    if (rows) return tableOf(rows);
  }
  const rows = await readPs();
  return rows ? tableOf(rows) : UNKNOWN_TABLE;
}

/** Every process from /proc, or undefined when /proc could not be read. */
async function readProc(): Promise<Map<number, Row> | undefined> {
  const out = await runHelper("sh", ["-c", PROC_SCRIPT], { timeoutMs: LIST_TIMEOUT_MS });
  if (!out.started || out.code !== 0 || out.stopped) return undefined;
  return parseProc(new TextDecoder().decode(out.stdout));
}

/**
 * Parse what {@linkcode PROC_SCRIPT} prints: the boot id line, /proc/stat,
 * /proc/uptime, then one `pid (comm) state ppid pgrp ...` line per process
 * (comm may hold spaces and parentheses: the fields start after the last
 * `)`). A start in epoch seconds is the boot's moment plus its ticks; that
 * moment is `nowMs` minus the uptime when the uptime is there (`btime` is
 * whole seconds and drifts from the wall clock by seconds, in containers
 * more), else `btime`.
 *
 * @example
 * ```ts
 * const rows = parseProc("0123abcd-99\nbtime 1000\n42 (a) b) S 1 42 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 500 0\n");
 * rows?.get(42)?.identity; // "proc:0123abcd-99:500"
 * ```
 */
export function parseProc(text: string, nowMs = Date.now()): Map<number, Row> | undefined {
  const lines = text.split("\n");
  const boot = lines[0]?.trim() ?? "";
  if (!/^[0-9a-f-]{8,}$/i.test(boot)) return undefined;
  let btime: number | undefined;
  let uptime: number | undefined;
  const rows = new Map<number, Row>();
  for (const line of lines) {
    if (btime === undefined && line.startsWith("btime ")) {
      btime = Number(line.slice(6));
      continue;
    }
    const up = uptime === undefined ? /^(\d+\.\d+) \d+\.\d+$/.exec(line) : null;
    if (up) {
      uptime = Number(up[1]);
      continue;
    }
    const close = line.lastIndexOf(")");
    const pid = /^(\d+) \(/.exec(line)?.[1];
    if (pid === undefined || close < 0) continue;
    const f = line.slice(close + 2).split(" ");
    // f[0] is field 3 (state), so field n is f[n - 3].
    const ticks = f[22 - 3];
    if (ticks === undefined || !/^\d+$/.test(ticks)) continue;
    rows.set(Number(pid), {
      pgid: Number(f[5 - 3]),
      zombie: f[0] === "Z" || f[0] === "X",
      // The boot's moment (the uptime comes before the stat lines) plus the ticks.
      start: Math.floor(
        (uptime === undefined ? btime ?? 0 : nowMs / 1000 - uptime) + Number(ticks) / USER_HZ,
      ),
      identity: `proc:${boot}:${ticks}`,
    });
  }
  return btime === undefined ? undefined : rows;
}

/** Every process from `ps`, or undefined when it could not be run. */
async function readPs(): Promise<Map<number, Row> | undefined> {
  const out = await runHelper("ps", ["-A", "-o", "pid=,pgid=,stat=,etime="], {
    env: { LC_ALL: "C" },
    timeoutMs: LIST_TIMEOUT_MS,
  });
  if (!out.started || out.code !== 0 || out.stopped) return undefined;
  const text = new TextDecoder().decode(out.stdout);
  const now = Math.floor(Date.now() / 1000);
  const rows = new Map<number, Row>();
  for (const line of text.split("\n")) {
    const [pid, pgid, stat, etime] = line.trim().split(/\s+/);
    const elapsed = parseElapsed(etime ?? "");
    if (!pid || elapsed === undefined) continue;
    const start = now - elapsed;
    rows.set(Number(pid), {
      pgid: Number(pgid),
      zombie: /^[ZX]/.test(stat ?? ""),
      start,
      identity: String(start),
    });
  }
  return rows;
}

function tableOf(rows: Map<number, Row>): ProcessTable {
  const groups = new Map<number, number[]>();
  for (const [pid, row] of rows) {
    if (row.zombie) continue;
    const members = groups.get(row.pgid);
    if (members) members.push(pid);
    else groups.set(row.pgid, [pid]);
  }
  const live = (pid: number) => {
    const row = rows.get(pid);
    return row && !row.zombie ? row : undefined;
  };
  return {
    unknown: false,
    ownGroup: rows.get(Deno.pid)?.pgid,
    alive(pid, start) {
      const row = rows.get(pid);
      if (!row || row.zombie) return false;
      return start === undefined || start === null || start === "" || sameStart(row, start);
    },
    groupAlive: (pgid) => groups.has(pgid),
    groupOf: (pid) => live(pid)?.pgid,
    startOf: (pid) => live(pid)?.start,
    membersOf: (pgid) => [...(groups.get(pgid) ?? [])],
    identityOf: (pid) => live(pid)?.identity,
  };
}

/** Is `recorded` (an identity, or epoch seconds from an older lease) the start of `row`? */
function sameStart(row: Row, recorded: string): boolean {
  if (recorded.startsWith("proc:")) return row.identity === recorded;
  const epoch = Number(recorded);
  return Number.isFinite(epoch) && Math.abs(row.start - epoch) <= START_TOLERANCE_S;
}

/**
 * Whose is process group `pid` (a group led, when it started, by the agent
 * or waiter `pid` of identity `identity`)?
 * - `agent`: that very process still runs;
 * - `leftovers`: it is gone but members of its group run on (the kernel
 *   never hands out a pid still in use as a group id, so they are its);
 * - `none`: nothing of it runs, or the pid now belongs to another process
 *   (recycled): never signal it.
 *
 * @example
 * ```ts
 * declare const lease: { pid: number; pidStart: string };
 * const table = await readTable();
 * if (groupOwner(table, lease.pid, lease.pidStart) !== "none") console.log("ours to end");
 * ```
 */
export function groupOwner(
  table: ProcessTable,
  pid: number,
  identity: string | null | undefined,
): "agent" | "leftovers" | "none" {
  if (table.alive(pid, identity)) return "agent";
  if (!table.alive(pid) && table.groupAlive(pid)) return "leftovers";
  return "none";
}

const UNKNOWN_TABLE: ProcessTable = {
  unknown: true,
  alive: () => true,
  groupAlive: () => true,
  groupOf: () => undefined,
  startOf: () => undefined,
  membersOf: () => [],
  identityOf: () => undefined,
};

/** How long a batch of pids waits for more before its stat lines are read. */
const BATCH_MS = 100;

/** Pids whose stat lines are read together, and the read. */
interface Batch {
  pids: Set<number>;
  read: Promise<Map<number, Row> | undefined>;
  flush: () => void;
}

/** The /proc rows of `pids` (with the boot id), in one helper run. */
async function readStats(pids: number[]): Promise<Map<number, Row> | undefined> {
  const paths = pids.map((p) => `/proc/${p}/stat`);
  const out = await runHelper("sh", ["-c", STAT_SCRIPT, "sh", ...paths], {
    timeoutMs: LIST_TIMEOUT_MS,
  });
  if (!out.started || out.stopped) return undefined;
  const [boot, ...stats] = new TextDecoder().decode(out.stdout).split("\n");
  return parseProc([boot, "btime 0", ...stats].join("\n"));
}

/**
 * The boot id, then the stat files given as arguments (`/proc/<pid>/stat`,
 * built from numbers we produce, never data); a pid that is gone is skipped.
 */
const STAT_SCRIPT = 'cat /proc/sys/kernel/random/boot_id; cat "$@" 2>/dev/null; exit 0';

/** `ps` etime, `[[dd-]hh:]mm:ss`, in seconds. */
function parseElapsed(etime: string): number | undefined {
  const m = /^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)$/.exec(etime);
  if (!m) return undefined;
  const [, d, h, mi, s] = m;
  return ((Number(d ?? 0) * 24 + Number(h ?? 0)) * 60 + Number(mi)) * 60 + Number(s);
}
