/**
 * Whole-process cold start, wall time, in alternating rounds, against a
 * Deno hello-world (`console.log("hello")` under the same `deno run`):
 *
 * - a dry run of the real backlog with main.ts run directly (`deno run`
 *   under the task's permissions) against the hello-world (target <= 2.0x);
 * - the same dry run through `deno task dispatch` against main.ts run
 *   directly: what the task path adds (target <= 1.2x: `deno task` reads
 *   deno.json, and a dry run runs in the task's process);
 * - `--help` through main.ts against the hello-world (target <= 1.3x);
 * - reported, to split the first row: loading the modules a dry run loads,
 *   in the same order, and running nothing, against the hello-world. What
 *   the dry run costs beyond it is its own work (mostly reading the backlog
 *   with code V8 has not compiled yet).
 *
 * @module
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import {
  alternate,
  FIXTURE,
  ratioRow,
  reported,
  ROOT,
  type Row,
  taskMainArgs,
  timedDeno,
} from "./_util.ts";
import { taskPermissionFlags } from "../lib/commands/permissions.ts";

const ROUNDS = 15;

/**
 * The modules main.ts loads for a dry run, in its order: the command line,
 * the stdout buffer, the launch, the dry run (lib/commands/run.ts loads it).
 */
const DRY_RUN_MODULES = [
  "lib/commands/run.ts",
  "lib/cli/lines_out.ts",
  "lib/commands/launch.ts",
  "lib/commands/dry_run.ts",
];

/** The cold start rows. */
export async function benchColdStart(tmp: string): Promise<Row[]> {
  const hello = join(tmp, "hello.ts");
  await Deno.writeTextFile(hello, 'console.log("hello");\n');
  const loadOnly = join(tmp, "load_only.ts");
  const imports = DRY_RUN_MODULES.map((m) =>
    `await import(${JSON.stringify(pathToFileURL(join(ROOT, m)).href)});`
  );
  await Deno.writeTextFile(loadOnly, imports.join("\n") + "\n");
  const dry = ["--backlog", FIXTURE, "--max-parallel", "100"];
  const helloRun = timedDeno(["run", "--quiet", ...taskPermissionFlags(), hello]);
  const direct = timedDeno([...taskMainArgs(), ...dry]);
  const task = timedDeno(["task", "--quiet", "dispatch", ...dry]);
  await direct(); // the first run fills the OS file cache and Deno's module cache
  const program = await alternate(ROUNDS, helloRun, direct);
  const taskPath = await alternate(ROUNDS, direct, task);
  const help = await alternate(ROUNDS, helloRun, timedDeno(taskMainArgs().concat("--help")));
  const modules = await alternate(
    ROUNDS,
    helloRun,
    timedDeno(["run", "--quiet", ...taskPermissionFlags(), loadOnly]),
  );
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
    reported(ratioRow(
      "cold start",
      "loading the dry run's modules, running nothing / a Deno hello-world",
      modules,
      0,
      "",
    )),
  ];
}
