/**
 * Against the Rust program this project re-creates (`../shared/baseline/`,
 * see its README): whole-process dry runs of big Chump-shaped backlogs
 * (bench/backlogs.ts), every pickable gap picked, ours (`deno run main.ts`
 * under the task's permissions) and the Rust 0.2.0 in alternating rounds.
 * CPU time (user + system) and peak memory of each process from
 * `/usr/bin/time` where it is installed; else the CPU time from this
 * process's children's times (/proc/<pid>/stat, read with `cat`: Deno reads
 * /proc only under --allow-all) and no memory figure, said so. The same picks in the same
 * order are checked once. Where the baseline folder is missing, the section
 * says so and measures nothing.
 *
 * @module
 */
import { join } from "node:path";
import { chumpShaped } from "./backlogs.ts";
import { alternate, median, ROOT, type Rounds, type Row, spread, taskMainArgs } from "./_util.ts";

const BASELINE = join(ROOT, "..", "shared", "baseline", "chump-orchestrator-0.2.0");
const TIME = "/usr/bin/time";
const TICKS_PER_S = 100;

/** This process's children's CPU time so far (user + system), ms. */
async function childrenCpuMs(): Promise<number> {
  const out = await new Deno.Command("cat", { args: [`/proc/${Deno.pid}/stat`] }).output();
  const stat = new TextDecoder().decode(out.stdout);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 16 and 17 of stat (cutime, cstime) are 14 and 15 after the command's name.
  return (Number(fields[13]) + Number(fields[14])) * 1000 / TICKS_PER_S;
}

/** One run of `argv` to its end, stdout dropped: its CPU ms and, with /usr/bin/time, peak KB. */
async function run(argv: string[], withTime: boolean): Promise<{ cpuMs: number; peakKb?: number }> {
  const before = withTime ? 0 : await childrenCpuMs();
  const [cmd, ...args] = withTime ? [TIME, "-f", "CPU %U %S PEAK %M", ...argv] : argv;
  const out = await new Deno.Command(cmd, {
    args,
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const err = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${argv.join(" ")}: ${err.split("\n").slice(-3).join(" ")}`);
  const timed = /CPU ([\d.]+) ([\d.]+) PEAK (\d+)/.exec(err);
  if (timed) {
    return { cpuMs: (Number(timed[1]) + Number(timed[2])) * 1000, peakKb: Number(timed[3]) };
  }
  return { cpuMs: await childrenCpuMs() - before };
}

/** The picks' ids, in order, from a dry run's `WOULD DISPATCH:` lines. */
async function picks(argv: string[]): Promise<string[]> {
  const out = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).output();
  return new TextDecoder().decode(out.stdout).split("\n")
    .filter((l) => l.startsWith("WOULD DISPATCH: "))
    .map((l) => l.split(" ")[2]);
}

function cpuRow(measure: string, r: Rounds, max: number): Row {
  const ratio = median(r.ratios);
  return {
    section: "baseline",
    measure: `${measure} (${r.ratios.length} rounds)`,
    result: `${ratio.toFixed(2)}x (${median(r.candidate).toFixed(0)} / ${
      median(r.baseline).toFixed(0)
    } ms CPU)`,
    spread: spread(r),
    target: `<= ${max}x`,
    met: ratio <= max,
    fix: "a faster backlog scan (lib/backlog/fast.ts) and less per gap after it",
  };
}

/** The rows against the Rust baseline. */
export async function benchBaseline(tmp: string): Promise<Row[]> {
  if (!await Deno.stat(BASELINE).then(() => true, () => false)) {
    return [{
      section: "baseline",
      measure: `no Rust baseline at ${BASELINE}`,
      result: "not measured",
      target: "",
    }];
  }
  const withTime = await Deno.stat(TIME).then(() => true, () => false);
  const rows: Row[] = [];
  const cases = [
    { name: "lean20k", n: 20_000, lean: true, rounds: 9, cpu: 1.0, mem: undefined },
    { name: "lean100k", n: 100_000, lean: true, rounds: 7, cpu: 0.8, mem: 0.8 },
    { name: "full100k", n: 100_000, lean: false, rounds: 5, cpu: 1.0, mem: undefined },
  ];
  for (const c of cases) {
    const file = join(tmp, `${c.name}.yaml`);
    await Deno.writeTextFile(file, await chumpShaped(c.n, c.lean));
    const mb = ((await Deno.stat(file)).size / 1e6).toFixed(0);
    const args = ["--backlog", file, "--max-parallel", "1000000"];
    const ours = [Deno.execPath(), ...taskMainArgs(), ...args];
    const rust = [BASELINE, ...args];
    const about = `${c.n.toLocaleString("en")} gaps (${mb} MB), every pickable gap picked`;
    if (c.name === "lean100k") {
      const [a, b] = await Promise.all([picks(ours), picks(rust)]);
      const same = a.length === b.length && a.every((id, i) => id === b[i]);
      rows.push({
        section: "baseline",
        measure: `${about}: the same picks in the same order as the Rust 0.2.0`,
        result: `${same ? "same" : "DIFFERENT"} (${a.length} / ${b.length} picks)`,
        target: "same",
        met: same,
      });
    }
    const peaks: { ours: number[]; rust: number[] } = { ours: [], rust: [] };
    const measure = (argv: string[], into: number[]) => async () => {
      const r = await run(argv, withTime);
      if (r.peakKb !== undefined) into.push(r.peakKb);
      return r.cpuMs;
    };
    await run(ours, false); // warm the file cache and Deno's module cache
    const cpu = await alternate(c.rounds, measure(rust, peaks.rust), measure(ours, peaks.ours));
    rows.push(cpuRow(`${about}: CPU, ours / Rust 0.2.0`, cpu, c.cpu));
    if (peaks.ours.length > 0) {
      const ratio = median(peaks.ours) / median(peaks.rust);
      rows.push({
        section: "baseline",
        measure: `${about}: peak memory, ours / Rust 0.2.0`,
        result: `${ratio.toFixed(2)}x (${(median(peaks.ours) / 1024).toFixed(0)} / ${
          (median(peaks.rust) / 1024).toFixed(0)
        } MiB)`,
        target: c.mem === undefined ? "" : `<= ${c.mem}x`,
        met: c.mem === undefined ? undefined : ratio <= c.mem,
      });
    } else if (c.mem !== undefined) {
      rows.push({
        section: "baseline",
        measure: `${about}: peak memory`,
        result: `not measured (no ${TIME} here)`,
        target: "",
      });
    }
    await Deno.remove(file);
  }
  return rows;
}
