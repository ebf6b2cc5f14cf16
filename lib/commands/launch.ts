/**
 * The least-privilege launch behind `deno task dispatch` (and the self-test,
 * reflections, status and reap tasks). The task runs main.ts with narrow
 * static permissions and no write access at all
 * ({@linkcode taskPermissionFlags}). A command that writes nothing (a dry
 * run, `status`, `reflections`, `--help`, `--version`) runs in that process.
 * A command that writes (a real dispatch, the self-test, `reap`) is started
 * once more, as a second Deno with exactly this run's write paths
 * (`permissionFlags`), plus this Deno's own absolute path in `--allow-run` so
 * the self-test can start its demo agent.
 *
 * Why a path search: `--allow-run=deno` resolves `deno` on PATH without
 * following symlinks, while `Deno.execPath()` is canonical, so under an npm
 * `-g` or Homebrew install (a symlink on PATH), or a Deno run by absolute
 * path that is not on PATH at all, this Deno may not start its own
 * `execPath`. {@linkcode chooseDeno} takes, in order: `execPath` when it is
 * granted; `/proc/self/exe` when it is granted (Linux; the task grants it);
 * the `deno` on PATH when it is the same file (device and inode: symlinks and
 * hard links); else one line saying what to do.
 *
 * Signals: the terminal's Ctrl-C reaches both processes (same process
 * group), so the first one ignores SIGINT and only waits; a SIGTERM or SIGHUP
 * sent to it alone is passed on. The exit code is the second one's. The
 * compiled binary (`Deno.build.standalone`) never relaunches: its permissions
 * are fixed when it is built, and it gives up writing here for a command that
 * writes nothing ({@linkcode dropWritesIfReadOnly}).
 *
 * @module
 */
import { delimiter, fileUrlPath, resolve } from "../util/path.ts";
import { errorLine, EXIT } from "../cli/io.ts";
import { type Command, parseCli } from "../cli/parse.ts";
import { resolvePaths } from "./paths.ts";
import {
  dropWritesIfReadOnly,
  extraRunFrom,
  ledgerUrlOf,
  netHosts,
  permissionFlags,
  PG_ENV,
  RELAUNCHED_ENV,
  writePaths,
} from "./permissions.ts";
import { envVar } from "../util/env.ts";
import { errorMessage, fail, ok, type Result } from "../util/result.ts";

/** The Linux path of the running executable, usable under `--allow-run=/proc/self/exe`. */
export const PROC_SELF_EXE = "/proc/self/exe";

/** What decides how this process can start Deno again. */
export interface DenoFacts {
  /** `Deno.execPath()`: canonical. */
  execPath: string;
  /** May this process run `execPath`? */
  execGranted: boolean;
  /** May it run `/proc/self/exe` (false off Linux)? */
  procSelfGranted: boolean;
  /** The first `deno` on PATH, if there is one. */
  pathDeno?: {
    path: string;
    /** The same file as `execPath` (same device and inode)? */
    sameFile: boolean;
    /** May this process run it? */
    granted: boolean;
  };
}

/**
 * The path to start this same Deno with, or one line saying why there is none.
 * Pure: the facts come from {@linkcode denoFacts}.
 *
 * @example
 * ```ts
 * import { chooseDeno } from "./launch.ts";
 *
 * chooseDeno({
 *   execPath: "/opt/deno/deno",
 *   execGranted: false,
 *   procSelfGranted: false,
 *   pathDeno: { path: "/usr/local/bin/deno", sameFile: true, granted: true },
 * }); // { ok: true, value: "/usr/local/bin/deno" }
 * ```
 */
export function chooseDeno(facts: DenoFacts): Result<string> {
  const { execPath, execGranted, procSelfGranted, pathDeno } = facts;
  if (execGranted) return ok(execPath);
  if (procSelfGranted) return ok(PROC_SELF_EXE);
  if (pathDeno?.sameFile && pathDeno.granted) return ok(pathDeno.path);
  const why = pathDeno === undefined
    ? "'deno' is not on PATH"
    : !pathDeno.sameFile
    ? `'deno' on PATH (${pathDeno.path}) is another file`
    : `it may not run '${pathDeno.path}'`;
  return fail(
    `this Deno (${execPath}) may not start itself again: ${why}; put this Deno on PATH as ` +
      `'deno', or run it with --allow-run=${execPath}`,
  );
}

/**
 * Gather the {@linkcode DenoFacts} of this process (reads PATH, stats files,
 * queries permissions; never throws).
 */
function denoFacts(): DenoFacts {
  const execPath = Deno.execPath();
  const pathDeno = firstOnPath(Deno.build.os === "windows" ? "deno.exe" : "deno");
  return {
    execPath,
    execGranted: mayRun(execPath),
    procSelfGranted: Deno.build.os === "linux" && mayRun(PROC_SELF_EXE),
    pathDeno: pathDeno === undefined ? undefined : {
      path: pathDeno,
      sameFile: sameFile(pathDeno, execPath),
      granted: mayRun(pathDeno),
    },
  };
}

/**
 * A path that starts this same Deno from this process, or why there is none.
 *
 * @example
 * ```ts
 * import { runnableDeno } from "./launch.ts";
 *
 * const deno = runnableDeno();
 * if (!deno.ok) console.error(deno.error);
 * ```
 */
export function runnableDeno(): Result<string> {
  return chooseDeno(denoFacts());
}

function mayRun(command: string): boolean {
  try {
    return Deno.permissions.querySync({ name: "run", command }).state === "granted";
  } catch {
    return false;
  }
}

function firstOnPath(name: string): string | undefined {
  for (const dir of (envVar("PATH") ?? "").split(delimiter)) {
    if (dir === "") continue;
    const candidate = resolve(dir, name);
    try {
      if (Deno.statSync(candidate).isFile) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

function sameFile(a: string, b: string): boolean {
  try {
    const x = Deno.statSync(a);
    const y = Deno.statSync(b);
    return x.ino !== null && x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false;
  }
}

/**
 * The paths `command` needs to write that this process may not write (none
 * for read-only commands, and none at all in the compiled binary).
 */
async function writesToGrant(command: Command): Promise<string[]> {
  if (Deno.build.standalone || !("options" in command) || command.kind === "simulate") return [];
  if (writePaths(command, { repoRoot: "/", db: "/db" }).length === 0) return [];
  const { repoRoot, db } = await resolvePaths(command.options);
  const writes = writePaths(command, { repoRoot, db: resolve(db) });
  return writes.some((path) => !mayWrite(path)) ? writes : [];
}

/** The hosts `command` listens on that this process may not (none in the compiled binary). */
function netToGrant(command: Command): string[] {
  if (Deno.build.standalone) return [];
  const hosts = netHosts(command);
  const granted = (host: string) => {
    try {
      return Deno.permissions.querySync({ name: "net", host }).state === "granted";
    } catch {
      return false;
    }
  };
  return hosts.every(granted) ? [] : hosts;
}

function mayWrite(path: string): boolean {
  try {
    return Deno.permissions.querySync({ name: "write", path }).state === "granted";
  } catch {
    return false;
  }
}

/**
 * `deno` arguments that run main.ts with `argv` under exactly the
 * permissions of a run writing `writes`, this Deno allowed to run itself.
 */
function relaunchArgs(
  writes: readonly string[],
  argv: readonly string[],
  net: readonly string[] = [],
  env: readonly string[] = [],
): string[] {
  const extraRun = [...extraRunFrom(envVar("CHUMP_ALLOW_RUN")), Deno.execPath()];
  return [
    "run",
    "--quiet",
    `--config=${fileUrlPath(new URL("../../deno.json", import.meta.url))}`,
    ...permissionFlags(writes, extraRun, env, net),
    fileUrlPath(new URL("../../main.ts", import.meta.url)),
    ...argv,
  ];
}

/**
 * Is this process the second Deno of a relaunch? Reads and clears the
 * marker, so the agents it starts do not inherit it.
 */
function relaunched(): boolean {
  const marked = envVar(RELAUNCHED_ENV) !== undefined;
  try {
    Deno.env.delete(RELAUNCHED_ENV);
  } catch {
    // not permitted: nothing to clear
  }
  return marked;
}

/**
 * Start this program again with the write access `writes`, wait for it and
 * return its exit code (signals as the module says); or why it cannot start.
 *
 * @example
 * ```ts ignore
 * const code = await relaunch(["/tmp"], ["--self-test"]);
 * ```
 */
export async function relaunch(
  writes: readonly string[],
  argv: readonly string[],
  net: readonly string[] = [],
  env: readonly string[] = [],
): Promise<Result<number>> {
  const deno = runnableDeno();
  if (!deno.ok) return fail(`cannot start the run that writes ${writes.join(", ")}: ${deno.error}`);
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(deno.value, {
      args: relaunchArgs(writes, argv, net, env),
      env: { [RELAUNCHED_ENV]: "1" },
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
  } catch (e) {
    return fail(`cannot start ${deno.value}: ${errorMessage(e).split("\n")[0]}`);
  }
  const passOn = (signal: Deno.Signal) => () => {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  };
  const listeners: [Deno.Signal, () => void][] = [["SIGINT", () => {}]];
  if (Deno.build.os !== "windows") {
    listeners.push(["SIGTERM", passOn("SIGTERM")], ["SIGHUP", passOn("SIGHUP")]);
  }
  for (const [signal, listener] of listeners) Deno.addSignalListener(signal, listener);
  try {
    return ok((await child.status).code);
  } finally {
    for (const [signal, listener] of listeners) Deno.removeSignalListener(signal, listener);
  }
}

/**
 * What `main.ts` does with a command line: relaunch a command that writes
 * (once, with its write paths), run everything else in this process.
 *
 * @param argv arguments without the program name
 * @param run runs a command line in this process and returns its exit code
 * @param err where the one-line error goes
 * @returns the exit code
 * @example
 * ```ts ignore
 * const code = await launch(Deno.args, (argv) => runCli(argv, io), console.error);
 * ```
 */
export async function launch(
  argv: readonly string[],
  run: (argv: readonly string[]) => Promise<number>,
  err: (line: string) => void,
): Promise<number> {
  const second = relaunched(); // read and cleared in any case: the agents must not inherit it
  const parsed = parseCli(argv);
  // The compiled binary never relaunches (whatever its environment says): it gives up writing
  // for a command that writes nothing, and runs it.
  if (Deno.build.standalone) {
    if (parsed.ok) dropWritesIfReadOnly(parsed.value);
    return await run(argv);
  }
  if (second) return await run(argv);
  if (!parsed.ok) return await run(argv); // prints the usage error
  const writes = await writesToGrant(parsed.value);
  const net = netToGrant(parsed.value);
  if (writes.length === 0 && net.length === 0) return await run(argv);
  const code = await relaunch(writes, argv, net, ledgerUrlOf(parsed.value) ? PG_ENV : []);
  if (code.ok) return code.value;
  err(errorLine(code.error));
  return EXIT.usage;
}
