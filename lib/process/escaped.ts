/**
 * Processes that escaped their agent's group: a descendant that called
 * `setsid` (or `setpgid`) is out of the group the orchestrator ends, and
 * would outlive the outcome (a `sleep 99999` in a deleted worktree). Every
 * agent's environment carries its dispatch's marks (`CHUMP_GAP_ID`,
 * `CHUMP_WORKTREE`, `CHUMP_LEASE_ID`: CONTRACT §3) and its descendants
 * inherit them, so they are found by reading every process's environment
 * ({@linkcode markedProcesses}) and ended ({@linkcode endEscaped}) once the
 * dispatch's outcome is decided (watch/finish.ts) and at `reap`.
 *
 * A process is a dispatch's only when all three marks are that dispatch's
 * (a lease id alone repeats across DBs; a worktree path across attempts).
 * Linux only: the environment is read from `/proc/<pid>/environ` by a helper
 * (`sh` with a constant script and `grep -z`; Deno reads /proc only under
 * `--allow-all`); elsewhere nothing is found. A process that cleared its
 * environment cannot be told apart and is left alone.
 *
 * @module
 */
import { runHelper } from "./helper.ts";
import { terminate, type TerminateResult } from "./signal.ts";
import type { Processes, ProcessTable } from "./table.ts";

/** The marks a dispatch puts in its agent's environment. */
export interface Marks {
  gapId: string;
  worktree: string;
  /** `CHUMP_LEASE_ID`; undefined when the dispatch had no lease. */
  leaseId?: string;
}

/** A running process that carries a dispatch's marks. */
export interface Marked {
  pid: number;
  marks: Marks;
}

/** How ending one escaped process went. */
export interface EndedEscapee extends TerminateResult {
  pid: number;
  gapId: string;
}

/** The listing does not wait longer than this for /proc. */
const SCAN_TIMEOUT_MS = 10_000;

/**
 * Every process's marks, NUL-separated records `PID/environ:NAME=VALUE`. A
 * constant: no gap data reaches the shell. The helper runs with the marks
 * blanked, so it and its `grep` are never found themselves.
 */
const ENVIRON_SCRIPT = "cd /proc && grep -s -a -z -H -E " +
  "'^CHUMP_(GAP_ID|WORKTREE|LEASE_ID)=' [0-9]*/environ; exit 0";

/**
 * Every running process (but this one) whose environment carries a gap id
 * and a worktree; empty off Linux or when /proc cannot be read.
 *
 * @example
 * ```ts
 * const mine = (await markedProcesses()).filter((m) => m.marks.gapId === "A-1");
 * ```
 */
export async function markedProcesses(): Promise<Marked[]> {
  if (Deno.build.os !== "linux") return [];
  const out = await runHelper("sh", ["-c", ENVIRON_SCRIPT], {
    env: { CHUMP_GAP_ID: "", CHUMP_WORKTREE: "", CHUMP_LEASE_ID: "" },
    timeoutMs: SCAN_TIMEOUT_MS,
  });
  if (!out.started || out.code !== 0 || out.stopped) return [];
  return parseMarks(new TextDecoder().decode(out.stdout));
}

/**
 * Parse {@linkcode ENVIRON_SCRIPT}'s records into marked processes (those
 * with a gap id and a worktree), leaving out this very process.
 *
 * @example
 * ```ts
 * parseMarks("7/environ:CHUMP_GAP_ID=A-1\x007/environ:CHUMP_WORKTREE=/w/a\x00");
 * // [{ pid: 7, marks: { gapId: "A-1", worktree: "/w/a" } }]
 * ```
 */
export function parseMarks(text: string): Marked[] {
  const byPid = new Map<number, Partial<Record<string, string>>>();
  for (const record of text.split("\0")) {
    const m = /^(\d+)\/environ:CHUMP_(GAP_ID|WORKTREE|LEASE_ID)=(.*)$/s.exec(record);
    if (!m) continue;
    const pid = Number(m[1]);
    const env = byPid.get(pid) ?? {};
    env[m[2]] = m[3];
    byPid.set(pid, env);
  }
  const marked: Marked[] = [];
  for (const [pid, env] of byPid) {
    if (pid === Deno.pid || !env.GAP_ID || !env.WORKTREE) continue;
    const marks: Marks = { gapId: env.GAP_ID, worktree: env.WORKTREE };
    if (env.LEASE_ID) marks.leaseId = env.LEASE_ID;
    marked.push({ pid, marks });
  }
  return marked;
}

/**
 * Does `m` carry the marks of the dispatch of `gapId` in `worktree` under
 * lease `leaseId` (null: it had none)?
 *
 * @example
 * ```ts
 * const m = { pid: 7, marks: { gapId: "A-1", worktree: "/w/a", leaseId: "3" } };
 * isOfDispatch(m, { gapId: "A-1", worktree: "/w/a", leaseId: 3 }); // true
 * ```
 */
export function isOfDispatch(
  m: Marked,
  d: { gapId: string; worktree: string; leaseId: number | null },
): boolean {
  return m.marks.gapId === d.gapId && m.marks.worktree === d.worktree &&
    m.marks.leaseId === (d.leaseId === null ? undefined : String(d.leaseId));
}

/**
 * End `escaped` (processes of dispatches whose outcome is decided): a group
 * every live member of which is escaped is ended as a group (what an
 * escapee started since goes with it), any other escapee alone. SIGTERM,
 * `graceMs`, SIGKILL, as for an agent's group.
 *
 * @returns one result per escaped process that was still running
 * @example
 * ```ts ignore
 * for (const e of await endEscaped(found, { processes, graceMs: 2_000 })) {
 *   console.log(`ESCAPED: PID ${e.pid} of ${e.gapId} ended`);
 * }
 * ```
 */
export async function endEscaped(
  escaped: readonly Marked[],
  options: {
    processes: Processes;
    graceMs: number;
    skipGrace?: AbortSignal;
    /** The listing the escapees were chosen from (default: a fresh one). */
    table?: ProcessTable;
  },
): Promise<EndedEscapee[]> {
  if (escaped.length === 0) return [];
  const { processes, graceMs, skipGrace } = options;
  const table = options.table ?? await processes.table({ fresh: true });
  const gapOf = new Map(escaped.map((m) => [m.pid, m.marks.gapId]));
  const groups = new Map<number, number[]>();
  const alone: number[] = [];
  for (const { pid } of escaped) {
    const pgid = table.groupOf(pid);
    if (pgid === undefined) continue; // gone already
    const whole = table.membersOf(pgid).every((member) => gapOf.has(member));
    if (whole) groups.set(pgid, [...(groups.get(pgid) ?? []), pid]);
    else alone.push(pid);
  }
  const jobs: Promise<EndedEscapee[]>[] = [];
  for (const [pgid, pids] of groups) {
    jobs.push(
      terminate({ group: pgid }, { graceMs, processes, skipGrace }).then((t) =>
        pids.map((pid) => ({ ...t, pid, gapId: gapOf.get(pid) ?? "" }))
      ),
    );
  }
  for (const pid of alone) {
    const identity = table.identityOf(pid);
    jobs.push(
      terminate({ process: pid, identity }, { graceMs, processes, skipGrace }).then((t) => [
        { ...t, pid, gapId: gapOf.get(pid) ?? "" },
      ]),
    );
  }
  return (await Promise.all(jobs)).flat().sort((a, b) => a.pid - b.pid);
}
