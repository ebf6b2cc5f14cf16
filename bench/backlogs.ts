/**
 * Big backlogs for the benchmarks, shaped like the real one: the real
 * backlog's gaps (tests/fixtures/chump-gaps-2026-04-19.yaml) over and over,
 * each copy's ids suffixed so they stay unique and its dependencies point
 * into its own copy. Each gap keeps only the first of a repeated key, so the
 * Rust baseline (which refuses repeated keys) loads them too.
 *
 * @module
 */
import { FIXTURE } from "./_util.ts";

/** One gap of the real backlog: its lines, and its id. */
interface Template {
  id: string;
  lines: string[];
}

/** The real backlog's gaps, each as lines, a repeated key's later lines dropped. */
async function templates(): Promise<Template[]> {
  const text = await Deno.readTextFile(FIXTURE);
  const body = text.slice(text.indexOf("\ngaps:\n") + "\ngaps:\n".length);
  const out: Template[] = [];
  let current: Template | undefined;
  let keys = new Set<string>();
  let skipping = false;
  for (const line of body.split("\n")) {
    const start = /^ {2}- id: (.+)$/.exec(line);
    if (start) {
      current = { id: start[1].trim(), lines: [line] };
      out.push(current);
      keys = new Set(["id"]);
      skipping = false;
      continue;
    }
    if (!current) continue;
    const key = /^ {4}([A-Za-z_][\w-]*):/.exec(line);
    if (key) {
      skipping = keys.has(key[1]);
      keys.add(key[1]);
    }
    if (!skipping) current.lines.push(line);
  }
  return out;
}

/**
 * A backlog of `n` gaps; `lean` drops the long text fields (a backlog
 * about 0.4x the real one's density).
 */
export async function chumpShaped(n: number, lean = false): Promise<string> {
  const gaps = await templates();
  const ids = new Set(gaps.map((g) => g.id));
  const parts = ["meta:\n  version: '1'\ngaps:\n"];
  let dropping = false;
  for (let i = 0; i < n; i++) {
    const g = gaps[i % gaps.length];
    const copy = Math.floor(i / gaps.length);
    const rename = (id: string) => ids.has(id) ? `${id}-${copy}` : id;
    dropping = false;
    for (const line of g.lines) {
      const key = /^ {4}([A-Za-z_][\w-]*):/.exec(line)?.[1];
      if (key !== undefined) dropping = lean && LONG_FIELDS.has(key);
      if (dropping) continue;
      if (line.startsWith("  - id: ")) parts.push(`  - id: ${rename(g.id)}\n`);
      else if (key === "depends_on" || /^ {6}- /.test(line)) {
        parts.push(line.replace(/[A-Za-z][\w-]*-\d+[a-z]?/g, (id) => rename(id)) + "\n");
      } else parts.push(line + "\n");
    }
  }
  return parts.join("");
}

/** Fields of many lines that a lean backlog leaves out. */
const LONG_FIELDS = new Set(["acceptance", "resolution_notes", "runnable_now", "notes"]);
