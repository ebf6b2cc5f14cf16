/**
 * Plain-text tables for `status` and `reflections`: columns padded to their
 * widest cell, every cell one line; and the widths themselves, for the
 * live view's table and the bench's Markdown one.
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
  const widths = columnWidths(all);
  return all.map((r) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd()).join("\n");
}

/**
 * The width of each column: its widest cell, over rows of equal length.
 *
 * @example
 * ```ts
 * import { columnWidths } from "./table.ts";
 *
 * columnWidths([["a", "bb"], ["ccc", ""]]); // [3, 2]
 * ```
 */
export function columnWidths(rows: readonly (readonly string[])[]): number[] {
  const widths = rows.length === 0 ? [] : rows[0].map(() => 0);
  for (const row of rows) {
    for (let i = 0; i < widths.length; i++) widths[i] = Math.max(widths[i], row[i].length);
  }
  return widths;
}
