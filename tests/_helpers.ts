/**
 * Shared test plumbing: run the real CLI as a subprocess under the exact
 * permissions of a deno.json task, make scratch directories, build gaps.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Gap } from "../lib/backlog/load.ts";

/** The project root. */
export const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The real fixture backlog (a copy of ../shared/fixtures). */
export const FIXTURE = join(ROOT, "tests", "fixtures", "chump-gaps-2026-04-19.yaml");

/** What a finished subprocess left behind. */
export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * The `deno` arguments of a task in deno.json (`deno run <flags> main.ts`),
 * without the leading `deno`, so tests run with exactly the task's permissions.
 */
export function taskArgs(task: string): string[] {
  const config = JSON.parse(Deno.readTextFileSync(join(ROOT, "deno.json")));
  const text: string = config.tasks[task];
  const words = text.split(/\s+/).filter((w) => w !== "");
  if (words[0] !== "deno") throw new Error(`task ${task} does not start with deno`);
  return words.slice(1).map((w) => (w.endsWith(".ts") ? join(ROOT, w) : w));
}

/**
 * Run main.ts under the `dispatch` task's permissions.
 *
 * @param args CLI arguments
 * @param options cwd and extra environment
 */
export function runMain(
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; task?: string } = {},
): Promise<Ran> {
  return runProcess(Deno.execPath(), [...taskArgs(options.task ?? "dispatch"), ...args], {
    cwd: options.cwd ?? ROOT,
    env: { NO_COLOR: "1", ...options.env },
  });
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

/** A scratch directory removed when the returned disposable is disposed. */
export async function scratch(prefix = "chump-test-"): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix });
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true }).catch(() => {});
    },
  };
}

/** A gap with defaults, for picker tests: open, P1, effort s, no dependencies. */
export function gap(id: string, fields: Partial<Gap> = {}): Gap {
  return {
    id,
    title: `title of ${id}`,
    priority: "P1",
    effort: "s",
    status: "open",
    dependsOn: [],
    file: "test.yaml",
    line: 1,
    fields: {},
    ...fields,
  };
}
