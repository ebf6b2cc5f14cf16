import { deepEqual, deepEqual as assertEquals, equal } from "node:assert/strict";
import { loadBacklog } from "../lib/backlog/load.ts";
import { pickableGaps, pickGaps, skipReason } from "../lib/backlog/picker.ts";
import { FIXTURE, gap } from "./_helpers.ts";

const ids = (gaps: { id: string }[]) => gaps.map((g) => g.id);

Deno.test("only open gaps are picked (status compared case-insensitively)", () => {
  const gaps = [
    gap("A-1", { status: "done" }),
    gap("A-2", { status: "blocked" }),
    gap("A-3", { status: "deferred" }),
    gap("A-4", { status: "OPEN" }),
    gap("A-5", { status: "" }),
  ];
  assertEquals(ids(pickGaps(gaps, { limit: 10 })), ["A-4"]);
});

Deno.test("P0, P1 and P2 are picked; P3, lower and missing priorities are not", () => {
  const gaps = [
    gap("A-0", { priority: "P0" }),
    gap("A-1", { priority: "p1" }),
    gap("A-2", { priority: "P2" }),
    gap("A-3", { priority: "P3" }),
    gap("A-4", { priority: "P4" }),
    gap("A-5", { priority: "" }),
    gap("A-6", { priority: "high" }),
  ];
  assertEquals(ids(pickGaps(gaps, { limit: 10 })), ["A-0", "A-1", "A-2"]);
});

Deno.test("xl gaps are never picked; other and missing efforts are", () => {
  const gaps = [
    gap("A-1", { effort: "xl" }),
    gap("A-2", { effort: "XL" }),
    gap("A-3", { effort: "l" }),
    gap("A-4", { effort: "" }),
  ];
  assertEquals(ids(pickGaps(gaps, { limit: 10 })), ["A-3", "A-4"]);
});

Deno.test("a gap waits until every dependency is done; an unknown id blocks", () => {
  const gaps = [
    gap("D-1", { status: "done" }),
    gap("D-2", { status: "open" }),
    gap("A-1", { dependsOn: ["D-1"] }),
    gap("A-2", { dependsOn: ["D-1", "D-2"] }),
    gap("A-3", { dependsOn: ["NOPE-9"] }),
  ];
  assertEquals(ids(pickGaps(gaps, { limit: 10 })), ["D-2", "A-1"]);
  assertEquals(skipReason(gaps[3], new Set(["D-1"])), "waits for D-2");
});

Deno.test("a gap shipped in this run counts as done for its dependents", () => {
  const gaps = [gap("A-1"), gap("A-2", { dependsOn: ["A-1"] })];
  assertEquals(ids(pickGaps(gaps, { limit: 10, dispatched: new Set(["A-1"]) })), []);
  assertEquals(
    ids(pickGaps(gaps, { limit: 10, dispatched: new Set(["A-1"]), shipped: new Set(["A-1"]) })),
    ["A-2"],
  );
});

Deno.test("a gap leased by a live dispatch is not picked", () => {
  const gaps = [gap("A-1"), gap("A-2")];
  assertEquals(ids(pickGaps(gaps, { limit: 10, leased: new Set(["A-1"]) })), ["A-2"]);
});

Deno.test("an id is picked at most once: the first pickable occurrence wins", () => {
  const gaps = [
    gap("A-1", { status: "done", title: "old" }),
    gap("A-1", { title: "first pickable" }),
    gap("A-1", { title: "second pickable" }),
  ];
  const picks = pickGaps(gaps, { limit: 10 });
  assertEquals(picks.map((g) => g.title), ["first pickable"]);
});

Deno.test("order is by priority, ties in file order; --order file keeps file order", () => {
  const gaps = [
    gap("A-1", { priority: "P2" }),
    gap("A-2", { priority: "P1" }),
    gap("A-3", { priority: "P0" }),
    gap("A-4", { priority: "P1" }),
  ];
  assertEquals(ids(pickGaps(gaps, { limit: 10 })), ["A-3", "A-2", "A-4", "A-1"]);
  assertEquals(ids(pickGaps(gaps, { limit: 10, order: "file" })), ["A-1", "A-2", "A-3", "A-4"]);
});

Deno.test("the first N are taken", () => {
  const gaps = [gap("A-1"), gap("A-2"), gap("A-3")];
  assertEquals(ids(pickGaps(gaps, { limit: 2 })), ["A-1", "A-2"]);
  assertEquals(ids(pickGaps(gaps, { limit: 0 })), []);
});

// The expected lists were computed independently (PyYAML + the contract's
// rules) from ../shared/fixtures/chump-gaps-2026-04-19.yaml.
const FIXTURE_PICKS = [
  "FRONTIER-005",
  "EVAL-030",
  "INFRA-MERGE-QUEUE",
  "COMP-007",
  "COG-020",
  "COMP-008",
  "COMP-009",
  "COMP-010",
  "COMP-011a",
  "EVAL-031",
  "COMP-014",
  "EVAL-032",
  "EVAL-033",
  "EVAL-034",
  "EVAL-038",
  "INFRA-FILE-LEASE",
  "INFRA-BOT-MERGE-LOCK",
  "INFRA-AGENT-ESCALATION",
  "INFRA-DISPATCH-POLICY",
  "MEM-006-VALIDATE",
  "MEM-007",
];

Deno.test("the real fixture yields exactly the contract's picks, in priority order", async () => {
  const loaded = await loadBacklog(FIXTURE);
  if (!loaded.ok) throw new Error(loaded.error);
  assertEquals(ids(pickableGaps(loaded.value.gaps, { limit: Infinity })), FIXTURE_PICKS);
  assertEquals(ids(pickGaps(loaded.value.gaps, { limit: 2 })), ["FRONTIER-005", "EVAL-030"]);
});

Deno.test("the real fixture in file order", async () => {
  const loaded = await loadBacklog(FIXTURE);
  if (!loaded.ok) throw new Error(loaded.error);
  const picked = ids(pickableGaps(loaded.value.gaps, { limit: Infinity, order: "file" }));
  assertEquals([...picked].sort(), [...FIXTURE_PICKS].sort());
  // File order keeps the P2 COMP-007 (line 4172) before the P1 FRONTIER-005 (line 4241).
  assertEquals(picked.indexOf("COMP-007") < picked.indexOf("FRONTIER-005"), true);
});

Deno.test("priorities and efforts named like Object.prototype members are plain unknown values", () => {
  const gaps = [
    gap("C-1", { priority: "constructor" }),
    gap("C-2", { priority: "__proto__" }),
    gap("C-3", { priority: "toString" }),
    gap("C-4", { priority: "hasOwnProperty", effort: "constructor" }),
    gap("C-5", { effort: "__proto__" }),
  ];
  deepEqual(pickGaps(gaps, { limit: 10 }).map((g) => g.id), ["C-5"]);
  deepEqual(pickGaps(gaps, { limit: 10, order: "file" }).map((g) => g.id), ["C-5"]);
  equal(skipReason(gaps[0], new Set()), "priority constructor");
  equal(skipReason(gaps[1], new Set()), "priority __proto__");
});
