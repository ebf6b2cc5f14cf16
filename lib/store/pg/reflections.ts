/**
 * The fleet's reflections in PostgreSQL: the contract's two rows of an
 * outcome, written in the transaction that ends the lease it belongs to and
 * only while that lease is live (so a host that lost its lease to a take-over
 * writes nothing, and a row replayed from a spool is never written twice);
 * and reading every host's rows back into an in-memory SQLite DB of the same
 * schema, so the readers of the local DB (scoreboard, `lessons`,
 * `reflections`) see the whole fleet unchanged.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import {
  directive,
  DISPATCH_ERROR_PATTERN,
  type DispatchReflection,
  GOAL_PREFIX,
  observedOutcome,
  outcomeClass,
  REFLECTION_SCHEMA,
  targetPriority,
} from "../reflection.ts";
import type { Result } from "../../util/result.ts";
import { LIVE_STATES, openPg, type PgLedger } from "./connect.ts";
import { costColumns } from "../outcome.ts";
import { applySharedBackoff } from "./backoff.ts";
import { decodeNotes } from "../notes.ts";

/** What became of a reflection sent to the shared ledger. */
export type SharedRecord =
  /** Written now, and its lease ended. */
  | "recorded"
  /** Written before (a replay of a row whose first write succeeded). */
  | "present"
  /** Not written: its lease was taken over by another host (or ended without it). */
  | "superseded";

/**
 * Write `r`'s two rows and end its shared lease `leaseId` in one
 * transaction, only while the lease is live. `createdAt` keeps a spooled
 * row's own time.
 *
 * @example
 * ```ts ignore
 * const done = await recordShared(pg, 42, reflection); // { ok: true, value: "recorded" }
 * ```
 */
export function recordShared(
  pg: PgLedger,
  leaseId: number,
  r: DispatchReflection,
  createdAt?: string,
): Promise<Result<SharedRecord>> {
  return pg.attempt("record a reflection", () =>
    pg.sql.begin(async (tx): Promise<SharedRecord> => {
      const [lease] = await tx`SELECT state, reflection_id FROM chump_pg_leases
                               WHERE id = ${leaseId} FOR UPDATE`;
      if (lease?.reflection_id !== null && lease?.reflection_id !== undefined) return "present";
      // A missing lease row does not stop a reflection: one is never dropped for want of a lease.
      if (lease !== undefined && !LIVE_STATES.includes(String(lease.state))) return "superseded";
      const at = createdAt ?? null;
      const [row] = await tx`INSERT INTO chump_reflections
          (intended_goal, observed_outcome, outcome_class, error_pattern, hypothesis, created_at)
        VALUES (${GOAL_PREFIX + r.gapId}, ${observedOutcome(r)}, ${outcomeClass(r.outcome)},
                ${DISPATCH_ERROR_PATTERN}, ${r.notes},
                coalesce(${at}::text, to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')))
        RETURNING id, created_at`;
      await tx`INSERT INTO chump_improvement_targets
          (reflection_id, directive, priority, scope, created_at)
        VALUES (${row.id}, ${directive(r)}, ${targetPriority(r.outcome)}, ${r.domain},
                ${row.created_at})`;
      const [usd, tin, tout, cread, cwrite, turns, session] = costColumns(
        decodeNotes(r.notes).cost,
      );
      await tx`UPDATE chump_pg_leases SET state = 'ended', outcome = ${r.outcome},
                 reflection_id = ${row.id}, updated_at = now(),
                 cost_usd = ${usd}, tokens_in = ${tin}, tokens_out = ${tout},
                 tokens_cache_read = ${cread}, tokens_cache_write = ${cwrite},
                 turns = ${turns}, session_id = ${session}
               WHERE id = ${leaseId}`;
      await applySharedBackoff(tx, r);
      return "recorded";
    }));
}

/**
 * Every dispatch reflection of the fleet (with its improvement targets) in
 * an in-memory SQLite DB with the contract's schema, ids in PostgreSQL's
 * order. Close it when done.
 */
function fleetReflections(pg: PgLedger): Promise<Result<DatabaseSync>> {
  return pg.attempt("read the fleet's reflections", async () => {
    const reflections = await pg.sql`
      SELECT id, episode_id, task_id, intended_goal, observed_outcome, outcome_class,
             error_pattern, hypothesis, surprisal_at_reflect, confidence_at_reflect, created_at
      FROM chump_reflections WHERE error_pattern = ${DISPATCH_ERROR_PATTERN} ORDER BY id`;
    const targets = await pg.sql`
      SELECT t.id, t.reflection_id, t.directive, t.priority, t.scope, t.actioned_as, t.created_at
      FROM chump_improvement_targets t JOIN chump_reflections r ON r.id = t.reflection_id
      WHERE r.error_pattern = ${DISPATCH_ERROR_PATTERN} ORDER BY t.id`;
    const db = new DatabaseSync(":memory:");
    db.exec(REFLECTION_SCHEMA);
    const insertReflection = db.prepare(
      `INSERT INTO chump_reflections (id, episode_id, task_id, intended_goal, observed_outcome,
         outcome_class, error_pattern, hypothesis, surprisal_at_reflect, confidence_at_reflect,
         created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const insertTarget = db.prepare(
      `INSERT INTO chump_improvement_targets (id, reflection_id, directive, priority, scope,
         actioned_as, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
    const n = (v: unknown) => (v === null || v === undefined ? null : Number(v));
    const s = (v: unknown) => (v === null || v === undefined ? null : String(v));
    db.exec("BEGIN");
    for (const r of reflections) {
      insertReflection.run(
        Number(r.id),
        n(r.episode_id),
        n(r.task_id),
        String(r.intended_goal),
        String(r.observed_outcome),
        String(r.outcome_class),
        s(r.error_pattern),
        String(r.hypothesis),
        n(r.surprisal_at_reflect),
        n(r.confidence_at_reflect),
        String(r.created_at),
      );
    }
    for (const t of targets) {
      insertTarget.run(
        Number(t.id),
        Number(t.reflection_id),
        String(t.directive),
        String(t.priority),
        s(t.scope),
        s(t.actioned_as),
        String(t.created_at),
      );
    }
    db.exec("COMMIT");
    return db;
  });
}

/**
 * The fleet's reflections from the ledger at `url`, read once (connect,
 * copy, disconnect): an open in-memory DB for the readers of
 * store/query.ts, named after the ledger (without its password).
 *
 * @example
 * ```ts ignore
 * const fleet = await readFleetReflections("postgres://chump@db:5432/chump");
 * if (fleet.ok) queryReflections(fleet.value, { limit: 20 });
 * ```
 */
export async function readFleetReflections(
  url: string,
): Promise<Result<{ db: DatabaseSync; name: string }>> {
  const opened = await openPg(url);
  if (!opened.ok) return opened;
  try {
    const db = await fleetReflections(opened.value);
    if (!db.ok) return db;
    return { ok: true, value: { db: db.value, name: `the shared ledger ${opened.value.name}` } };
  } finally {
    await opened.value.close();
  }
}

/** The fleet's reflections kept fresh for a long-running reader (`serve --ledger`). */
export interface FleetReflectionsCache {
  /** The newest copy, re-read when older than the refresh period (the last good one on a failure). */
  get(): Promise<Result<{ db: DatabaseSync; name: string }>>;
  close(): Promise<void>;
}

/**
 * Keep a copy of the fleet's reflections from the ledger at `url`, re-read
 * at most every `refreshMs` over one connection. A replaced copy is closed
 * one refresh later, so a reader still holding it finishes first.
 *
 * @example
 * ```ts ignore
 * const cache = fleetReflectionsCache("postgres://chump@db:5432/chump", 5000);
 * const copy = await cache.get();
 * ```
 */
export function fleetReflectionsCache(url: string, refreshMs: number): FleetReflectionsCache {
  let pg: PgLedger | undefined;
  let current: { db: DatabaseSync; name: string } | undefined;
  let previous: DatabaseSync | undefined;
  let readAt = 0;
  let pending: Promise<Result<{ db: DatabaseSync; name: string }>> | undefined;
  const refresh = async (): Promise<Result<{ db: DatabaseSync; name: string }>> => {
    if (pg === undefined) {
      const opened = await openPg(url);
      if (!opened.ok) return current ? { ok: true, value: current } : opened;
      pg = opened.value;
    }
    const db = await fleetReflections(pg);
    if (!db.ok) return current ? { ok: true, value: current } : db;
    previous?.close();
    previous = current?.db;
    current = { db: db.value, name: `the shared ledger ${pg.name}` };
    readAt = Date.now();
    return { ok: true, value: current };
  };
  return {
    get() {
      if (current && Date.now() - readAt < refreshMs) {
        return Promise.resolve({ ok: true, value: current });
      }
      pending ??= refresh().finally(() => (pending = undefined));
      return pending;
    },
    async close() {
      await pending;
      previous?.close();
      current?.db.close();
      await pg?.close();
    },
  };
}
