/**
 * Where a reading command (`reflections`, `lessons`, `route`, and a run's
 * learning) takes its reflections from: the local DB, or with `--ledger` the
 * whole fleet's from the shared ledger. The PostgreSQL driver is loaded only
 * then.
 *
 * @module
 */
import type { ReflectionSource } from "../store/query.ts";
import type { Result } from "../util/result.ts";

/**
 * The reflections of `db`, or of the fleet when `ledger` is given; `close`
 * releases what was opened.
 *
 * @example
 * ```ts ignore
 * const source = await reflectionSource(undefined, "/repo/sessions/chump_memory.db");
 * ```
 */
export async function reflectionSource(
  ledger: string | undefined,
  db: string,
): Promise<Result<{ source: ReflectionSource; close(): void }>> {
  if (ledger === undefined) return { ok: true, value: { source: db, close() {} } };
  const { readFleetReflections } = await import("../store/pg/reflections.ts");
  const fleet = await readFleetReflections(ledger);
  if (!fleet.ok) return fleet;
  return { ok: true, value: { source: fleet.value, close: () => fleet.value.db.close() } };
}
