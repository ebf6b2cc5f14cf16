/**
 * The fast path of loading a backlog (lib/backlog/fast.ts) against the full
 * parser: on every fixture, every malformed case, and thousands of generated
 * backlogs of random shapes (flow and block lists, quoting styles, comments,
 * anchors and aliases, block scalars, repeated keys, CRLF, a BOM, non-ASCII,
 * tabs, numbers where text is expected, empty and missing lists), the same
 * gaps, warnings (with the same file:line) and errors. And it does take the
 * fast path where it should: the real backlog and the generated ones.
 */
import { deepEqual, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { parseBacklogBytes, parseBacklogText } from "../lib/backlog/parse.ts";
import { scanBacklog } from "../lib/backlog/fast.ts";
import { checkedNewlines, decodedNewlines } from "../lib/backlog/fast_check.ts";
import { seededRandom } from "../lib/learn/policy.ts";
import { ROOT } from "./_helpers.ts";

const FIXTURES = join(ROOT, "tests", "fixtures");

/** Both ways, and whether the fast one was sure. */
function compare(text: string, file: string): boolean {
  const full = parseBacklogText(text, file, { fast: false });
  const fast = parseBacklogText(text, file);
  deepEqual(fast, full, `differs on:\n${text}`);
  return scanBacklog(new TextEncoder().encode(text), file) !== undefined;
}

Deno.test("every fixture and malformed case: the same gaps, warnings and errors both ways", async () => {
  const files = [
    join(FIXTURES, "chump-gaps-2026-04-19.yaml"),
    join(FIXTURES, "synthetic-backlog.yaml"),
  ];
  for await (const e of Deno.readDir(join(FIXTURES, "malformed"))) {
    if (e.isFile) files.push(join(FIXTURES, "malformed", e.name));
  }
  for (const f of files) {
    const bytes = await Deno.readFile(f);
    compare(new TextDecoder().decode(bytes), f);
  }
  for (const [i, text] of EDGES.entries()) compare(text, `edge-${i}.yaml`);
  // The real backlog is read the fast way (its repeated keys and duplicate ids included).
  const real = await Deno.readTextFile(files[0]);
  assert(scanBacklog(new TextEncoder().encode(real), files[0]) !== undefined, "it fell back");
  // From the file's bytes as from its text; bytes that are not UTF-8 are the full path's error.
  deepEqual(
    parseBacklogBytes(await Deno.readFile(files[0]), files[0]),
    parseBacklogText(real, files[0], { fast: false }),
  );
  deepEqual(parseBacklogBytes(new Uint8Array([0x67, 0xff, 0x0a]), "bad.yaml"), {
    ok: false,
    error: "bad.yaml: not UTF-8 text",
  });
});

Deno.test("what the scanner leaves to the full parser: a nesting too deep, the rest of the document it cannot read; the same results both ways", () => {
  const nest = (n: number, pad: number) =>
    Array.from({ length: n }, (_, k) => `${" ".repeat(pad + k)}k${k}:`).join("\n");
  const bytes = (text: string) => new TextEncoder().encode(text);
  // 40 mappings deep in `meta:`: the full parser checks the rest; the gaps are still read here.
  const deepRest = `${nest(40, 0)}\ngaps:\n  - id: A\n`;
  assert(scanBacklog(bytes(deepRest), "d.yaml")?.rest !== undefined, "the rest was checked here");
  compare(deepRest, "d.yaml");
  // In a gap's own field: the whole file is the full parser's.
  const deepGap = `gaps:\n  - id: A\n    notes:\n${nest(40, 6)}\n`;
  deepEqual(scanBacklog(bytes(deepGap), "d.yaml"), undefined);
  compare(deepGap, "d.yaml");
  // Thousands deep: refused both ways, the same error, no crash.
  compare(`${nest(3000, 0)}\ngaps:\n  - id: A\n`, "d.yaml");
  compare(`gaps:\n  - id: A\n    notes:\n${nest(3000, 6)}\n`, "d.yaml");
  // A flow mapping in `meta:`: that much goes to the full parser, the gaps are read here.
  const flowMeta = "meta: {version: 2, tags: [a, b]}\ngaps:\n  - id: A\n";
  deepEqual(scanBacklog(bytes(flowMeta), "m.yaml")?.rest, "meta: {version: 2, tags: [a, b]}");
  compare(flowMeta, "m.yaml");
  // Many keys in one mapping (past the list, a set): a repeat is still seen.
  const many = Array.from({ length: 40 }, (_, k) => `    k${k}: v`).join("\n");
  compare(`gaps:\n  - id: A\n${many}\n    k3: again\n`, "k.yaml");
  compare(`meta:\n${many.replaceAll("    ", "  ")}\n  k3: again\ngaps:\n  - id: A\n`, "k.yaml");
});

/** Cases each rule of the scanner is there for (each would differ if the rule were gone). */
const EDGES = [
  "gaps:\n  - id: A\n    depends_on:\n      -   a\n      - b\n",
  "gaps:\n  - id: A\n    depends_on:\n      -\n",
  "gaps:\n  - id: A\n    title:  two spaces\n",
  "gaps:\n    - id: A\n  - id: B\n",
  "gaps:\n  - id: A\n    d: |9\n      text\n",
  "gaps:\n  - id: A\n    d: |1\n      text\n",
  "gaps:\n  - id: A\n    d: |\n        deeper first\n      then less\n    priority: P1\n",
  "gaps:\n  - id: A\n    d: |\n\n          \n      after blank lines\n",
  "meta:\n  a: 1\n  a: 2\ngaps:\n  - id: A\n",
  "gaps:\n  - id: A\n  - id: B\n   - id: C\n",
  "gaps:\n  - id: A\n    depends_on:\n      - a\n      b: c\n",
  "gaps:\n  - id: A\n    depends_on:\n    - a\n    - b\n    priority: P1\n",
  "gaps:\n  - id: A\n    title: a: b\n",
  "gaps:\n  - id: A\n    title: ends:\n",
  "gaps:\n  - id: 12\n",
  "gaps:\n  - id: A\n    priority: 1\n",
  "gaps:\n  - id: A\n    title: 'it''s'\n",
  "gaps:\n  - id: A\n    title: 'closed' tail\n",
  'gaps:\n  - id: A\n    title: "x"#c\n',
  'gaps:\n  - id: A\n    title: "a \\u2014 b"\n',
  "gaps:\n  - id: A\n    depends_on: [a, b, ]\n",
  "gaps:\n  - id: A\n    depends_on: [[a]]\n",
  "gaps:\n  - id: A\n    depends_on: [a, 'b', \"c\"]\n",
  "gaps:\n  - id: A\n    depends_on:\n",
  "gaps:\n  - id: A\n    depends_on: ~\n",
  "gaps:\n  - id: A\n    id: B\n",
  "gaps:\n  - id: A\n    x: &a 1\n  - id: B\n    x: *a\n",
  "gaps:\n  - id: A\n    x: !!str 1\n",
  "gaps:\n  - id: A\n    x: {a: 1}\n",
  "gaps:\n  - id: A\n    title: multi\n      line\n",
  "gaps:\n- id: A\n- id: B\nafter: 1\n",
  "gaps:\n  -   id: A\n      priority: P1\n",
  "gaps:\n  - id: A\n     priority: P1\n",
  "gaps:\n  -\n    id: A\n",
  "gaps:\n  - id: A\ngaps:\n  - id: B\n",
  "gaps:\n\nmeta: 1\n",
  "gaps:\n  - A-1\n",
  "gaps:\n  - id: A\n    <<: {priority: P1}\n",
  "---\ngaps:\n  - id: A\n",
  "gaps:\n  - id: A\n...\n",
  "gaps:\n  - id: A\n    d: >+ # c\n      text\n",
  'gaps:\n  - id: A\n    title: "a\n      b"\n',
  "gaps:\n  - id: A\n    x:\n      k: 1\n      k: 2\n",
  "gaps:\n  - id: A\n    true: 1\n    True: 2\n",
  "gaps:\n  - id: A\n    x:\n      Null: 1\n      null: 2\n",
  "gaps:\n  - id: A\n    d: 'a\n    b'\n",
  "gaps:\n  - id: A\n    d: 'a\n      b' c\n",
  "gaps:\n  - id: A\n    d: 'a\n\n      b''\n      c'\n    priority: P1\n",
  "gaps:\n  - id: A\n    x:\n      k: 1\n     j: 2\n",
  "gaps:\n  - id: A\n    x:\n      k: 1\n        j: 2\n",
  "gaps:\n  - id: A\n    x:\n      k: 1\n      - j\n",
  "meta:\n  n: 'a\nb'\ngaps:\n  - id: A\n",
  "meta:\n  x: 'open\ngaps:\n  - id: A\n  '\n",
  "meta:\n  a:\n    b: 1\n    b: 2\ngaps:\n  - id: A\n",
  "true: 1\nTrue: 2\ngaps:\n  - id: A\n",
  "meta: 1\ngaps:\n  - id: A\nmeta: 2\n",
  "gaps:\n  - id: A\n  meta: 1\n",
  "meta:\n  x: 'open\ngaps:\n  - id: A\n    title: x'\n",
  "gaps:\n  - id: A\ngaps: x\n",
  "meta: 1\n  deeper: 2\ngaps:\n  - id: A\n",
  "gaps:\n  - id: A\n---\nmeta: 1\n",
  "gaps:\n  - id: A\n    depends_on: [null]\n",
  "gaps:\n  - id: A\n    depends_on: [a, False]\n",
  "gaps:\n  - id: A\n    depends_on: [a] x\n",
  "gaps:\n  - id: A\n    depends_on: [] x\n",
  "gaps:\n  - id: A\n    depends_on: [a b]\n",
  "gaps:\n  - id: A\n    depends_on: [a{b]\n",
  "gaps:\n  - id: A\n    depends_on: [*a]\n",
  "gaps:\n  - id: A\n    depends_on: [ a_1 ,b.2 ]  # c [d]\n",
  "meta:\n  n: 'a\n    b ''q''\n\n    '\n  d:\n    k: v\n    j:\n      deep: 'x'\ngaps:\n  - id: A\n",
  // Lists and titles read from the bytes (plainIds, quotedText), and what each leaves to a closer look.
  "gaps:\n  - id: A\n    depends_on: [A-1, b_2, Zz]  # c\n",
  "gaps:\n  - id: A\n    depends_on: []  # c\n",
  "gaps:\n  - id: A\n    depends_on: [A-1,B-2]\n",
  "gaps:\n  - id: A\n    depends_on: [A,BC]\n",
  // Items of a list no run reads are checked too: the full parser refuses these.
  'gaps:\n  - id: A\n    closed_by:\n      - ok\n      - "a \\q"\n',
  "gaps:\n  - id: A\n    closed_by:\n      - [a\n",
  "gaps:\n  - id: A\n    closed_by:\n      - a: b: c\n",
  "gaps:\n  - id: A\n    closed_by:\n      - 'open\n",
  "gaps:\n  - id: A\n    depends_on: [A-1,  B-2]\n",
  "gaps:\n  - id: A\n    depends_on: [A-1 ]\n",
  "gaps:\n  - id: A\n    depends_on: [ A-1]\n",
  "gaps:\n  - id: A\n    depends_on: [A-1, ]\n",
  "gaps:\n  - id: A\n    depends_on: [A-1]]\n",
  "gaps:\n  - id: A\n    depends_on: [A-1\n",
  "gaps:\n  - id: A\n    depends_on: [no, Yes, off, tRUE, F-1, n-2]\n",
  "gaps:\n  - id: A\n    depends_on: [A:1, A.1, A/1, A1é]\n",
  `gaps:\n  - id: A\n    depends_on: [${"a".repeat(300)}]\n`,
  'gaps:\n  - id: A\n    title: "" # c\n',
  'gaps:\n  - id: A\n    title: "a \\" b"\n',
  'gaps:\n  - id: A\n    title: "a\\\\"\n',
  'gaps:\n  - id: A\n    title: "a" "b"\n',
  'gaps:\n  - id: A\n    title: "a"x\n',
  'gaps:\n  - id: A\n    title: "tail spaces  "   \n',
  'gaps:\n  - id: A\n    title: "é — ü"  # c\n',
  `gaps:\n  - id: A\n    title: "${"t".repeat(300)}"\n`,
  'gaps:\n  - id: A\n    title: "# not a comment: nor a key"\n',
];

/** Pick one of `xs` with `r`. */
function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)];
}

const PLAIN_IDS = ["A-1", "COG-002", "x", "Infra-9", "EVAL-027b", "a:b", "a b", "id#1"];
const ODD_IDS = ["12", "1.5", "true", "null", "~", "", "-1", "0x1F", "[A-1]", "{a: 1}", "*x"];
/** Values of the shapes real backlogs have. */
const CLEAN_TEXTS = [
  "plain text",
  '"double quoted — with a dash"',
  "'single ''quoted'''",
  "text # with a comment",
  "|\n      block line one\n      block line two",
  ">-\n      folded\n\n      more",
  "http://x.y/z",
  "emoji 😀",
  "café naïve",
  "",
  "'multi\n      line single ''q''\n\n      end'",
  "\n      k: v\n      k2: 'w'\n      k3:\n        deep: x",
];
const TEXTS = [
  ...CLEAN_TEXTS,
  '"escapes \\" \\\\ \\n \\t done"',
  "|\n        deeper first\n      then less",
  "|\n\n          \n      after blank lines",
  "|2\n        explicit indent",
  '"unicode \\u2014 escape"',
  "text # with a comment",
  "text with: colon",
  "trailing colon:",
  '"unterminated',
  "'unterminated",
  "|\n      block line one\n      block line two",
  ">-\n      folded\n\n      more",
  "multi\n      line plain",
  "&anchor anchored",
  "*alias",
  "!tag tagged",
  "42",
  "yes",
  "",
  "[a, b]",
  "{a: b}",
  "http://x.y/z",
  "-dash start",
  "- seq start",
  "`backtick",
  "@at",
  "'closed' trailing",
  '"closed"#nospace',
  "emoji 😀",
  "café naïve",
  "\n      k: v\n      k: w",
  "\n      true: 1\n      True: 2",
  "\n      k: v\n     off: 1",
  "\n      k: v\n        deeper: 1",
  "\n      - a\n      k: v",
  "'multi\nat column zero'",
  "'multi\n      closes' then",
];
const PRIORITIES = ["P0", "P1", "P2", "p1", "P3", "high", "1", "", '"P1"', "P1 # top"];
const EFFORTS = ["xs", "s", "m", "l", "xl", "XS", "huge", "", "'m'", "3"];
const STATUSES = ["open", "done", "blocked", "", '"open"', "in progress"];

/** Mostly the first `clean` values (the shapes real backlogs have), now and then any. */
function mostly<T>(r: () => number, xs: readonly T[], clean: number): T {
  return r() < 0.93 ? xs[Math.floor(r() * clean)] : pick(r, xs);
}

/** A `depends_on` value in one of its shapes, under a key at column `at`. */
function depends(r: () => number, at: number): string {
  const pad = " ".repeat(at);
  return mostly(r, [
    "[ A-1 ,COG-002 ]  # c [x]",
    "[]",
    "[A-1]",
    "[A-1, COG-002]",
    "[\"A-1\", 'x']",
    "[A-1, 2]",
    "[A-1,]",
    "[ ]",
    "A-1",
    "null",
    "~",
    "",
    `\n${pad}- A-1\n${pad}- COG-002`,
    `\n${pad}  - A-1\n${pad}  - x`,
    `\n${pad}- 7`,
    `\n${pad}- [a]`,
    `\n${pad}- a: b`,
    "[[a]]",
    "[a\n" + pad + "  , b]",
    "[A-1] x",
    "[x y]",
    "[Null]",
  ], 14);
}

/** One gap item at dash column `dash`. */
function gapText(r: () => number, dash: number, n: number): string {
  const at = dash + 2 + (r() < 0.05 ? 2 : 0);
  const pad = " ".repeat(at);
  const id = r() < 0.95 ? `${pick(r, PLAIN_IDS)}-${n}` : pick(r, ODD_IDS);
  const lines = [`${" ".repeat(dash)}-${" ".repeat(at - dash - 1)}id: ${id}`];
  const fields: [string, () => string][] = [
    ["title", () => mostly(r, TEXTS, 4)],
    ["priority", () => mostly(r, PRIORITIES, 6)],
    ["effort", () => mostly(r, EFFORTS, 7)],
    ["status", () => mostly(r, STATUSES, 6)],
    ["depends_on", () => depends(r, at)],
    ["description", () => mostly(r, TEXTS, CLEAN_TEXTS.length)],
    ["notes", () => mostly(r, TEXTS, CLEAN_TEXTS.length)],
    ["closed_date", () => pick(r, ["2026-04-17", '"2026-04-17"'])],
  ];
  for (const [key, value] of fields) {
    if (r() < 0.15) continue;
    if (r() < 0.05) lines.push(`${pad}# a comment`);
    if (r() < 0.05) lines.push("");
    lines.push(`${pad}${key}:${valueText(value(), r)}`);
    if (r() < 0.04) lines.push(`${pad}${key}:${valueText(value(), r)}`); // repeated
  }
  if (r() < 0.01) lines.push(`${" ".repeat(at + 2)}stray: deeper`);
  if (r() < 0.01) lines.push(`${" ".repeat(at - 1)}off: by one`);
  return lines.join("\n");
}

function valueText(v: string, r: () => number): string {
  if (v === "" && r() < 0.5) return "";
  if (v.startsWith("\n")) return v;
  return ` ${v}${r() < 0.05 ? "   " : ""}`;
}

/** A whole backlog of random shape. */
function backlogText(r: () => number): string {
  const dash = pick(r, [0, 2, 2, 2, 4]);
  const parts: string[] = [];
  if (r() < 0.7) {
    parts.push(
      mostly(r, [
        "meta:\n  version: '1'\n  note: 'multi\n    line single'\n",
        "domains:\n  a: one\n  b: two — three\n",
        "meta:\n  note: 'multi\n    line\n\n    '\n  n:\n    deep: x\n    d2: 'y'\n",
        "meta: {a: 1}\n",
        "meta:\n  a: 1\n  a: 2\n",
        "meta:\n  a:\n    b: 1\n    b: 2\n",
        "meta:\n  note: 'multi\nzero'\n",
        "true: 1\nTrue: 2\n",
        "# top comment\n",
        "---\n",
        "meta: &m\n  x: 1\nother: *m\n",
      ], r() < 0.8 ? 4 : 11),
    );
  }
  const items = Array.from({ length: Math.floor(r() * 5) }, (_, i) => gapText(r, dash, i));
  const head = mostly(r, ["gaps:", "gaps:  # the list", "gaps: []", "gaps:#x"], 2);
  parts.push(`${head}\n${items.join("\n")}\n`);
  if (r() < 0.2) {
    parts.push(mostly(r, ["after: 1\n", "gaps:\n  - id: DUP\n", "- stray\n", "...\n"], 1));
  }
  let text = parts.join("");
  const twist = r();
  // Somewhere in the gaps list: where the fast path reads.
  const at = text.indexOf("gaps:") + Math.floor(r() * (text.length - text.indexOf("gaps:")));
  const put = (s: string, width = 1) => text.slice(0, at) + s + text.slice(at + width);
  if (twist < 0.03) text = text.replaceAll("\n", "\r\n");
  else if (twist < 0.05) text = "\uFEFF" + text;
  else if (twist < 0.08) text = put("\t");
  else if (twist < 0.1) text = put("\t", 0);
  else if (twist < 0.12) text = put(pick(r, ["\u0007", "\u0000", "\u0085", "\u007f", "\ud800"]));
  else if (twist < 0.14) text = text.slice(0, at);
  else if (twist < 0.15) text = put("\r", 0);
  return text;
}

Deno.test("thousands of generated backlogs of random shapes: the same gaps, warnings and errors both ways", () => {
  const r = seededRandom(20261206);
  let sure = 0;
  const N = 10_000;
  for (let i = 0; i < N; i++) {
    if (compare(backlogText(r), `gen-${i}.yaml`)) sure++;
  }
  // Most of them are of the shapes real backlogs have: the fast path is taken, not dodged.
  assert(sure > N / 8, `the fast path was sure of only ${sure} of ${N}`);
});

Deno.test("the two byte checks (the runtime's decoder for a small file, four bytes at a time for a big one) agree on every kind of byte", () => {
  const r = seededRandom(7);
  const pieces = [
    "plain ascii text ",
    "\n",
    "\n\n",
    "  ",
    "—",
    "é",
    "😀",
    "\t",
    "\r",
    "\u0000",
    "\u007f",
    "\u0085",
    "\u00a0",
    "\ufeff",
    "\ufffe",
    "\uffff",
    "\u2028",
    "#",
    "z",
  ];
  const raw = [[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80], [
    0xc2,
  ]];
  for (let n = 0; n < 3000; n++) {
    const parts: number[] = [];
    const len = Math.floor(r() * 40);
    for (let k = 0; k < len; k++) {
      if (r() < 0.03) parts.push(...pick(r, raw));
      else {parts.push(
          ...new TextEncoder().encode(pick(r, r() < 0.8 ? pieces.slice(0, 5) : pieces)),
        );}
    }
    // At every offset of a larger buffer: the four-byte steps meet every alignment.
    const pad = Math.floor(r() * 4);
    const buffer = new Uint8Array(parts.length + pad);
    buffer.set(parts, pad);
    const bytes = buffer.subarray(pad);
    deepEqual(checkedNewlines(bytes), decodedNewlines(bytes), JSON.stringify(parts));
  }
});
