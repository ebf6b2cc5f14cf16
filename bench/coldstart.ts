/**
 * Whole-process cold start, wall time, median of 5: `--help` and a dry run of
 * the real fixture through `deno task dispatch` (Deno starts twice: the
 * launcher, then main.ts under the run's permissions), and main.ts run
 * directly for comparison (the compiled binary starts like that).
 *
 * @module
 */
import { FIXTURE, mainArgs, median, ms, output, ROOT, type Row, timed } from "./_util.ts";

async function wall(args: string[]): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 6; i++) {
    const t = await timed(async () => {
      const r = await output(Deno.execPath(), args, { cwd: ROOT });
      if (r.code !== 0) throw new Error(`${args.join(" ")}: ${r.stderr}`);
    });
    if (i > 0) times.push(t); // the first run fills the OS file cache
  }
  return median(times);
}

/** The cold start rows. */
export async function benchColdStart(): Promise<Row[]> {
  const dry = ["--backlog", FIXTURE, "--max-parallel", "100"];
  const taskHelp = await wall(["task", "--quiet", "dispatch", "--help"]);
  const taskDry = await wall(["task", "--quiet", "dispatch", ...dry]);
  const directHelp = await wall([...mainArgs([]), "--help"]);
  const directDry = await wall([...mainArgs([]), ...dry]);
  return [
    {
      section: "cold start",
      measure: "deno task dispatch --help",
      result: ms(taskHelp),
      target: "",
    },
    {
      section: "cold start",
      measure: "deno task dispatch: dry run of the fixture (Rust seed: 0.24 s)",
      result: ms(taskDry),
      target: "",
    },
    { section: "cold start", measure: "main.ts direct --help", result: ms(directHelp), target: "" },
    {
      section: "cold start",
      measure: "main.ts direct: dry run of the fixture",
      result: ms(directDry),
      target: "",
    },
  ];
}
