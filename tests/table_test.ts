import { deepEqual, equal } from "node:assert/strict";
import { columnWidths, formatTable } from "../lib/cli/table.ts";

Deno.test("columnWidths: each column's widest cell, header included; no rows, no columns", () => {
  deepEqual(columnWidths([["gap", "state"], ["AUTO-013", "up"], ["A", ""]]), [8, 5]);
  deepEqual(columnWidths([]), []);
});

Deno.test("formatTable: columns padded to their widest cell, two spaces apart, no trailing space", () => {
  equal(
    formatTable(["gap", "state"], [["AUTO-013", "up"], ["A", "a longer state"]]),
    "gap       state\nAUTO-013  up\nA         a longer state",
  );
});
