/**
 * Agents that do not depend on the orchestrator being alive: each agent is
 * started by a tiny waiter, `sh` running a constant script (gap data only
 * ever arrives as `"$@"` and file names, never as shell text), which
 *
 * - leads the agent's process group (its pid is the group id, and the pid
 *   the lease records: it lives exactly as long as the agent, a moment more);
 * - sends the agent's stdout and stderr to files (one pair per dispatch
 *   attempt, under `dispatch-logs/` next to the DB), not to pipes that would
 *   break when the orchestrator dies; its stdin is the prompt file;
 * - survives signals aimed at the group (it traps them; the agent, started
 *   after the trap with default handlers, does not), waits for the agent and
 *   writes its exit status (128 + N for signal N) atomically to the status
 *   file (`mv` of a complete temp file), then exits with that status.
 *
 * A waiter costs one `sh` (about 1.7 MB resident with dash), not a runtime.
 * Only SIGKILL of the whole group, which only the orchestrator sends after a
 * kill grace, ends a waiter before it writes the status.
 *
 * @module
 */
import { dirname, join } from "../util/path.ts";

/** The files of one dispatch attempt. */
export interface AgentFiles {
  /** Path prefix shared by the files below (recorded in the lease). */
  base: string;
  /** The agent's stdout. */
  out: string;
  /** The agent's stderr (the WARN/ERROR tail is read from here). */
  err: string;
  /** The agent's exit status, written once, atomically, by the waiter. */
  status: string;
  /** The prompt, the agent's stdin. */
  prompt: string;
  /** Cap of each log file while followed (process/log_cap.ts); default 32 MiB. */
  capBytes?: number;
}

/**
 * The files of a dispatch attempt whose prefix is `base`.
 *
 * @example
 * ```ts
 * agentFiles("/r/sessions/dispatch-logs/7-auto-013").status;
 * // "/r/sessions/dispatch-logs/7-auto-013.status"
 * ```
 */
export function agentFiles(base: string, capBytes?: number): AgentFiles {
  return {
    base,
    capBytes,
    out: `${base}.out.log`,
    err: `${base}.err.log`,
    status: `${base}.status`,
    prompt: `${base}.prompt`,
  };
}

/**
 * Where the files of lease `leaseId` (slug `slug`) go in `logsDir`
 * (`dispatch-logs/` next to the DB, never inside the worktree).
 *
 * @example
 * ```ts
 * logBase("/r/sessions/dispatch-logs", 7, "auto-013"); // "/r/sessions/dispatch-logs/7-auto-013"
 * ```
 */
export function logBase(logsDir: string, leaseId: number, slug: string): string {
  return join(logsDir, `${leaseId}-${slug}`);
}

/**
 * The directory of every dispatch attempt's files for the DB at `dbPath`.
 *
 * @example
 * ```ts
 * logsDirFor("/r/sessions/chump_memory.db"); // "/r/sessions/dispatch-logs"
 * ```
 */
export function logsDirFor(dbPath: string): string {
  return join(dirname(dbPath), "dispatch-logs");
}

/**
 * The waiter's script: `$1` status file, `$2` stdout file, `$3` stderr file,
 * `$4` stdin file, then the agent's argv. A constant.
 */
const WAITER_SCRIPT = [
  "status=$1 out=$2 err=$3 in=$4",
  "shift 4",
  "trap : HUP INT TERM",
  '"$@" <"$in" >>"$out" 2>>"$err"',
  "code=$?",
  `printf '%s\\n' "$code" >"$status.tmp" && mv -f "$status.tmp" "$status"`,
  'exit "$code"',
].join("\n");

/** argv[0] of the waiter as `ps` shows it. */
const WAITER_NAME = "chump-waiter";

/**
 * The `sh` arguments that run `argv` under a waiter writing to `files`.
 *
 * @example
 * ```ts
 * waiterArgs(agentFiles("/l/7-a"), ["claude", "-p"]).slice(3, 5); // ["chump-waiter", "/l/7-a.status"]
 * ```
 */
export function waiterArgs(files: AgentFiles, argv: readonly string[], stdin?: string): string[] {
  return [
    "-c",
    WAITER_SCRIPT,
    WAITER_NAME,
    files.status,
    files.out,
    files.err,
    stdin ?? "/dev/null",
    ...argv,
  ];
}

/**
 * The exit status the waiter recorded, or undefined while there is none (the
 * agent runs, or its waiter was killed before it could write).
 *
 * @example
 * ```ts
 * await readStatus(agentFiles("/nonexistent/1-a")); // undefined
 * ```
 */
export async function readStatus(files: AgentFiles): Promise<number | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(files.status);
  } catch {
    return undefined;
  }
  const code = Number(text.trim());
  return text.trim() !== "" && Number.isInteger(code) ? code : undefined;
}
