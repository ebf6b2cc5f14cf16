/**
 * Test doubles of the reflection writer (lib/store/writer.ts), for tests
 * and benches: one that drops every row, one that keeps copies. Product
 * code never imports it.
 *
 * @module
 */
import type { DispatchReflection } from "../lib/store/reflection.ts";
import type { ReflectionWriter } from "../lib/store/writer.ts";

/**
 * A writer that drops every row and ends no lease (tests, benchmarks; the
 * CLI's `--no-reflect` uses the SQLite writer with `reflect: false`).
 *
 * @example
 * ```ts
 * const receipt = await createNoopWriter().write({
 *   gapId: "A-1", effort: "s", domain: "a", outcome: "shipped", durationS: 1,
 *   parallelSiblings: 0, notes: "",
 * });
 * // receipt.stored === "discarded"
 * ```
 */
export function createNoopWriter(): ReflectionWriter {
  return {
    write: () => Promise.resolve({ stored: "discarded" }),
    close() {},
  };
}

/**
 * A writer that keeps copies of the rows in `rows` (for tests).
 *
 * @example
 * ```ts
 * const w = createMemoryWriter();
 * await w.write({
 *   gapId: "A-1", effort: "s", domain: "a", outcome: "killed", durationS: 3,
 *   parallelSiblings: 0, notes: "exit code 1",
 * });
 * // w.rows.length === 1
 * ```
 */
export function createMemoryWriter(): ReflectionWriter & { rows: DispatchReflection[] } {
  const rows: DispatchReflection[] = [];
  return {
    rows,
    write(r) {
      rows.push({ ...r });
      return Promise.resolve({ stored: "memory" });
    },
    close() {},
  };
}
