/**
 * Whole-process cold start, wall time, in alternating rounds, against a
 * Deno hello-world (`console.log("hello")` under the same `deno run`):
 *
 * - a dry run of the real backlog with main.ts run directly (`deno run`
 *   under the task's permissions) against the hello-world (target <= 2.0x);
 * - the same dry run through `deno task dispatch` against main.ts run
 *   directly: what the task path adds (target <= 1.2x: `deno task` reads
 *   deno.json, and a dry run runs in the task's process);
 * - `--help` through main.ts against the hello-world (target <= 1.3x).
 *
 * @module
 */
import { join } from "node:path";
import { alternate, FIXTURE, ratioRow, type Row, taskMainArgs, timedDeno } from "./_util.ts";
import { taskPermissionFlags } from "../lib/commands/permissions.ts";

const ROUNDS = 15;

/** The cold start rows. */
export async function benchColdStart(tmp: string): Promise<Row[]> {
  const hello = join(tmp, "hello.ts");
  await Deno.writeTextFile(hello, 'console.log("hello");\n');
  const dry = ["--backlog", FIXTURE, "--max-parallel", "100"];
  const helloRun = timedDeno(["run", "--quiet", ...taskPermissionFlags(), hello]);
  const direct = timedDeno([...taskMainArgs(), ...dry]);
  const task = timedDeno(["task", "--quiet", "dispatch", ...dry]);
  await direct(); // the first run fills the OS file cache and Deno's module cache
  const program = await alternate(ROUNDS, helloRun, direct);
  const taskPath = await alternate(ROUNDS, direct, task);
  const help = await alternate(ROUNDS, helloRun, timedDeno(taskMainArgs().concat("--help")));
  return [
    ratioRow(
      "cold start",
      "dry run of the real backlog, main.ts direct / a Deno hello-world",
      program,
      2.0,
      "load fewer modules at start; the backlog's fast path warm sooner",
    ),
    ratioRow(
      "cold start",
      "dry run of the real backlog: deno task dispatch / main.ts direct",
      taskPath,
      1.2,
      "run read-only commands in the task's process (no second Deno)",
    ),
    ratioRow(
      "cold start",
      "--help, main.ts direct / a Deno hello-world",
      help,
      1.3,
      "load only the command line's modules for --help",
    ),
  ];
}
