/**
 * Recording a terminal outcome in SQL: the reflection's two rows and the end
 * of its lease in ONE transaction, exactly once per dispatch (a lease that
 * ended already, or that another generation owns, takes nothing).
 *
 * @module
 */
import { type CostFacts, decodeNotes } from "./notes.ts";
import { applyBackoff } from "./backoff.ts";
import { type Connection, transaction } from "./connection.ts";
import {
  directive,
  DISPATCH_ERROR_PATTERN,
  type DispatchReflection,
  GOAL_PREFIX,
  observedOutcome,
  outcomeClass,
  targetPriority,
} from "./reflection.ts";

const INSERT_REFLECTION = `INSERT INTO chump_reflections
     (intended_goal, observed_outcome, outcome_class, error_pattern, hypothesis, created_at)
   VALUES (?, ?, ?, ?, ?, COALESCE(?, datetime('now')))`;

const INSERT_TARGET = `INSERT INTO chump_improvement_targets
     (reflection_id, directive, priority, scope, created_at)
   VALUES (?, ?, ?, ?, COALESCE(?, datetime('now')))`;

const FIND_REFLECTION = `SELECT 1 AS found FROM chump_reflections
  WHERE error_pattern = ? AND intended_goal = ? AND observed_outcome = ?
    AND hypothesis = ? AND created_at = ? LIMIT 1`;

const END_LEASE = `UPDATE chump_dispatch_leases
    SET state = 'ended', outcome = ?, notes = ?, updated_ms = ?,
        cost_usd = coalesce(?, cost_usd), tokens_in = coalesce(?, tokens_in),
        tokens_out = coalesce(?, tokens_out), tokens_cache_read = coalesce(?, tokens_cache_read),
        tokens_cache_write = coalesce(?, tokens_cache_write), turns = coalesce(?, turns),
        session_id = coalesce(?, session_id)
  WHERE id = ? AND state != 'ended'`;

const LEASE_OWNER = "SELECT state, generation FROM chump_dispatch_leases WHERE id = ?";

/**
 * End a lease (a no-op when it ended already). Call inside a transaction or
 * on its own (one statement is atomic).
 *
 * @returns whether this call ended it
 * @example
 * ```ts ignore
 * endLease(c, 7, "killed", "exit code 1\nbackend=claude");
 * ```
 */
export function endLease(
  c: Connection,
  leaseId: number,
  outcome: string | null,
  notes: string,
): boolean {
  // The cost columns come from the notes' cost facts (one codec), so a spooled row fills them too.
  const cost = decodeNotes(notes).cost;
  return Number(
    c.statement(END_LEASE).run(
      outcome,
      notes,
      Date.now(),
      ...costColumns(cost),
      leaseId,
    ).changes,
  ) > 0;
}

/**
 * The lease's cost columns from a dispatch's cost facts, in
 * {@linkcode END_LEASE}'s order (nulls keep what the lease has).
 *
 * @example
 * ```ts
 * costColumns(undefined); // [null, null, null, null, null, null, null]
 * ```
 */
export function costColumns(cost: CostFacts | undefined): (number | string | null)[] {
  if (!cost) return [null, null, null, null, null, null, null];
  return [
    cost.usd ?? null,
    cost.tokensIn,
    cost.tokensOut,
    cost.cacheRead,
    cost.cacheWrite,
    cost.turns,
    cost.session ?? null,
  ];
}

/** Options of {@linkcode recordOutcome}. */
export interface RecordOptions {
  /** Write the reflection's rows (false: `--no-reflect`, only the lease ends). */
  reflect?: boolean;
  /** The row's time instead of `datetime('now')` (a spooled row keeps its own). */
  createdAt?: string;
  /**
   * Skip the rows when this exact reflection (same goal, outcome, notes and
   * time) is already there: a spool import that crashed before its rewrite.
   */
  skipIfPresent?: boolean;
}

/**
 * Record one terminal outcome in ONE transaction: the reflection, its
 * improvement target and (when `r.leaseId` is set) the end of its lease. A
 * crash leaves all of them or none: never a reflection with a live lease.
 * Exactly once: when the lease ended already or another generation owns it
 * (an adopter took it over), nothing is written and `"superseded"` comes back.
 *
 * @returns whether the lease was ended by this call, or `"superseded"`
 * @example
 * ```ts ignore
 * await store.run((c) => recordOutcome(c, reflection), { lockWaitMs: LOCK_WAIT_MS, durable: true });
 * ```
 */
export function recordOutcome(
  c: Connection,
  r: DispatchReflection,
  options: RecordOptions = {},
): boolean | "superseded" {
  const { reflect = true, createdAt, skipIfPresent = false } = options;
  return transaction(c, () => {
    if (r.leaseId !== undefined && superseded(c, r.leaseId, r.leaseGeneration)) return "superseded";
    // A replayed row already there (a crash before the spool's rewrite) counted its failure then.
    const fresh = !(skipIfPresent && createdAt !== undefined && present(c, r, createdAt));
    if (fresh) applyBackoff(c, r.gapId, r.backoff, Date.now());
    if (reflect && fresh) {
      const { lastInsertRowid } = c.statement(INSERT_REFLECTION).run(
        GOAL_PREFIX + r.gapId,
        observedOutcome(r),
        outcomeClass(r.outcome),
        DISPATCH_ERROR_PATTERN,
        r.notes,
        createdAt ?? null,
      );
      c.statement(INSERT_TARGET).run(
        lastInsertRowid,
        directive(r),
        targetPriority(r.outcome),
        r.domain,
        createdAt ?? null,
      );
    }
    return r.leaseId !== undefined && endLease(c, r.leaseId, r.outcome, r.notes);
  });
}

/**
 * Is this dispatch's outcome no longer ours to record? Its lease ended
 * already (its reflection is written) or was taken over since (another
 * generation owns it). A lease row that is missing does not stop a
 * reflection: it is never dropped for want of a lease.
 */
function superseded(c: Connection, leaseId: number, generation: number | undefined): boolean {
  const row = c.statement(LEASE_OWNER).get(leaseId) as
    | { state: string; generation: number | bigint }
    | undefined;
  if (row === undefined) return false;
  if (row.state === "ended") return true;
  return generation !== undefined && Number(row.generation) !== generation;
}

function present(c: Connection, r: DispatchReflection, createdAt: string): boolean {
  return c.statement(FIND_REFLECTION).get(
    DISPATCH_ERROR_PATTERN,
    GOAL_PREFIX + r.gapId,
    observedOutcome(r),
    r.notes,
    createdAt,
  ) !== undefined;
}
