/**
 * Shared test plumbing: run the real CLI as a subprocess under the exact
 * permissions of a deno.json task, make scratch directories, build gaps.
 *
 * @module
 */
import { runCli } from "../lib/commands/run.ts";
import { join } from "node:path";
import type { Gap } from "../lib/backlog/gap.ts";
import { type Ran, ROOT, runProcess } from "../testkit/process.ts";

export { FIXTURE, type Ran, ROOT, runProcess } from "../testkit/process.ts";

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
 * Run a command line in this process (commands/run.ts `runCli`) with a
 * recording `Io`: what it printed, as a subprocess's would read, without
 * starting one. `env` is all the environment the command sees.
 *
 * @param args CLI arguments
 * @param env the environment, read through the `Io`
 */
export async function runInProcess(
  args: string[],
  env: Record<string, string> = {},
): Promise<Ran> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(args, {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    env: (name) => env[name] || undefined,
  });
  const text = (lines: string[]) => lines.map((l) => `${l}\n`).join("");
  return { code, stdout: text(out), stderr: text(err) };
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

    ...fields,
  };
}
