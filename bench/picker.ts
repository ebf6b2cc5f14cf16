/**
 * Loading and picking, each against a baseline measured in the same run:
 *
 * - in-process load + pick (the real fixture, and a generated 100,000-gap
 *   backlog) against a bare js-yaml load of the same file (read, then
 *   `yaml.load` with the same schema, no listener): what the loader adds
 *   (lines, validation, warnings, the pick) over parsing;
 * - the whole CLI on the 100,000-gap backlog (`deno run main.ts --backlog
 *   big.yaml` under the task's permissions: start, parse the command line,
 *   load, pick, slug, print, exit) against a fresh Deno process that only
 *   loads and picks it, under the same permissions: what the CLI adds. (Both
 *   start cold: against the in-process load, warm after its rounds, the ratio
 *   was mostly the JIT's warm-up, which every process pays.)
 *
 * @module
 */
import { join } from "node:path";
// @ts-types="npm:@types/js-yaml@4.0.9"
import yaml from "js-yaml";
import { loadBacklog } from "../lib/backlog/load.ts";
import { pickGaps } from "../lib/backlog/picker.ts";
import { taskPermissionFlags } from "../lib/commands/permissions.ts";
import {
  alternate,
  FIXTURE,
  ratioRow,
  ROOT,
  type Row,
  taskMainArgs,
  timed,
  timedDeno,
} from "./_util.ts";

// The loader's schema (lib/backlog/yaml.ts): YAML 1.2 core plus merge keys.
const { merge } = (yaml as unknown as { types: Record<string, yaml.Type> }).types;
const SCHEMA = yaml.CORE_SCHEMA.extend({ implicit: [merge] });

/** A backlog of `n` gaps shaped like the real one: mixed priority, effort, status, dependencies. */
export function generatedBacklog(n: number): string {
  const prio = ["P0", "P1", "P1", "P2", "P2", "P3"];
  const effort = ["xs", "s", "s", "m", "m", "l", "xl"];
  const status = ["done", "done", "open", "open", "blocked", "deferred"];
  const parts = ["meta:\n  generated: true\ngaps:\n"];
  for (let i = 0; i < n; i++) {
    const deps = i % 3 === 0 && i > 0 ? `[GEN-${i - 1}, GEN-${Math.floor(i / 2)}]` : "[]";
    parts.push(
      `  - id: GEN-${i}\n` +
        `    domain: gen\n` +
        `    title: "Generated gap number ${i}: make the frobnicator handle case ${i % 97}"\n` +
        `    status: ${status[i % status.length]}\n` +
        `    priority: ${prio[i % prio.length]}\n` +
        `    effort: ${effort[i % effort.length]}\n` +
        `    depends_on: ${deps}\n` +
        `    description: |\n      Line one of the description of gap ${i}.\n      Line two.\n`,
    );
  }
  return parts.join("");
}

/** Read and parse with js-yaml alone: the floor any loader stands on. */
async function bareParse(path: string): Promise<number> {
  return await timed(async () =>
    yaml.load(await Deno.readTextFile(path), { schema: SCHEMA, json: true })
  );
}

/** The loader and the picker, in this process. */
async function loadAndPick(path: string): Promise<number> {
  let picked = 0;
  const t = await timed(async () => {
    const b = await loadBacklog(path);
    if (!b.ok) throw new Error(b.error);
    picked = pickGaps(b.value.gaps, { limit: Infinity }).length;
  });
  if (picked === 0) throw new Error(`nothing pickable in ${path}`);
  return t;
}

/** A fresh process that loads `path` and picks from it, nothing else; under the task's permissions. */
function loadAndPickProcess(script: string, path: string): () => Promise<number> {
  return timedDeno([
    "run",
    "--quiet",
    `--config=${join(ROOT, "deno.json")}`,
    ...taskPermissionFlags(),
    script,
    path,
  ]);
}

/** The script {@linkcode loadAndPickProcess} runs, written into `dir`. */
async function loadAndPickScript(dir: string): Promise<string> {
  const lib = (file: string) => new URL(`../lib/backlog/${file}`, import.meta.url).href;
  const script = join(dir, "load_and_pick.ts");
  await Deno.writeTextFile(
    script,
    `import { loadBacklog } from "${lib("load.ts")}";\n` +
      `import { pickGaps } from "${lib("picker.ts")}";\n` +
      "const b = await loadBacklog(Deno.args[0]);\n" +
      "if (!b.ok) throw new Error(b.error);\n" +
      "console.log(pickGaps(b.value.gaps, { limit: Infinity }).length);\n",
  );
  return script;
}

/** The whole CLI as the dispatch task starts it: a dry run of `path`. */
function wholeDryRun(path: string): () => Promise<number> {
  return timedDeno([...taskMainArgs(), "--backlog", path]);
}

/** The picker rows. */
export async function benchPicker(tmp: string): Promise<Row[]> {
  for (let i = 0; i < 5; i++) await loadAndPick(FIXTURE); // warm up the JIT
  const fixture = await alternate(
    40,
    () => bareParse(FIXTURE),
    () => loadAndPick(FIXTURE),
  );
  const big = join(tmp, "backlog-100k.yaml");
  const text = generatedBacklog(100_000);
  await Deno.writeTextFile(big, text);
  const mb = (text.length / 1e6).toFixed(0);
  const bigLoad = await alternate(9, () => bareParse(big), () => loadAndPick(big));
  const script = await loadAndPickScript(tmp);
  const [loadAndPickBig, dryRunBig] = [loadAndPickProcess(script, big), wholeDryRun(big)];
  await dryRunBig(); // the module cache for both processes
  await loadAndPickBig();
  const whole = await alternate(9, loadAndPickBig, dryRunBig);
  return [
    ratioRow(
      "picker",
      "load + pick the fixture (193 gaps) / bare js-yaml load of it",
      fixture,
      2,
      "less fixed work per load (one stat, one read)",
    ),
    ratioRow(
      "picker",
      `load + pick 100,000 generated gaps (${mb} MB) / bare js-yaml load of it`,
      bigLoad,
      1.5,
      "less per-node work in the YAML listener and per-gap work in the loader",
    ),
    ratioRow(
      "picker",
      "whole CLI: dry run of the 100,000 gaps (deno run main.ts) / a fresh process that " +
        "loads and picks them",
      whole,
      1.3,
      "less work outside load + pick: slugs only up to the last pick, output, exit",
    ),
  ];
}
