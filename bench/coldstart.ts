/**
 * Whole-process cold start, wall time, in alternating rounds:
 *
 * - a dry run of the real fixture with main.ts run directly (`deno run`
 *   under the task's permissions) against an empty `deno run`: what the
 *   program costs beyond starting Deno (no target: a reference);
 * - the same dry run through `deno task dispatch` against main.ts run
 *   directly: what the task path adds (target <= 1.3x; a dry run runs in the
 *   task's process, so this is `deno task` reading deno.json);
 * - `--help` the same way, as a reference.
 *
 * @module
 */
import { join } from "node:path";
import {
  alternate,
  FIXTURE,
  median,
  ms,
  ratioRow,
  ROOT,
  type Row,
  runProcess,
  spread,
  taskMainArgs,
  timed,
} from "./_util.ts";

const ROUNDS = 10;

/** Wall time of one `deno <args>` run to its end, ms; it must succeed. */
function wall(args: string[]): () => Promise<number> {
  return () =>
    timed(async () => {
      const r = await runProcess(Deno.execPath(), args, { cwd: ROOT, env: { NO_COLOR: "1" } });
      if (r.code !== 0) throw new Error(`deno ${args.join(" ")}: ${r.stderr.split("\n")[0]}`);
    });
}

/** The cold start rows. */
export async function benchColdStart(tmp: string): Promise<Row[]> {
  const empty = join(tmp, "empty.ts");
  await Deno.writeTextFile(empty, "");
  const dry = ["--backlog", FIXTURE, "--max-parallel", "100"];
  const emptyRun = wall(["run", "--quiet", empty]);
  const direct = wall([...taskMainArgs(), ...dry]);
  const task = wall(["task", "--quiet", "dispatch", ...dry]);
  await direct(); // the first run fills the OS file cache and Deno's module cache
  const program = await alternate(ROUNDS, emptyRun, direct);
  const taskPath = await alternate(ROUNDS, direct, task);
  const help = await alternate(
    ROUNDS,
    wall(taskMainArgs().concat("--help")),
    wall(["task", "--quiet", "dispatch", "--help"]),
  );
  return [
    {
      section: "cold start",
      measure: `dry run of the fixture, main.ts direct / an empty deno run (${ROUNDS} rounds)`,
      result: `${median(program.ratios).toFixed(2)}x (${ms(median(program.candidate))} / ${
        ms(median(program.baseline))
      })`,
      spread: spread(program),
      target: "",
    },
    ratioRow(
      "cold start",
      "dry run of the fixture: deno task dispatch / main.ts direct",
      taskPath,
      1.3,
      "run read-only commands in the task's process (no second Deno)",
    ),
    {
      section: "cold start",
      measure: `--help: deno task dispatch / main.ts direct (${ROUNDS} rounds)`,
      result: `${median(help.ratios).toFixed(2)}x (${ms(median(help.candidate))} / ${
        ms(median(help.baseline))
      })`,
      spread: spread(help),
      target: "",
    },
  ];
}
