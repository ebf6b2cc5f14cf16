/**
 * The PostgreSQL connection of the shared ledger (`--ledger postgres://...`):
 * connecting, the schema (created idempotently under an advisory lock, so
 * one host at a time; versioned in `chump_pg_schema`; a database of a newer
 * version is refused), and failures as one line without the password.
 *
 * Tables: `chump_pg_leases` (one row per claim of a gap by a host; a unique
 * partial index on the live lease of a gap lets one host hold it),
 * `chump_pg_runs` (one row per orchestrator run, heartbeat each tick), and
 * the contract's two reflection tables with the same columns as in SQLite,
 * for the whole fleet. The driver is `postgres` (porsager), which works under
 * Deno's npm support and `deno compile`.
 *
 * @module
 */
import process from "node:process";
import postgres from "postgres";
import { errorMessage, fail, ok, type Result } from "../../util/result.ts";
import { oneLine } from "../../util/text.ts";

/** The schema version this code creates and reads. */
export const PG_SCHEMA_VERSION = 3;

/** Lease states in which a gap is held (a unique index lets one lease of a gap be in them). */
export const LIVE_STATES: readonly string[] = ["starting", "running", "detached", "suspect"];

/** The SQL list of {@linkcode LIVE_STATES}, for statements and the index. */
export const LIVE_LIST = LIVE_STATES.map((s) => `'${s}'`).join(", ");

/** `created_at` as SQLite's `datetime('now')` writes it (UTC, `YYYY-MM-DD HH:MM:SS`). */
const NOW_TEXT = `to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')`;

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
  // Version 2: suspect leases, take-over (fencing by generation), the reflection a lease ended with.
  `ALTER TABLE chump_pg_leases ADD COLUMN IF NOT EXISTS suspect_at timestamptz`,
  `ALTER TABLE chump_pg_leases ADD COLUMN IF NOT EXISTS taken_by text`,
  `ALTER TABLE chump_pg_leases ADD COLUMN IF NOT EXISTS reflection_id bigint`,
  `CREATE UNIQUE INDEX IF NOT EXISTS chump_pg_leases_live ON chump_pg_leases (gap_id)
     WHERE state IN (${LIVE_LIST})`,
  `CREATE INDEX IF NOT EXISTS chump_pg_leases_run ON chump_pg_leases (run_id)`,
  // A claim's "shipped on any host?" check and the fleet's lease listing look gaps up by id.
  `CREATE INDEX IF NOT EXISTS chump_pg_leases_gap ON chump_pg_leases (gap_id)`,
  `CREATE TABLE IF NOT EXISTS chump_pg_runs (
     run_id text PRIMARY KEY,
     host_id text NOT NULL,
     started_at timestamptz NOT NULL DEFAULT now(),
     heartbeat_at timestamptz NOT NULL DEFAULT now()
   )`,
  `ALTER TABLE chump_pg_runs ADD COLUMN IF NOT EXISTS ended_at timestamptz`,
  // Version 3: what each dispatch cost (from its reflection's cost facts), for the daily budget.
  ...[
    "cost_usd double precision",
    "tokens_in bigint",
    "tokens_out bigint",
    "tokens_cache_read bigint",
    "tokens_cache_write bigint",
    "turns integer",
    "session_id text",
  ].map((c) => `ALTER TABLE chump_pg_leases ADD COLUMN IF NOT EXISTS ${c}`),
  // Version 3 too: gaps held back after failures in a row, for the whole fleet (store/backoff.ts).
  `CREATE TABLE IF NOT EXISTS chump_pg_gap_backoff (
     gap_id text PRIMARY KEY, failures integer NOT NULL, reason text NOT NULL DEFAULT '',
     retry_at timestamptz NOT NULL, parked boolean NOT NULL DEFAULT false,
     updated_at timestamptz NOT NULL DEFAULT now())`,
  // The contract's two tables, the same columns as in SQLite (store/reflection.ts).
  `CREATE TABLE IF NOT EXISTS chump_reflections (
     id bigserial PRIMARY KEY, episode_id bigint, task_id bigint,
     intended_goal text NOT NULL DEFAULT '', observed_outcome text NOT NULL DEFAULT '',
     outcome_class text NOT NULL DEFAULT 'failure', error_pattern text,
     hypothesis text NOT NULL DEFAULT '', surprisal_at_reflect double precision,
     confidence_at_reflect double precision, created_at text NOT NULL DEFAULT ${NOW_TEXT})`,
  `CREATE TABLE IF NOT EXISTS chump_improvement_targets (
     id bigserial PRIMARY KEY, reflection_id bigint NOT NULL,
     directive text NOT NULL, priority text NOT NULL DEFAULT 'medium', scope text,
     actioned_as text, created_at text NOT NULL DEFAULT ${NOW_TEXT})`,
];

/** A connection pool to the shared ledger. */
type Sql = postgres.Sql;

/** An open shared ledger: its pool and how to describe its failures. */
export interface PgLedger {
  /** The pool now (a pool that stopped answering is replaced: read it at each use). */
  readonly sql: Sql;
  /** The URL without its password, for messages. */
  name: string;
  /** Run `op`; a thrown error becomes one line: `PostgreSQL ledger (<url>): cannot <what>: <why>`. */
  attempt<T>(what: string, op: () => Promise<T>): Promise<Result<T>>;
  close(): Promise<void>;
}

/**
 * Connect to `url`, create or upgrade the schema (one host at a time), and
 * refuse a database whose schema is newer than this code. Fails in one line
 * without the password.
 *
 * @example
 * ```ts ignore
 * const pg = await openPg("postgres://chump@127.0.0.1:5432/chump");
 * ```
 */
export async function openPg(url: string): Promise<Result<PgLedger>> {
  quietTimerWarnings();
  const name = redact(url);
  const describe = (what: string, e: unknown) =>
    `PostgreSQL ledger (${name}): cannot ${what}: ${oneLine(errorMessage(e), 300)}`;
  let sql = pool(url);
  /** Replace a pool whose connection stopped answering: its sockets are dropped at once. */
  const renew = () => {
    const old = sql;
    sql = pool(url);
    old.end({ timeout: 0 }).catch(() => {});
  };
  const schema = await answered(createSchema(sql));
  if (!schema.ok) {
    await sql.end({ timeout: 0 }).catch(() => {});
    return fail(describe("open it", schema.error));
  }
  return ok({
    get sql() {
      return sql;
    },
    name,
    async attempt(what, op) {
      const done = await answered(op());
      if (done.ok) return done;
      if (done.error === NO_ANSWER) renew();
      return fail(describe(what, done.error));
    },
    async close() {
      await sql.end({ timeout: 5 }).catch(() => {});
    },
  });
}

/**
 * How long any one exchange with the ledger (the schema at connect, a
 * claim, a heartbeat, a read) may take. A server that stops answering (a
 * network that drops packets, a host that hangs) would otherwise hold it
 * until TCP gives up, many minutes later; then the pool is dropped and the
 * next exchange connects afresh (itself bounded by the connect timeout).
 */
export const PG_ANSWER_MS = 10_000;

/** The error of an exchange that got no answer within {@linkcode PG_ANSWER_MS}. */
const NO_ANSWER = new Error(`no answer within ${PG_ANSWER_MS / 1000}s`);

/** `work`'s value, or its error, or {@linkcode NO_ANSWER} once the bound passed. */
async function answered<T>(work: Promise<T>): Promise<Result<T, unknown>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(NO_ANSWER), PG_ANSWER_MS);
  });
  try {
    return ok(await Promise.race([work, late]));
  } catch (e) {
    work.catch(() => {}); // abandoned: its late failure is nobody's
    return fail(e);
  } finally {
    clearTimeout(timer);
  }
}

/** A connection pool to `url`, every step of a connect bounded. */
function pool(url: string): Sql {
  return postgres(url, {
    max: 4,
    onnotice: () => {},
    // TCP connect, TLS and the startup (authentication) together, in seconds.
    connect_timeout: 10,
    idle_timeout: 60,
    // Between reconnects after a failure, in seconds: at most 1 (the driver's default grows to
    // 20, which would hold every tick of a run that long while the server is away).
    backoff: (attempts: number) => Math.min(0.05 * 2 ** attempts, 1),
  });
}

/** Create or upgrade the schema (one host at a time, under an advisory lock). */
async function createSchema(sql: Sql): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(7233019)`;
    await tx.unsafe(SCHEMA[0]);
    const [row] = await tx`SELECT max(version) AS v FROM chump_pg_schema`;
    const version = row.v === null ? null : Number(row.v);
    if (version !== null && version > PG_SCHEMA_VERSION) {
      throw new Error(
        `its schema is version ${version}, newer than this program's ${PG_SCHEMA_VERSION}`,
      );
    }
    if (version === PG_SCHEMA_VERSION) return;
    for (const statement of SCHEMA.slice(1)) await tx.unsafe(statement);
    await tx`DELETE FROM chump_pg_schema`;
    await tx`INSERT INTO chump_pg_schema (version) VALUES (${PG_SCHEMA_VERSION})`;
  });
}

/**
 * The driver sets negative timers while it reconnects, and Node's compat
 * layer prints a two-line `TimeoutNegativeWarning` for each (the timer runs
 * at once, as meant): drop those; other process warnings still print, in one
 * line. Idempotent without a flag: the process's warning listeners are
 * replaced by this one each time.
 */
function quietTimerWarnings(): void {
  process.removeAllListeners("warning");
  process.on("warning", (w: Error) => {
    if (w.name !== "TimeoutNegativeWarning") console.error(`warning: ${oneLine(w.message)}`);
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
