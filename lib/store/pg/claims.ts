/**
 * The shared claim table of several orchestrators: a lease of a gap lives in
 * PostgreSQL, and claiming one is one INSERT that a unique partial index on
 * the live lease of a gap lets at most one host win (`ON CONFLICT DO
 * NOTHING`), whatever the timing.
 *
 * Liveness across hosts: each run heartbeats its row every tick; a live
 * lease whose run has not heartbeat for the lease TTL is marked `suspect`
 * (still held: never re-dispatched automatically). With a take-over delay, a
 * lease suspect for that long may be claimed by another host: the old row
 * becomes `taken_over` and the new one gets the next generation, in one
 * transaction. That is the fence: the old owner's heartbeat (which re-owns
 * its leases only while they are live) and its reflection (written only in
 * the transaction that ends a live lease, pg/reflections.ts) both find its
 * lease gone, so it ends its agent and writes nothing. `--fleet-max` caps
 * the live leases of the whole fleet, counted under an advisory lock.
 *
 * @module
 */
import type { GapBackoff } from "../backoff.ts";
import { heldBackShared, unparkShared } from "./backoff.ts";
import type { Result } from "../../util/result.ts";
import type { TransactionSql } from "postgres";
import { LIVE_LIST, openPg, type PgLedger } from "./connect.ts";

export { PG_SCHEMA_VERSION, redact } from "./connect.ts";

/** How this host claims. */
export interface ClaimOptions {
  /** A live lease whose run has not heartbeat for this long is `suspect` (default 5 min). */
  leaseTtlMs?: number;
  /** Another host may take over a lease suspect for this long (default: never). */
  takeOverAfterMs?: number;
  /** At most this many live leases in the whole fleet (default: no cap). */
  fleetMax?: number;
}

/** The default lease TTL: 5 minutes. */
const DEFAULT_LEASE_TTL_MS = 5 * 60_000;

/** What a claim came to. */
export type Claimed =
  | {
    won: true;
    id: number;
    generation: number;
    /** The suspect lease this claim took over (its host and generation). */
    tookOver?: TakenOver;
  }
  | { won: false; why: "held" | "fleet-full" };

/** The suspect lease a claim took over. */
export interface TakenOver {
  /** The host that held it. */
  host: string;
  generation: number;
  /** When that host claimed it (ms since the epoch, the server's clock). */
  startedMs: number;
}

/** A lease of this run that is no longer its own (taken over, or ended by someone else). */
export interface LostLease {
  id: number;
  gapId: string;
  state: string;
  /** The host that took it over, when one did. */
  takenBy: string | null;
}

/** A suspect lease of the fleet: its owner's run stopped heartbeating. */
export interface SuspectLease {
  id: number;
  gapId: string;
  host: string;
  /** How long it has been suspect. */
  suspectMs: number;
}

/** What a heartbeat learned. */
export interface Beat {
  /** Leases this run held that another host took over (or that ended elsewhere). */
  lost: LostLease[];
  /** Every suspect lease of the fleet now. */
  suspect: SuspectLease[];
  /** Outcomes of this host still waiting in its spool for the ledger (a fleet's beat). */
  spooled?: number;
}

/** The claim table of one database, for one host and run. */
export interface Claims {
  readonly pg: PgLedger;
  /** Claim `gapId` for this run (taking over a suspect lease when the options allow it). */
  claim(gapId: string): Promise<Result<Claimed>>;
  /** End lease `id` without a reflection (it was never dispatched), only while it is live. */
  end(id: number, outcome: string): Promise<Result<void>>;
  /**
   * Gap ids no host may take now: those with a live lease (but suspect ones
   * this host may take over), and those that shipped (done for the whole
   * fleet, whatever a host's copy of the backlog says).
   */
  liveGapIds(): Promise<Result<Set<string>>>;
  /** Dollars the other runs of the fleet recorded in the last 24 hours (ended leases' costs). */
  spentByOthers(): Promise<Result<number>>;
  /** Gaps the fleet holds back now: parked, or backing off after failures in a row. */
  heldBack(): Promise<Result<GapBackoff[]>>;
  /** Forget a gap's failures for the whole fleet (`unpark --ledger`): the row it had, if any. */
  unpark(gapId: string): Promise<Result<GapBackoff | undefined>>;
  /**
   * Record that this run is alive; re-own `held` (this run's leases: after an
   * adoption, or a pause that made them suspect) while they are live, and
   * say which are lost; mark the leases of silent runs suspect.
   * `ended`: the run is over (its row says so).
   */
  heartbeat(held?: readonly number[], ended?: boolean): Promise<Result<Beat>>;
  close(): Promise<void>;
}

/**
 * Connect to `url` (creating the schema if missing) as `hostId`'s run `runId`.
 *
 * @example
 * ```ts ignore
 * const claims = await openClaims("postgres://chump@127.0.0.1:5432/chump", "host-a", "run-1");
 * ```
 */
export async function openClaims(
  url: string,
  hostId: string,
  runId: string,
  options: ClaimOptions = {},
): Promise<Result<Claims>> {
  const opened = await openPg(url);
  if (!opened.ok) return opened;
  const pg = opened.value;
  const registered = await pg.attempt("register this run", async () => {
    await pg.sql`INSERT INTO chump_pg_runs (run_id, host_id) VALUES (${runId}, ${hostId})
                 ON CONFLICT (run_id) DO UPDATE SET heartbeat_at = now(), ended_at = NULL`;
  });
  if (!registered.ok) {
    await pg.close();
    return registered;
  }
  return { ok: true, value: claimsOn(pg, hostId, runId, options) };
}

/** The claims of `hostId`'s run `runId` on an open ledger. */
function claimsOn(
  pg: PgLedger,
  hostId: string,
  runId: string,
  options: ClaimOptions = {},
): Claims {
  return new PgClaims(pg, hostId, runId, options);
}

/** The claims of one run, on one database. */
class PgClaims implements Claims {
  readonly pg: PgLedger;
  readonly #host: string;
  readonly #run: string;
  readonly #fleetMax?: number;
  /** A live lease whose run has not heartbeat for this long (seconds) is suspect. */
  readonly #ttlS: number;
  /** Another host may take over a lease suspect this long (seconds); null: never. */
  readonly #takeOverS: number | null;

  constructor(pg: PgLedger, hostId: string, runId: string, options: ClaimOptions) {
    this.pg = pg;
    this.#host = hostId;
    this.#run = runId;
    this.#fleetMax = options.fleetMax;
    this.#ttlS = (options.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS) / 1000;
    this.#takeOverS = options.takeOverAfterMs === undefined ? null : options.takeOverAfterMs / 1000;
  }

  claim(gapId: string): Promise<Result<Claimed>> {
    return this.pg.attempt("claim a gap", () =>
      this.pg.sql.begin(async (tx): Promise<Claimed> => {
        if (this.#fleetMax !== undefined) {
          await tx`SELECT pg_advisory_xact_lock(7233020)`;
          const [row] = await tx.unsafe(
            `SELECT count(*)::int AS n FROM chump_pg_leases WHERE state IN (${LIVE_LIST})`,
          );
          if (row.n >= this.#fleetMax) return { won: false, why: "fleet-full" };
        }
        const tookOver = await this.#takeOver(tx, gapId);
        return await this.#insert(tx, gapId, tookOver);
      }));
  }

  /** Take over the gap's lease when it has been suspect long enough (and the options allow it). */
  async #takeOver(
    tx: TransactionSql,
    gapId: string,
  ): Promise<TakenOver | undefined> {
    if (this.#takeOverS === null) return undefined;
    const [old] = await tx`UPDATE chump_pg_leases
        SET state = 'taken_over', taken_by = ${this.#host}, updated_at = now()
        WHERE gap_id = ${gapId} AND state = 'suspect'
          AND suspect_at < now() - make_interval(secs => ${this.#takeOverS})
        RETURNING host_id, generation, (extract(epoch FROM started_at) * 1000)::bigint AS ms`;
    if (!old) return undefined;
    return {
      host: String(old.host_id),
      generation: Number(old.generation),
      startedMs: Number(old.ms),
    };
  }

  /** The claim itself: one INSERT that the unique index on a gap's live lease lets one host win. */
  async #insert(
    tx: TransactionSql,
    gapId: string,
    tookOver: TakenOver | undefined,
  ): Promise<Claimed> {
    // Not a gap that shipped (on any host): the INSERT's own check, in the same statement.
    const rows = await tx.unsafe(
      `INSERT INTO chump_pg_leases (gap_id, host_id, run_id, state, generation)
       SELECT $1, $2, $3, 'starting', $4
       WHERE NOT EXISTS (SELECT 1 FROM chump_pg_leases WHERE gap_id = $1 AND outcome = 'shipped')
         AND NOT EXISTS (SELECT 1 FROM chump_pg_gap_backoff
                         WHERE gap_id = $1 AND (parked OR retry_at > now()))
       ON CONFLICT (gap_id) WHERE state IN (${LIVE_LIST}) DO NOTHING
       RETURNING id, generation`,
      [gapId, this.#host, this.#run, (tookOver?.generation ?? 0) + 1],
    );
    if (rows.length === 1) {
      const [row] = rows;
      const won = { won: true as const, id: Number(row.id), generation: Number(row.generation) };
      return tookOver ? { ...won, tookOver } : won;
    }
    // Held by this very run: a claim whose commit went through while its answer was
    // lost (the connection dropped), retried. It is ours.
    const [own] = await tx.unsafe(
      `SELECT id, generation FROM chump_pg_leases
       WHERE gap_id = $1 AND run_id = $2 AND state IN (${LIVE_LIST})`,
      [gapId, this.#run],
    );
    if (own === undefined) return { won: false, why: "held" };
    return { won: true, id: Number(own.id), generation: Number(own.generation) };
  }

  end(id: number, outcome: string): Promise<Result<void>> {
    return this.pg.attempt("end a lease", async () => {
      await this.pg.sql.unsafe(
        `UPDATE chump_pg_leases SET state = 'ended', outcome = $1, updated_at = now()
         WHERE id = $2 AND state IN (${LIVE_LIST})`,
        [outcome, id],
      );
    });
  }

  spentByOthers(): Promise<Result<number>> {
    return this.pg.attempt("read what the fleet spent", async () => {
      const [row] = await this.pg.sql`SELECT coalesce(sum(cost_usd), 0) AS usd FROM chump_pg_leases
        WHERE cost_usd IS NOT NULL AND updated_at > now() - interval '24 hours'
          AND run_id <> ${this.#run}`;
      return Number(row?.usd ?? 0);
    });
  }

  heldBack(): Promise<Result<GapBackoff[]>> {
    return heldBackShared(this.pg);
  }

  unpark(gapId: string): Promise<Result<GapBackoff | undefined>> {
    return unparkShared(this.pg, gapId);
  }

  liveGapIds(): Promise<Result<Set<string>>> {
    return this.pg.attempt("read the leases", async () => {
      const rows = await this.pg.sql.unsafe(
        `SELECT DISTINCT gap_id FROM chump_pg_leases
         WHERE (state IN (${LIVE_LIST})
                AND NOT (state = 'suspect' AND $1::float8 IS NOT NULL
                         AND suspect_at < now() - make_interval(secs => $1::float8)))
            OR outcome = 'shipped'`,
        [this.#takeOverS],
      );
      return new Set(rows.map((r) => String(r.gap_id)));
    });
  }

  heartbeat(held: readonly number[] = [], ended = false): Promise<Result<Beat>> {
    return this.pg.attempt("heartbeat", async (): Promise<Beat> => {
      const { sql } = this.pg;
      await sql`INSERT INTO chump_pg_runs (run_id, host_id) VALUES (${this.#run}, ${this.#host})
                ON CONFLICT (run_id) DO UPDATE SET heartbeat_at = now(),
                  ended_at = ${ended ? sql`now()` : null}`;
      const lost = await this.#reown(held);
      await sql`UPDATE chump_pg_leases AS l
                SET state = 'suspect', suspect_at = now(), updated_at = now()
                FROM chump_pg_runs AS r
                WHERE l.run_id = r.run_id AND l.state IN ('starting', 'running', 'detached')
                  AND r.heartbeat_at < now() - make_interval(secs => ${this.#ttlS})`;
      const suspect = await sql`
        SELECT id, gap_id, host_id,
               (extract(epoch FROM now() - suspect_at) * 1000)::bigint AS ms
        FROM chump_pg_leases WHERE state = 'suspect' ORDER BY id`;
      return {
        lost,
        suspect: suspect.map((r) => ({
          id: Number(r.id),
          gapId: String(r.gap_id),
          host: String(r.host_id),
          suspectMs: Number(r.ms),
        })),
      };
    });
  }

  /** Re-own `held`; those no longer this run's (taken over, or ended elsewhere) come back. */
  async #reown(held: readonly number[]): Promise<LostLease[]> {
    const ids = [...held];
    if (ids.length === 0) return [];
    const { sql } = this.pg;
    const kept = await sql.unsafe(
      `UPDATE chump_pg_leases
       SET run_id = $1, state = 'running', suspect_at = NULL, updated_at = now()
       WHERE id = ANY($2::bigint[]) AND state IN (${LIVE_LIST})
       RETURNING id`,
      [this.#run, ids],
    );
    const mine = new Set(kept.map((r) => Number(r.id)));
    const gone = ids.filter((id) => !mine.has(id));
    if (gone.length === 0) return [];
    const rows = await sql`SELECT id, gap_id, state, taken_by FROM chump_pg_leases
                           WHERE id = ANY(${gone}::bigint[])`;
    return rows.map((r) => ({
      id: Number(r.id),
      gapId: String(r.gap_id),
      state: String(r.state),
      takenBy: r.taken_by === null ? null : String(r.taken_by),
    }));
  }

  close(): Promise<void> {
    return this.pg.close();
  }
}

/** One lease of the fleet, as `status --ledger` shows it. */
export interface FleetLease {
  id: number;
  gapId: string;
  host: string;
  state: string;
  outcome: string | null;
  generation: number;
  /** The host that took it over, when one did. */
  takenBy: string | null;
  startedAt: string;
  /** Seconds from its claim to its end (or to now, while live). */
  elapsedS: number;
  /** Seconds since its run's last heartbeat, while the lease is live (null once it ended). */
  heartbeatAgeS: number | null;
}

/**
 * The newest `limit` leases of the fleet, newest first (one connection, closed after).
 *
 * @example
 * ```ts ignore
 * const leases = await listFleetLeases("postgres://chump@db:5432/chump", 20);
 * ```
 */
export async function listFleetLeases(url: string, limit: number): Promise<Result<FleetLease[]>> {
  const opened = await openPg(url);
  if (!opened.ok) return opened;
  const pg = opened.value;
  try {
    return await pg.attempt("read the leases", async () => {
      const rows = await pg.sql`
        SELECT l.id, l.gap_id, l.host_id, l.state, l.outcome, l.generation, l.taken_by,
               l.started_at,
               extract(epoch FROM (CASE WHEN l.state IN ('ended', 'taken_over') THEN l.updated_at
                                        ELSE now() END) - l.started_at)::bigint AS elapsed,
               CASE WHEN l.state IN ('ended', 'taken_over') THEN NULL
                    ELSE extract(epoch FROM now() - r.heartbeat_at)::bigint END AS beat
        FROM chump_pg_leases l LEFT JOIN chump_pg_runs r ON r.run_id = l.run_id
        ORDER BY l.id DESC LIMIT ${limit}`;
      return rows.map((r) => ({
        id: Number(r.id),
        gapId: String(r.gap_id),
        host: String(r.host_id),
        state: String(r.state),
        outcome: r.outcome === null ? null : String(r.outcome),
        generation: Number(r.generation),
        takenBy: r.taken_by === null ? null : String(r.taken_by),
        startedAt: new Date(r.started_at).toISOString(),
        elapsedS: Number(r.elapsed),
        heartbeatAgeS: r.beat === null ? null : Number(r.beat),
      }));
    });
  } finally {
    await pg.close();
  }
}
