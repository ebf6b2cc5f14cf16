/**
 * The house's rules, read from the code: every import of lib/ (static,
 * dynamic and type-only) follows the folder order ARCHITECTURE.md declares
 * (a folder imports only folders before it in that order), no two files
 * import each other through a cycle, a command module never imports another
 * as a library, and a `_`-prefixed helper is imported only from its folder.
 */
import { deepEqual, ok as assert } from "node:assert/strict";
import { dirname, join, relative } from "node:path";
import { ROOT } from "./_helpers.ts";

const LIB = join(ROOT, "lib");

/** Every .ts file under `dir`, relative to the project root. */
async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const path = join(dir, e.name);
    if (e.isDirectory) out.push(...await sources(path));
    else if (e.name.endsWith(".ts")) out.push(relative(ROOT, path));
  }
  return out.sort();
}

const IMPORT =
  /^\s*(?:import|export)\s[^;]*?from\s+["'](\.[^"']+)["']|^\s*import\s+["'](\.[^"']+)["']/gms;
/** `import("./x.ts")`, and `typeof import(...)`: a type (a module loaded by a computed specifier). */
const DYNAMIC = /(typeof\s+)?import\(\s*["'](\.[^"']+)["']\s*\)/g;

/** An import of a lib/ file: its target, and whether only types come (no edge at run time). */
interface Import {
  target: string;
  typeOnly: boolean;
}

/** The lib/ files `file` imports (relative to the project root). */
async function importsOf(file: string): Promise<Import[]> {
  const text = await Deno.readTextFile(join(ROOT, file));
  const found = [
    ...[...text.matchAll(IMPORT)].map((m) => ({
      spec: m[1] ?? m[2],
      typeOnly: /^\s*(?:import|export)\s+type\s/.test(m[0]),
    })),
    ...[...text.matchAll(DYNAMIC)].map((m) => ({ spec: m[2], typeOnly: m[1] !== undefined })),
  ];
  return found.map((i) => ({ target: join(dirname(file), i.spec), typeOnly: i.typeOnly }))
    .filter((i) => i.target.startsWith("lib/"));
}

/** The folder order of ARCHITECTURE.md: the block under `Import order:`, `a < b < ...`. */
async function declaredOrder(): Promise<string[]> {
  const text = await Deno.readTextFile(join(ROOT, "ARCHITECTURE.md"));
  const line = /^Import order:\s*```\s*(.+?)\s*```/ms.exec(text);
  assert(line, "ARCHITECTURE.md declares 'Import order:' then a block 'a < b < ...'");
  return line[1].split("<").map((s) => s.trim().replace(/^`|`$/g, ""));
}

/** The folder of a lib/ file, as the order names it (`store/pg`, `watch/providers`). */
function folderOf(file: string): string {
  return dirname(file).replace(/^lib\/?/, "");
}

const graph = new Map<string, Import[]>();
for (const file of await sources(LIB)) graph.set(file, await importsOf(file));

Deno.test("every import of lib/ goes to a folder before its own in ARCHITECTURE.md's order", async () => {
  const order = await declaredOrder();
  const rank = new Map(order.map((f, i) => [f, i]));
  const folders = new Set([...graph.keys()].map(folderOf));
  deepEqual(
    [...folders].filter((f) => !rank.has(f)).sort(),
    [],
    `every folder is in the order (${order.join(" < ")})`,
  );
  const against: string[] = [];
  for (const [file, imports] of graph) {
    for (const { target } of imports) {
      const [from, to] = [folderOf(file), folderOf(target)];
      if (from !== to && rank.get(to)! > rank.get(from)!) against.push(`${file} -> ${target}`);
    }
  }
  deepEqual(against, []);
});

Deno.test("no import cycle between files of lib/ (type-only imports aside: no edge at run time)", () => {
  const state = new Map<string, "open" | "done">();
  const cycles: string[] = [];
  const visit = (file: string, path: string[]) => {
    if (state.get(file) === "done") return;
    if (state.get(file) === "open") {
      cycles.push([...path.slice(path.indexOf(file)), file].join(" -> "));
      return;
    }
    state.set(file, "open");
    for (const i of graph.get(file) ?? []) if (!i.typeOnly) visit(i.target, [...path, file]);
    state.set(file, "done");
  };
  for (const file of graph.keys()) visit(file, []);
  deepEqual(cycles, []);
});

Deno.test("a command never imports another command; a _helper only from its own folder", async () => {
  const run = await Deno.readTextFile(join(LIB, "commands", "run.ts"));
  const commands = new Set(
    [...run.matchAll(DYNAMIC)].map((m) => join("lib", "commands", m[2])),
  );
  assert(commands.size >= 10, `run.ts starts the commands (${commands.size} found)`);
  const wrong: string[] = [];
  for (const [file, imports] of graph) {
    for (const { target } of imports) {
      if (commands.has(file) && commands.has(target)) wrong.push(`${file} -> ${target}`);
      const helper = target.split("/").at(-1)!.startsWith("_");
      if (helper && dirname(target) !== dirname(file)) wrong.push(`${file} -> ${target}`);
    }
  }
  deepEqual(wrong, []);
});

/** The files `file` loads when it runs: its static imports, transitively (type-only aside). */
function runtimeClosure(file: string): Set<string> {
  const seen = new Set<string>();
  const visit = (f: string) => {
    if (seen.has(f)) return;
    seen.add(f);
    for (const i of graph.get(f) ?? []) if (!i.typeOnly) visit(i.target);
  };
  visit(file);
  return seen;
}

Deno.test("a cold start runs only what it needs: --help the command line, loading a backlog no YAML parser", () => {
  // What main.ts runs before any command: run.ts and what it imports (commands come later). Deno
  // still reads, without running, the demo agent's modules: main.ts imports it by a literal
  // specifier, which the agent's narrow read permission needs.
  const cli = [...runtimeClosure("lib/commands/run.ts")].filter((f) => f !== "lib/commands/run.ts");
  deepEqual(cli.filter((f) => !/^lib\/(cli|util)\/|^lib\/cost\/(formats|prices)\.ts$/.test(f)), []);
  // The full parser (and js-yaml with it) is loaded only for a file the fast path hands over.
  const load = runtimeClosure("lib/backlog/load.ts");
  deepEqual([...load].filter((f) => /backlog\/(yaml|parse)\.ts$/.test(f)), []);
});
