/**
 * Plain-text tables for `status` and `reflections`: columns padded to their
 * widest cell, every cell one line.
 *
 * @module
 */
import { oneLine } from "../util/text.ts";

/**
 * Columns padded to their widest cell.
 *
 * @example
 * ```ts
 * import { formatTable } from "./table.ts";
 *
 * formatTable(["a", "b"], [["1", "22"]]); // "a  b\n1  22"
 * ```
 */
export function formatTable(header: string[], rows: string[][]): string {
  const all = [header, ...rows.map((r) => r.map((c) => oneLine(c, 120)))];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  return all.map((r) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd()).join("\n");
}
