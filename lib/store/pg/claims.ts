/**
 * The shared claim table of several orchestrators (issue 13's first step):
 * a lease of a gap lives in PostgreSQL, and claiming one is one INSERT that a
 * unique partial index on the live lease of a gap lets at most one host win
 * (`ON CONFLICT DO NOTHING`), whatever the timing; each run heartbeats its
 * row. The schema is created idempotently under an advisory lock and
 * versioned (`chump_pg_schema`). The driver is `postgres` (porsager), which
 * works under Deno's npm support and `deno compile`.
 *
 * @module
 */
import postgres from "postgres";
import { errorMessage, fail, ok, type Result } from "../../util/result.ts";
import { oneLine } from "../../util/text.ts";

/** The schema version this code creates and reads. */
export const PG_SCHEMA_VERSION = 1;

/** Lease states in which a gap is held. */
export const LIVE_STATES: readonly string[] = ["starting", "running", "detached", "suspect"];

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS chump_pg_schema (version integer NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS chump_pg_leases (
     id bigserial PRIMARY KEY,
     gap_id text NOT NULL,
     host_id text NOT NULL,
     run_id text NOT NULL,
     generation integer NOT NULL DEFAULT 1,
     state text NOT NULL,
     outcome text,
     started_at timestamptz NOT NULL DEFAULT now(),
     updated_at timestamptz NOT NULL DEFAULT now()
   )`,
  `CREATE UNIQUE INDEX IF NOT EXISTS chump_pg_leases_live ON chump_pg_leases (gap_id)
     WHERE state IN ('starting', 'running', 'detached', 'suspect')`,
  `CREATE TABLE IF NOT EXISTS chump_pg_runs (
     run_id text PRIMARY KEY,
     host_id text NOT NULL,
     started_at timestamptz NOT NULL DEFAULT now(),
     heartbeat_at timestamptz NOT NULL DEFAULT now()
   )`,
];

/** The claim table of one database, for one host and run. */
export interface Claims {
  /** Claim `gapId` for this run: its lease id, or undefined when a live lease of another holds it. */
  claim(gapId: string): Promise<Result<number | undefined>>;
  /** End lease `id` with `outcome` (only while it is live). */
  end(id: number, outcome: string): Promise<Result<void>>;
  /**
   * Gap ids no host may take now: those with a live lease, and those that
   * shipped (done for the whole fleet, whatever a host's copy of the backlog says).
   */
  liveGapIds(): Promise<Result<Set<string>>>;
  /** Record that this run is alive now. */
  heartbeat(): Promise<Result<void>>;
  close(): Promise<void>;
}

/**
 * Connect to `url`, create the schema if missing (one host at a time), and
 * refuse a database whose schema is newer than this code.
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
): Promise<Result<Claims>> {
  const sql = postgres(url, { max: 4, onnotice: () => {}, connect_timeout: 10 });
  const failed = (what: string, e: unknown) =>
    fail(`PostgreSQL ledger (${redact(url)}): cannot ${what}: ${oneLine(errorMessage(e), 300)}`);
  try {
    await sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(7233019)`;
      for (const statement of SCHEMA) await tx.unsafe(statement);
      const [row] = await tx`SELECT max(version) AS v FROM chump_pg_schema`;
      const version = row.v === null ? null : Number(row.v);
      if (version === null) {
        await tx`INSERT INTO chump_pg_schema (version) VALUES (${PG_SCHEMA_VERSION})`;
      } else if (version > PG_SCHEMA_VERSION) {
        throw new Error(
          `its schema is version ${version}, newer than this program's ${PG_SCHEMA_VERSION}`,
        );
      }
      await tx`INSERT INTO chump_pg_runs (run_id, host_id) VALUES (${runId}, ${hostId})
               ON CONFLICT (run_id) DO UPDATE SET heartbeat_at = now()`;
    });
  } catch (e) {
    await sql.end({ timeout: 1 }).catch(() => {});
    return failed("open it", e);
  }
  const attempt = async <T>(what: string, op: () => Promise<T>): Promise<Result<T>> => {
    try {
      return ok(await op());
    } catch (e) {
      return failed(what, e);
    }
  };
  return ok({
    claim: (gapId) =>
      attempt("claim a gap", async () => {
        // Not a gap that shipped (on any host): the INSERT's own check, in the same statement.
        const rows = await sql`
          INSERT INTO chump_pg_leases (gap_id, host_id, run_id, state)
          SELECT ${gapId}, ${hostId}, ${runId}, 'starting'
          WHERE NOT EXISTS (SELECT 1 FROM chump_pg_leases WHERE gap_id = ${gapId} AND outcome = 'shipped')
          ON CONFLICT (gap_id) WHERE state IN ('starting', 'running', 'detached', 'suspect')
          DO NOTHING RETURNING id`;
        return rows.length === 1 ? Number(rows[0].id) : undefined;
      }),
    end: (id, outcome) =>
      attempt("end a lease", async () => {
        await sql`UPDATE chump_pg_leases SET state = 'ended', outcome = ${outcome}, updated_at = now()
                  WHERE id = ${id} AND state IN ('starting', 'running', 'detached', 'suspect')`;
      }),
    liveGapIds: () =>
      attempt("read the leases", async () => {
        const rows = await sql`SELECT DISTINCT gap_id FROM chump_pg_leases
                               WHERE state IN ('starting', 'running', 'detached', 'suspect')
                                  OR outcome = 'shipped'`;
        return new Set(rows.map((r) => String(r.gap_id)));
      }),
    heartbeat: () =>
      attempt("heartbeat", async () => {
        await sql`UPDATE chump_pg_runs SET heartbeat_at = now() WHERE run_id = ${runId}`;
      }),
    async close() {
      await sql.end({ timeout: 5 }).catch(() => {});
    },
  });
}

/**
 * A database URL without its password, for messages.
 *
 * @example
 * ```ts
 * redact("postgres://u:secret@h:5432/db"); // "postgres://u:***@h:5432/db"
 * ```
 */
export function redact(url: string): string {
  return url.replace(/^(\w+:\/\/[^:/@]+:)[^@]*@/, "$1***@");
}
