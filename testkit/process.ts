/**
 * Shared by tests/ and bench/: the project's paths, running a program to its
 * end, and finding live processes by an environment marker. Product code
 * never imports it.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Processes, readTable } from "../lib/process/table.ts";

/** The project root. */
export const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The real fixture backlog (193 gaps). */
export const FIXTURE = join(ROOT, "tests", "fixtures", "chump-gaps-2026-04-19.yaml");

/** What a finished subprocess left behind. */
export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Run a program to its end, stdin closed, and keep what it printed.
 *
 * @param cmd the program
 * @param args its arguments
 * @param options cwd and extra environment
 */
export async function runProcess(
  cmd: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<Ran> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: options.cwd,
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/**
 * Pids of live processes whose environment holds `marker`. Reads /proc, so
 * Linux only: elsewhere it throws, so that a "no orphan" assertion fails
 * loudly instead of passing without having looked.
 */
export async function pidsWithEnv(marker: string): Promise<number[]> {
  if (Deno.build.os !== "linux") {
    throw new Error(`pidsWithEnv reads /proc and cannot check for leftovers on ${Deno.build.os}`);
  }
  // `ls`, not Deno.readDir: Deno reads /proc only under --allow-all.
  const procs = (await runProcess("ls", ["/proc"])).stdout.split("\n")
    .filter((n) => /^\d+$/.test(n)).map((n) => `/proc/${n}/environ`);
  const out = await runProcess("grep", ["-lsa", "--", marker, ...procs]);
  return out.stdout.split("\n").filter((l) => l !== "")
    .map((l) => Number(l.split("/")[2]))
    .filter((pid) => pid !== Deno.pid);
}

/**
 * Is `pid` running, and (with `start`) that very process? From a fresh listing.
 *
 * @example
 * ```ts ignore
 * await sameProcessAlive(Deno.pid); // true
 * ```
 */
export async function sameProcessAlive(pid: number, start?: string): Promise<boolean> {
  return (await readTable()).alive(pid, start);
}

/**
 * Does any non-zombie process belong to process group `pgid`?
 *
 * @example
 * ```ts ignore
 * await groupAlive(agent.pgid);
 * ```
 */
export function groupAlive(pgid: number): Promise<boolean> {
  return new Processes().groupAlive(pgid);
}

/** How {@linkcode waitFor} polls. */
export interface WaitOptions {
  /** Fail after this long (default 60 s): a test fails instead of hanging. */
  timeoutMs?: number;
  /** Between two looks (default 20 ms). */
  everyMs?: number;
  /** What is waited for, for the failure's message. */
  what?: string;
}

/**
 * Poll `condition` until it gives a value other than `undefined` or `false`,
 * and return that value; reject after `timeoutMs`.
 *
 * @example
 * ```ts ignore
 * await waitFor(async () => !(await groupAlive(pgid)), { what: "the group to empty" });
 * const text = await waitFor(() => readIfComplete(path), { timeoutMs: 5000 });
 * ```
 */
export async function waitFor<T>(
  condition: () => T | undefined | false | Promise<T | undefined | false>,
  options: WaitOptions = {},
): Promise<T> {
  const { timeoutMs = 60_000, everyMs = 20, what = "a condition" } = options;
  const end = performance.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value !== undefined && value !== false) return value;
    if (performance.now() >= end) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
