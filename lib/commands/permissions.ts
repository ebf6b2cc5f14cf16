/**
 * Least privilege: the Deno permissions one run of the orchestrator needs,
 * and a one-line check that they were granted before anything is dispatched.
 *
 * - no network (agents and `gh` are separate processes with their own),
 *   except the dashboard's one loopback address and port;
 * - run: `git`, `gh`, `bash` (claim scripts), `sh` (the per-agent waiter, and
 *   reading /proc, which Deno allows only under --allow-all), `ps` (where /proc
 *   is missing), `kill` (process groups), the agent presets (`claude`, `chump`),
 *   `deno` (the demo agent), and `CHUMP_ALLOW_RUN`'s (a custom `--agent-cmd`);
 * - write: the repo's `.claude` (worktrees), the DB's directory (DB, WAL,
 *   spool) and the temp dir (self-test, fallback spool) - only for commands
 *   that write; a dry run, `status` and `reflections` write nothing;
 * - env: only the variables it reads (git's location ones: the repo root is read from the
 *   disk when they are unset); sys: the host name (leases).
 *
 * @module
 */
import { dirname, join, resolve } from "../util/path.ts";
import type { Command } from "../cli/parse.ts";
import { dbHostPort } from "../util/db_url.ts";
import { envVar, tempDir } from "../util/env.ts";
import { DEMO_AGENT_ENV } from "../process/self_command.ts";
import { GIT_LOCATION_ENV } from "../git/git.ts";

/**
 * Programs the orchestrator may start, before any `CHUMP_ALLOW_RUN` additions:
 * git and gh, shells (the waiter), ps and kill, the agents' CLIs, itself.
 */
export const ALLOWED_RUN = "git gh bash sh ps kill claude codex chump deno".split(" ");

/**
 * Marks the second Deno of a relaunch (lib/commands/launch.ts), so it never
 * relaunches again even when a write path could not be granted.
 */
export const RELAUNCHED_ENV = "CHUMP_RELAUNCHED";

/** Environment variables the orchestrator reads. */
const ALLOWED_ENV = [
  ..."PATH INIT_CWD TMPDIR CHUMP_AGENT_CMD CHUMP_DISPATCH_BACKEND CHUMP_DISPATCH_DEPTH".split(" "),
  ..."CHUMP_FAULT_INJECT CHUMP_ALLOW_RUN CHUMP_LEDGER_URL".split(" "),
  RELAUNCHED_ENV,
  ...GIT_LOCATION_ENV,
];

/** What the PostgreSQL driver reads from the environment (granted only to a run with `--ledger`). */
export const PG_ENV = [
  "PGAPPNAME",
  "PGDATABASE",
  "PGHOST",
  "PGPASSWORD",
  "PGPORT",
  "PGTARGETSESSIONATTRS",
  "PGUSER",
  "PGUSERNAME",
  // Each default option of the driver, read as PG<OPTION> when not given.
  "PGMAX",
  "PGSSL",
  "PGIDLE_TIMEOUT",
  "PGCONNECT_TIMEOUT",
  "PGMAX_LIFETIME",
  "PGMAX_PIPELINE",
  "PGBACKOFF",
  "PGKEEP_ALIVE",
  "PGPREPARE",
  "PGDEBUG",
  "PGFETCH_TYPES",
  "PGPUBLICATIONS",
  "PGTARGET_SESSION_ATTRS",
  "LOGNAME",
  "USER",
  "USERNAME",
];

/**
 * The shared ledger's URL of a dispatch run: `--ledger`, else `CHUMP_LEDGER_URL`.
 *
 * @example
 * ```ts ignore
 * ledgerUrlOf(command); // "postgres://chump@db:5432/chump"
 * ```
 */
export function ledgerUrlOf(command: Command): string | undefined {
  if (
    command.kind === "watch" || command.kind === "reap" || command.kind === "stop" ||
    command.kind === "unpark"
  ) {
    return command.options.ledger ?? ledgerEnv();
  }
  // Readers look at the fleet only when asked to (`--ledger`); the local DB otherwise.
  if (
    command.kind === "reflections" || command.kind === "lessons" || command.kind === "route" ||
    command.kind === "status" || command.kind === "serve"
  ) {
    return command.options.ledger;
  }
  if (command.kind !== "dispatch" || !command.options.noDryRun) return undefined;
  return command.options.ledger ?? ledgerEnv();
}

/** `CHUMP_LEDGER_URL`, when it is set and may be read. */
function ledgerEnv(): string | undefined {
  try {
    return Deno.env.get("CHUMP_LEDGER_URL") || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Programs the task process itself may run: `git` (the repo root), `sh`
 * and `ps` (liveness in `status` and the dry run's lease check) and this Deno, by
 * name and as `/proc/self/exe` (Linux), to start a command that writes again
 * with its write paths (lib/commands/launch.ts).
 */
export const TASK_RUN = ["git", "sh", "ps", "deno", "/proc/self/exe"];

/**
 * The permission flags of the `dispatch` task in deno.json (which must say
 * exactly this): read, the variables the tool reads, the host name,
 * {@linkcode TASK_RUN}, and no write at all.
 *
 * @example
 * ```ts
 * import { taskPermissionFlags } from "./permissions.ts";
 *
 * taskPermissionFlags().includes("--allow-read"); // true
 * ```
 */
export function taskPermissionFlags(): string[] {
  return [
    "--no-prompt",
    "--allow-read",
    `--allow-env=${ALLOWED_ENV.join(",")}`,
    "--allow-sys=hostname",
    `--allow-run=${TASK_RUN.join(",")}`,
  ];
}

/** The hosts the compiled binary's dashboard may listen on (a task run grants exactly its own). */
const LOOPBACK = ["127.0.0.1", "localhost"];

/**
 * The network a command needs: the dashboard's address and port (port 0:
 * any port of that host), and the shared ledger's host:port when the command
 * uses one; nothing for every other command.
 *
 * @example
 * ```ts
 * import { parseCli } from "../cli/parse.ts";
 *
 * const command = parseCli(["serve", "--port", "8377"]);
 * if (command.ok) netHosts(command.value); // ["127.0.0.1:8377"]
 * ```
 */
export function netHosts(command: Command): string[] {
  const ledger = ledgerUrlOf(command);
  const hostPort = ledger === undefined ? undefined : dbHostPort(ledger);
  const db = hostPort === undefined ? [] : [hostPort];
  if (command.kind !== "serve") return db;
  const { host, port } = command.options;
  return [port === 0 ? host : `${host}:${port}`, ...db];
}

/** Where one run writes, resolved. */
export interface RunPaths {
  repoRoot: string;
  db: string;
}

/**
 * The paths a command writes to (empty for read-only commands).
 *
 * @example
 * ```ts
 * import { writePaths } from "./permissions.ts";
 * import { parseCli } from "../cli/parse.ts";
 *
 * const command = parseCli(["--no-dry-run"]);
 * if (command.ok) {
 *   writePaths(command.value, { repoRoot: "/repo", db: "/repo/sessions/chump_memory.db" });
 *   // ["/repo/.claude", "/repo/sessions", "/tmp"]
 * }
 * ```
 */
export function writePaths(command: Command, paths: RunPaths, tmp = tempDir()): string[] {
  switch (command.kind) {
    case "dispatch":
      if (!command.options.noDryRun) return [];
      return runWrites(command.options.events, paths, tmp);
    case "watch":
      return runWrites(command.options.events, paths, tmp);
    case "reap":
    case "stop":
    case "unpark":
      return [dirname(paths.db), tmp];
    case "self-test":
      return [tmp];
    default:
      return [];
  }
}

/** A real run writes its worktrees, its DB's directory, the temp dir and its events file. */
function runWrites(events: string | undefined, paths: RunPaths, tmp: string): string[] {
  const writes = [join(paths.repoRoot, ".claude"), dirname(paths.db), tmp];
  if (events !== undefined && events !== "-") writes.push(resolve(events));
  return writes;
}

/**
 * `deno run` permission flags for one run of main.ts.
 *
 * @param writes paths to allow writing (none: no write permission at all)
 * @param extraRun programs added by the operator (`CHUMP_ALLOW_RUN`)
 * @param extraEnv variables to read beyond {@linkcode ALLOWED_ENV}
 * @param net hosts (`host` or `host:port`) to allow listening on (the dashboard only)
 * @example
 * ```ts
 * permissionFlags(["/repo/.claude"], ["my-agent"]);
 * ```
 */
export function permissionFlags(
  writes: readonly string[],
  extraRun: readonly string[] = [],
  extraEnv: readonly string[] = [],
  net: readonly string[] = [],
): string[] {
  const run = [...ALLOWED_RUN, ...extraRun.filter((c) => c !== "" && !ALLOWED_RUN.includes(c))];
  return [
    "--no-prompt",
    "--allow-read",
    ...(writes.length > 0 ? [`--allow-write=${writes.join(",")}`] : []),
    ...(net.length > 0 ? [`--allow-net=${net.join(",")}`] : []),
    `--allow-env=${[...ALLOWED_ENV, ...extraEnv].join(",")}`,
    "--allow-sys=hostname",
    `--allow-run=${run.join(",")}`,
  ];
}

/** The compiled binary's name: it starts itself as the self-test's demo agent. */
export const BINARY_NAME = "chump-orchestrator";

/**
 * `deno compile` permission flags: the same as a task run, except that the
 * paths a run writes are only known when it starts, so the binary may write
 * wherever the user can and gives that up for read-only commands (see
 * {@linkcode dropWritesIfReadOnly}); and it may run itself by name, which
 * Deno resolves on PATH when the binary starts.
 *
 * @example
 * ```ts
 * compiledPermissionFlags(["aider"]);
 * ```
 */
export function compiledPermissionFlags(extraRun: readonly string[] = []): string[] {
  // The binary is also its own demo agent (the self-test's), which reads a few more variables.
  return [
    ...permissionFlags([], [BINARY_NAME, ...extraRun], DEMO_AGENT_ENV, LOOPBACK),
    "--allow-write",
  ];
}

/**
 * Give up write permission for a command that writes nothing (a dry run,
 * `status`, `reflections`): what the compiled binary, whose permissions are
 * fixed at build time, does instead of a narrow grant (lib/commands/launch.ts;
 * `--help` and `--version` never get there, and write nothing).
 */
export function dropWritesIfReadOnly(command: Command): void {
  if (writePaths(command, { repoRoot: "/", db: "/db" }).length > 0) return;
  try {
    Deno.permissions.revokeSync({ name: "write" });
  } catch {
    // nothing to give up
  }
}

/**
 * Programs added with `CHUMP_ALLOW_RUN` (comma separated).
 *
 * @example
 * ```ts
 * extraRunFrom("aider, /opt/bin/agent"); // ["aider", "/opt/bin/agent"]
 * ```
 */
export function extraRunFrom(text: string | undefined): string[] {
  return (text ?? "").split(",").map((c) => c.trim()).filter((c) => c !== "");
}

/**
 * Check that `command` can be started: it exists (on PATH, or at its path)
 * and this process may run it. One line saying what to do when not.
 */
function cannotRun(command: string, what: string, hint?: string): string | undefined {
  let state: Deno.PermissionState;
  try {
    state = Deno.permissions.querySync({ name: "run", command }).state;
  } catch {
    return undefined; // cannot tell: the spawn itself will report it
  }
  if (state === "granted") return undefined;
  return refusal(command, what, hint);
}

/** Why `command` may not be started: not found, or not granted (and how to grant it). */
function refusal(command: string, what: string, hint?: string): string {
  if (!commandExists(command)) {
    const where = command.includes("/") ? "" : " on PATH";
    return `${what} '${command}' not found${where}${hint ? ` (${hint})` : ""}`;
  }
  if (Deno.build.standalone) {
    return `not allowed to run '${command}' (${what}): this binary runs only the programs named ` +
      `when it was built; rebuild it with CHUMP_ALLOW_RUN=${command} deno task compile` +
      (command.endsWith(`/${BINARY_NAME}`) ? `, or put ${BINARY_NAME} on your PATH` : "");
  }
  return `not allowed to run '${command}' (${what}): add it with CHUMP_ALLOW_RUN=${command} ` +
    `(deno task) or --allow-run=...,${command} (deno run)`;
}

/**
 * What a real run would say of starting `command`, from a process that will
 * not start it itself (a dry run, which runs with the task's narrow
 * permissions): a real run under `deno task` is granted {@linkcode ALLOWED_RUN},
 * `CHUMP_ALLOW_RUN` and this Deno; the compiled binary, what this process is.
 *
 * @example
 * ```ts
 * refusedInRun("claude", "the agent command", []); // undefined
 * ```
 */
export function refusedInRun(
  command: string,
  what: string,
  extraRun: readonly string[],
): string | undefined {
  if (Deno.build.standalone) return cannotRun(command, what);
  // The relaunched run is granted these, and this very Deno (see launch.ts).
  const granted = [...ALLOWED_RUN, ...extraRun, Deno.execPath()];
  if (granted.includes(command)) return undefined;
  return cannotRun(command, what) && refusal(command, what);
}

/**
 * The first program of `runs` ([command, what it is for, hint]) that cannot
 * be started, as one line; undefined when all can.
 *
 * @example
 * ```ts
 * firstCannotRun([["git", "git"], ["claude", "the agent command"]]);
 * ```
 */
export function firstCannotRun(
  runs: readonly (readonly [string, string, string?])[],
): string | undefined {
  for (const [command, what, hint] of runs) {
    const problem = cannotRun(command, what, hint);
    if (problem) return problem;
  }
  return undefined;
}

/** Does `command` name an existing file, directly or through PATH? (true when unsure) */
function commandExists(command: string): boolean {
  const isFile = (p: string) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  };
  if (command.includes("/")) return isFile(command);
  const path = envVar("PATH");
  if (path === undefined) return true;
  return path.split(":").some((dir) => dir !== "" && isFile(join(dir, command)));
}

/**
 * Check that this process may write `path`; one line saying how to grant it when not.
 *
 * @example
 * ```ts
 * missingWrite("/repo/sessions/chump_memory.db", "the reflection DB");
 * ```
 */
export function missingWrite(path: string, what: string): string | undefined {
  let state: Deno.PermissionState;
  try {
    state = Deno.permissions.querySync({ name: "write", path: resolve(path) }).state;
  } catch {
    return undefined;
  }
  if (state === "granted") return undefined;
  return `not allowed to write ${path} (${what}): run through 'deno task', which grants it, ` +
    `or add --allow-write=${dirname(resolve(path))} (deno run)`;
}
