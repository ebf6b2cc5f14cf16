/**
 * `deno task bench`: every benchmark of the project, one table on stdout,
 * and the same table with the machine and the date in bench/RESULTS.md
 * (`--no-write` to leave it alone; `--only a,b` to run some sections).
 *
 * Every target is a ratio against a baseline measured in the same run, in
 * alternating rounds (see _util.ts), or a count (rows lost, processes
 * left); the spread column is the min-max of the per-round ratios. No figure
 * is printed that this run did not measure.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { benchAdopt } from "./adopt.ts";
import { benchBaseline } from "./baseline.ts";
import { benchClaims } from "./claims.ts";
import { benchColdStart } from "./coldstart.ts";
import { benchDashboard } from "./dashboard.ts";
import { benchDispatch } from "./dispatch.ts";
import { benchFlood } from "./flood.ts";
import { benchInterrupt } from "./interrupt.ts";
import { benchLearning } from "./learning.ts";
import { benchMonitor } from "./monitor.ts";
import { benchPicker } from "./picker.ts";
import { benchReflect } from "./reflect.ts";
import { benchStreams } from "./streams.ts";
import { benchSession } from "./session.ts";
import { ROOT, type Row } from "./_util.ts";
import { columnWidths } from "../lib/cli/table.ts";

const SECTIONS: Record<string, (tmp: string) => Promise<Row[]>> = {
  picker: benchPicker,
  dispatch: benchDispatch,
  monitor: benchMonitor,
  flood: benchFlood,
  reflect: benchReflect,
  interrupt: benchInterrupt,
  coldstart: benchColdStart,
  adopt: benchAdopt,
  dashboard: benchDashboard,
  streams: benchStreams,
  session: benchSession,
  learning: benchLearning,
  claims: benchClaims,
  baseline: benchBaseline,
};

function table(rows: readonly Row[]): string[] {
  const cells = rows.map((r) => [
    r.section,
    r.measure,
    r.result,
    r.spread ?? "",
    r.target || "-",
    r.met === undefined ? "" : r.met ? "met" : "MISSED",
  ]);
  const head = ["section", "measure", "result", "spread", "target", ""];
  const widths = columnWidths([head, ...cells]);
  const line = (c: string[]) => `| ${c.map((x, i) => x.padEnd(widths[i])).join(" | ")} |`;
  return [line(head), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...cells.map(line)];
}

function machine(): string {
  const mem = Deno.systemMemoryInfo();
  return `${navigator.hardwareConcurrency} cores, ${
    (mem.total / 2 ** 30).toFixed(0)
  } GiB memory, ` +
    `${Deno.build.target}, Deno ${Deno.version.deno}`;
}

/** One section's rows, or one row saying it failed. */
async function runSection(name: string, tmp: string): Promise<Row[]> {
  try {
    return await SECTIONS[name](tmp);
  } catch (e) {
    return [{
      section: name,
      measure: "(section failed)",
      result: (e instanceof Error ? e.message : String(e)).split("\n")[0],
      target: "",
      met: false,
    }];
  }
}

/**
 * Run one section in a fresh Deno with the bench task's own flags: no section
 * measures in a heap another one left behind (the 100,000-gap picker run
 * leaves a large one, which slowed the in-process dispatch by 1.5x).
 */
async function isolated(name: string): Promise<Row[]> {
  const task: string = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json"))).tasks.bench;
  const [, ...args] = task.split(/\s+/).filter((w) => w !== "");
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...args, "--section", name],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
  try {
    return JSON.parse(text) as Row[];
  } catch {
    return [{
      section: name,
      measure: "(section failed)",
      result: `exit ${out.code}`,
      target: "",
      met: false,
    }];
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      only: { type: "string" },
      "no-write": { type: "boolean" },
      section: { type: "string" },
    },
  });
  const tmp = join(ROOT, "bench", "tmp");
  if (values.section) {
    // A child of the run below: one section, its rows as JSON on the last line.
    await Deno.mkdir(tmp, { recursive: true });
    console.log(JSON.stringify(await runSection(values.section, tmp)));
    Deno.exit(0);
  }
  const names = values.only ? values.only.split(",") : Object.keys(SECTIONS);
  for (const name of names) {
    if (!SECTIONS[name]) {
      console.error(
        `bench: unknown section '${name}' (one of ${Object.keys(SECTIONS).join(", ")})`,
      );
      Deno.exit(2);
    }
  }
  await Deno.mkdir(tmp, { recursive: true });
  const rows: Row[] = [];
  const started = performance.now();
  for (const name of names) {
    console.error(`bench: ${name} ...`);
    rows.push(...await isolated(name));
  }
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  const total = ((performance.now() - started) / 1000).toFixed(0);
  const lines = table(rows);
  console.log(lines.join("\n"));
  const misses = rows.filter((r) => r.met === false);
  console.log(
    `${rows.filter((r) => r.met).length} targets met, ${misses.length} missed (${total} s)`,
  );
  if (!values["no-write"] && !values.only) {
    const date = new Date().toISOString().slice(0, 16).replace("T", " ");
    const md = [
      "# Benchmark results",
      "",
      `One run of \`deno task bench\` on ${date} UTC: ${machine()}. The whole run took ${total} s.`,
      "",
      "Every target is a ratio against a baseline measured in the same run, in alternating rounds",
      "(baseline, candidate, baseline, ...): the result is the median of the per-round ratios",
      "(candidate / baseline, with the medians of each), the spread their min-max. Counts are exact.",
      "",
      ...lines,
      "",
      misses.length === 0
        ? "Every target was met."
        : ["Missed:", "", ...misses.map((m) => `- ${m.measure}: ${m.result}; would fix: ${m.fix}`)]
          .join("\n"),
      "",
    ].join("\n");
    const results = join(ROOT, "bench", "RESULTS.md");
    await Deno.writeTextFile(results, md);
    // In the project's format, so `deno task check` stays clean after a bench run.
    await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", results], cwd: ROOT })
      .output();
  }
  Deno.exit(misses.length > 0 ? 1 : 0);
}
