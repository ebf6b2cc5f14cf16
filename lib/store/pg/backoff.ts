/**
 * Backing off and parking for the whole fleet (store/backoff.ts's rule, in
 * PostgreSQL): an outcome's effect applied in the transaction that records
 * it, the gaps held back now, and `unpark`. A claim refuses a held-back gap
 * in its own statement (store/pg/claims.ts).
 *
 * @module
 */
import type postgres from "postgres";
import { type GapBackoff, nextBackoff } from "../backoff.ts";
import type { DispatchReflection } from "../reflection.ts";
import type { Result } from "../../util/result.ts";
import type { PgLedger } from "./connect.ts";

/** What the outcome does to its gap's backoff, for the whole fleet (store/backoff.ts). */
export async function applySharedBackoff(tx: postgres.TransactionSql, r: DispatchReflection) {
  const b = r.backoff;
  if (!b || b.effect === "none") return;
  if (b.effect === "reset") {
    await tx`DELETE FROM chump_pg_gap_backoff WHERE gap_id = ${r.gapId}`;
    return;
  }
  const [prev] = await tx`SELECT failures FROM chump_pg_gap_backoff
                          WHERE gap_id = ${r.gapId} FOR UPDATE`;
  const next = nextBackoff(prev ? { failures: Number(prev.failures) } : undefined, b, 0);
  await tx`INSERT INTO chump_pg_gap_backoff (gap_id, failures, reason, retry_at, parked)
           VALUES (${r.gapId}, ${next.failures}, ${b.reason},
                   now() + make_interval(secs => ${next.retryAtMs / 1000}), ${next.parked})
           ON CONFLICT (gap_id) DO UPDATE SET failures = excluded.failures,
             reason = excluded.reason, retry_at = excluded.retry_at, parked = excluded.parked,
             updated_at = now()`;
}

/**
 * The gaps the fleet holds back now: parked, or waiting after failures.
 *
 * @example
 * ```ts ignore
 * const held = await heldBackShared(pg);
 * ```
 */
export function heldBackShared(pg: PgLedger): Promise<Result<GapBackoff[]>> {
  return pg.attempt("read the held-back gaps", async () => {
    const rows = await pg.sql`SELECT gap_id, failures, reason, parked,
        (extract(epoch FROM retry_at) * 1000)::bigint AS retry_ms,
        (extract(epoch FROM now()) * 1000)::bigint AS now_ms
      FROM chump_pg_gap_backoff WHERE parked OR retry_at > now() ORDER BY gap_id`;
    // The wait as the server counts it, on this host's clock.
    return rows.map((r) => ({
      gapId: String(r.gap_id),
      failures: Number(r.failures),
      reason: String(r.reason),
      retryAtMs: Date.now() + Number(r.retry_ms) - Number(r.now_ms),
      parked: Boolean(r.parked),
    }));
  });
}

/**
 * Forget a gap's failures for the whole fleet: the row it had, if any.
 *
 * @example
 * ```ts ignore
 * const had = await unparkShared(pg, "A-1");
 * ```
 */
export function unparkShared(pg: PgLedger, gapId: string): Promise<Result<GapBackoff | undefined>> {
  return pg.attempt("unpark the gap", async () => {
    const [r] = await pg.sql`DELETE FROM chump_pg_gap_backoff WHERE gap_id = ${gapId}
      RETURNING gap_id, failures, reason, parked`;
    return r === undefined ? undefined : {
      gapId,
      failures: Number(r.failures),
      reason: String(r.reason),
      retryAtMs: 0,
      parked: Boolean(r.parked),
    };
  });
}
