import { deepEqual, equal, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { loadBacklog } from "../lib/backlog/load.ts";
import { parseBacklogText } from "../lib/backlog/parse.ts";
import { FIXTURE, scratch } from "./_helpers.ts";

function parse(text: string) {
  const r = parseBacklogText(text, "t.yaml");
  if (!r.ok) throw new Error(r.error);
  return r.value;
}

Deno.test("the real fixture loads: 193 gaps with their file and line", async () => {
  const r = await loadBacklog(FIXTURE);
  if (!r.ok) throw new Error(r.error);
  equal(r.value.gaps.length, 193);
  const first = r.value.gaps[0];
  equal(first.id, "COG-001");
  equal(first.line, 27);
  equal(first.file, FIXTURE);
  equal(first.priority, "P1");
  equal(first.effort, "l");
  equal(first.status, "done");
  // Only what a run reads is kept: the description and the rest are not held for 100,000 gaps.
  deepEqual(Object.keys(first).sort(), [
    "dependsOn",
    "effort",
    "file",
    "id",
    "line",
    "priority",
    "status",
    "title",
  ]);
});

Deno.test("the fixture's duplicate ids are warnings with both lines", async () => {
  const r = await loadBacklog(FIXTURE);
  if (!r.ok) throw new Error(r.error);
  const dups = r.value.warnings.filter((w) => w.includes("duplicate gap id"));
  deepEqual(
    dups.map((w) => /duplicate gap id (\S+)/.exec(w)![1]).sort(),
    ["COG-007", "COG-008", "COG-009", "COG-010", "COG-011", "EVAL-003", "MEM-003"],
  );
  assert(dups.includes(
    `${FIXTURE}:1006: duplicate gap id EVAL-003 (first at ${FIXTURE}:730); ` +
      "the first pickable occurrence wins",
  ));
});

Deno.test("the fixture's repeated keys are warnings at the repeated key", async () => {
  const r = await loadBacklog(FIXTURE);
  if (!r.ok) throw new Error(r.error);
  const repeated = r.value.warnings.filter((w) => w.includes("appears twice"));
  // Cross-checked against npm:yaml's uniqueKeys errors for the same file.
  deepEqual(
    repeated.map((w) => /:(\d+):5: key '(\w+)'/.exec(w)!.slice(1).join(" ")),
    [
      "115 closed_date",
      "723 closed_date",
      "1437 closed_date",
      "1490 closed_date",
      "1491 closed_commit",
      "1531 closed_date",
      "1558 closed_date",
      "1621 closed_date",
      "2553 notes",
      "2754 closed_date",
      "3158 closed_date",
    ],
  );
});

Deno.test("the fixture's unknown dependency ids are warnings", async () => {
  const r = await loadBacklog(FIXTURE);
  if (!r.ok) throw new Error(r.error);
  const unknown = r.value.warnings.filter((w) => w.includes("unknown id"));
  deepEqual(unknown.map((w) => w.slice(FIXTURE.length)), [
    ":4542: gap RESEARCH-001 depends on unknown id EVAL-027b; it stays blocked",
    ":5045: gap COG-023 depends on unknown id EVAL-027b; it stays blocked",
    ":5045: gap COG-023 depends on unknown id EVAL-027c; it stays blocked",
  ]);
});

Deno.test("a repeated key keeps the later value", () => {
  const { gaps, warnings } = parse("gaps:\n  - id: A-1\n    status: done\n    status: open\n");
  equal(gaps[0].status, "open");
  deepEqual(warnings, [
    "t.yaml:4:5: key 'status' appears twice in one mapping; the later value wins",
  ]);
});

Deno.test("depends_on: a single string is one id, null and missing are none", () => {
  const { gaps } = parse(
    "gaps:\n  - id: A\n    depends_on: B-1\n  - id: B\n    depends_on:\n  - id: C\n" +
      "  - id: D\n    depends_on: [X, Y]\n",
  );
  deepEqual(gaps.map((g) => g.dependsOn), [["B-1"], [], [], ["X", "Y"]]);
});

Deno.test("a bare list and a single gap mapping load too (per-file registry forms)", () => {
  deepEqual(parse("- id: A-1\n- id: A-2\n").gaps.map((g) => g.id), ["A-1", "A-2"]);
  deepEqual(parse("id: A-3\nstatus: open\n").gaps.map((g) => g.id), ["A-3"]);
});

Deno.test("lines point at each gap, block or flow style", () => {
  const { gaps } = parse("meta: {}\ngaps:\n  # c\n  - id: A\n\n  -   id: B\n  - {id: C}\n");
  deepEqual(gaps.map((g) => g.line), [4, 6, 7]);
});

Deno.test("numbers and booleans in text fields are read as text", () => {
  const { gaps } = parse("gaps:\n  - id: A\n    priority: 1\n    title: 2026\n");
  equal(gaps[0].priority, "1");
  equal(gaps[0].title, "2026");
});

Deno.test("aliases are shared, not expanded (an alias bomb loads instantly)", () => {
  let text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (let i = 1; i <= 9; i++) {
    text += `a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(", ")}]\n`;
  }
  text += "gaps:\n  - id: BOMB-1\n    title: ok\n    payload: *a9\n";
  const { gaps } = parse(text);
  equal(gaps[0].id, "BOMB-1");
});

Deno.test("a directory is read in byte-wise file-name order, dotfiles skipped", async () => {
  await using dir = await scratch();
  const files: Record<string, string> = {
    "b.yaml": "- id: B-1\n",
    "B.yaml": "gaps:\n  - id: UPPER-1\n",
    "a.yaml": "id: A-1\n",
    ".hidden.yaml": "- id: HIDDEN\n",
    "readme.md": "- id: MD\n",
    "c.yml": "- id: C-1\n",
  };
  for (const [name, text] of Object.entries(files)) {
    await Deno.writeTextFile(join(dir.path, name), text);
  }
  const r = await loadBacklog(dir.path);
  if (!r.ok) throw new Error(r.error);
  deepEqual(r.value.gaps.map((g) => g.id), ["UPPER-1", "A-1", "B-1", "C-1"]);
  equal(r.value.gaps[0].file, join(dir.path, "B.yaml"));
});

Deno.test("duplicates across files of a directory are warned about", async () => {
  await using dir = await scratch();
  await Deno.writeTextFile(join(dir.path, "1.yaml"), "- id: A-1\n");
  await Deno.writeTextFile(join(dir.path, "2.yaml"), "- id: A-1\n");
  const r = await loadBacklog(dir.path);
  if (!r.ok) throw new Error(r.error);
  deepEqual(r.value.warnings, [
    `${join(dir.path, "2.yaml")}:1: duplicate gap id A-1 (first at ${
      join(dir.path, "1.yaml")
    }:1); ` +
    "the first pickable occurrence wins",
  ]);
});

Deno.test("a backlog over 1 MiB (read into one buffer of its size) loads to its last byte", async () => {
  await using dir = await scratch();
  const file = join(dir.path, "big.yaml");
  const gap = (k: number) => `  - id: G-${k}\n    priority: P1\n    title: ${"t".repeat(60)}\n`;
  let text = "gaps:\n";
  let k = 0;
  while (text.length < 1.2 * (1 << 20)) text += gap(k++);
  // No newline at the end: the last byte is the last title's.
  await Deno.writeTextFile(file, text + "  - id: LAST\n    title: end");
  const r = await loadBacklog(file);
  if (!r.ok) throw new Error(r.error);
  equal(r.value.gaps.length, k + 1);
  const last = r.value.gaps[k];
  deepEqual([last.id, last.title, last.line], ["LAST", "end", 1 + 3 * k + 1]);
});
