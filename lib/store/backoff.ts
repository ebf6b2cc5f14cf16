/**
 * Backing off and parking a gap that keeps failing: each failure in a row
 * (`killed`, `stalled`, `ci_failed`, but not an interrupted or lost
 * dispatch, a rate limit or a transient error) holds the gap back from
 * every host sharing the ledger until `--retry-after` has passed, doubling
 * each time; after `--park-after` failures in a row it is parked until
 * `unpark`. A ship clears it. The state sits where the ledger does: here in
 * SQLite (`chump_gap_backoff`, written in the reflection's own transaction),
 * in PostgreSQL with `--ledger` (store/pg/). The rule is pure; the SQL is
 * the local table's.
 *
 * @module
 */
import type { Connection } from "./connection.ts";
import { roughDuration } from "../util/duration.ts";

/** `--retry-after` and `--park-after`. */
export interface BackoffPolicy {
  retryAfterMs: number;
  parkAfter: number;
}

/** The defaults: 30 minutes, doubling; parked after 3 failures in a row. */
export const DEFAULT_BACKOFF: BackoffPolicy = { retryAfterMs: 30 * 60_000, parkAfter: 3 };

/** What an outcome does to its gap's backoff, carried by its reflection (so a spooled row does it too). */
export interface OutcomeBackoff extends BackoffPolicy {
  /** `fail`: one more failure in a row; `reset`: shipped; `none`: says nothing of the gap. */
  effect: "fail" | "reset" | "none";
  /** Why it failed (the reason line), for `PARKED:` and `--explain`. */
  reason: string;
}

/** A gap held back. */
export interface GapBackoff {
  gapId: string;
  /** Failures in a row. */
  failures: number;
  /** The last failure's reason. */
  reason: string;
  /** Not dispatched before this (ms since the epoch). */
  retryAtMs: number;
  parked: boolean;
}

/**
 * The state after one more failure.
 *
 * @example
 * ```ts
 * const p = { retryAfterMs: 60_000, parkAfter: 3 };
 * nextBackoff(undefined, p, 0); // { failures: 1, retryAtMs: 60000, parked: false }
 * nextBackoff({ failures: 2 }, p, 0); // { failures: 3, retryAtMs: 240000, parked: true }
 * ```
 */
export function nextBackoff(
  prev: { failures: number } | undefined,
  policy: BackoffPolicy,
  now: number,
): { failures: number; retryAtMs: number; parked: boolean } {
  const failures = (prev?.failures ?? 0) + 1;
  // Doubling, within what a Date holds (a far-off retry is a park in all but name).
  const wait = Math.min(policy.retryAfterMs * 2 ** Math.min(failures - 1, 30), 1e13);
  return { failures, retryAtMs: now + wait, parked: failures >= policy.parkAfter };
}

/**
 * Why a gap is not dispatched now, or undefined when its backoff is over.
 *
 * @example
 * ```ts
 * const b = { gapId: "A-1", failures: 3, reason: "exit code 1", retryAtMs: 0, parked: true };
 * heldBackWhy(b, 0); // "parked after 3 failures: exit code 1"
 * heldBackWhy({ ...b, parked: false, failures: 1, retryAtMs: 840_000 }, 0); // "retry after 14m (1 failure in a row: exit code 1)"
 * ```
 */
export function heldBackWhy(b: GapBackoff, now: number): string | undefined {
  const failures = `${b.failures} failure${b.failures === 1 ? "" : "s"}`;
  if (b.parked) return `parked after ${failures}: ${b.reason}`;
  if (b.retryAtMs <= now) return undefined;
  return `retry after ${roughDuration(b.retryAtMs - now)} (${failures} in a row: ${b.reason})`;
}

/**
 * Why each gap is held back now, by gap id (those whose wait is over left out).
 *
 * @example
 * ```ts
 * heldBackReasons([{ gapId: "A-1", failures: 3, reason: "exit code 1", retryAtMs: 0, parked: true }], 0);
 * // Map { "A-1" => "parked after 3 failures: exit code 1" }
 * ```
 */
export function heldBackReasons(held: readonly GapBackoff[], now: number): Map<string, string> {
  const out = new Map<string, string>();
  for (const b of held) {
    const why = heldBackWhy(b, now);
    if (why !== undefined) out.set(b.gapId, why);
  }
  return out;
}

/** The local table (store/schema.ts creates it). */
export const BACKOFF_SCHEMA = `CREATE TABLE IF NOT EXISTS chump_gap_backoff (
  gap_id TEXT PRIMARY KEY,
  failures INTEGER NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  retry_at_ms INTEGER NOT NULL,
  parked INTEGER NOT NULL DEFAULT 0,
  updated_ms INTEGER NOT NULL
);`;

/**
 * Apply one outcome to its gap's row (inside the reflection's transaction).
 *
 * @example
 * ```ts ignore
 * applyBackoff(c, "A-1", reflection.backoff, Date.now());
 * ```
 */
export function applyBackoff(
  c: Connection,
  gapId: string,
  b: OutcomeBackoff | undefined,
  now: number,
): void {
  if (!b || b.effect === "none") return;
  if (b.effect === "reset") {
    c.statement("DELETE FROM chump_gap_backoff WHERE gap_id = ?").run(gapId);
    return;
  }
  const prev = c.statement("SELECT failures FROM chump_gap_backoff WHERE gap_id = ?").get(gapId);
  const next = nextBackoff(prev ? { failures: Number(prev.failures) } : undefined, b, now);
  c.statement(
    `INSERT INTO chump_gap_backoff (gap_id, failures, reason, retry_at_ms, parked, updated_ms)
     VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT(gap_id) DO UPDATE SET failures = excluded.failures, reason = excluded.reason,
       retry_at_ms = excluded.retry_at_ms, parked = excluded.parked, updated_ms = excluded.updated_ms`,
  ).run(gapId, next.failures, b.reason, next.retryAtMs, next.parked ? 1 : 0, now);
}

/** Every row of the local table (the held-back gaps and those whose wait is over). */
export function readBackoffs(c: Connection): GapBackoff[] {
  return c.statement("SELECT * FROM chump_gap_backoff ORDER BY gap_id").all().map((r) => ({
    gapId: String(r.gap_id),
    failures: Number(r.failures),
    reason: String(r.reason ?? ""),
    retryAtMs: Number(r.retry_at_ms),
    parked: Number(r.parked) !== 0,
  }));
}

/** Forget a gap's failures (`unpark`); the row it had, if any. */
export function clearBackoff(c: Connection, gapId: string): GapBackoff | undefined {
  const had = readBackoffs(c).find((b) => b.gapId === gapId);
  c.statement("DELETE FROM chump_gap_backoff WHERE gap_id = ?").run(gapId);
  return had;
}
