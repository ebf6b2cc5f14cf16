/**
 * The DB's schema: the contract's two tables (store/reflection.ts, never
 * altered), and this program's own: the lease table and the runs table,
 * with the columns added since their first release (an older DB gets them
 * on open).
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import { REFLECTION_SCHEMA } from "./reflection.ts";
import { BACKOFF_SCHEMA } from "./backoff.ts";

/**
 * The lease table and its index, and the runs table (one row per watching
 * run, its counters kept by a heartbeat each tick, read by `serve`'s
 * /metrics): this program's own tables, next to the contract's two (which it
 * never alters).
 */
const LEASE_SCHEMA = `CREATE TABLE IF NOT EXISTS chump_dispatch_leases (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  gap_id TEXT NOT NULL,
  repo_root TEXT NOT NULL,
  branch TEXT NOT NULL,
  worktree TEXT NOT NULL,
  base_commit TEXT NOT NULL DEFAULT '',
  effort TEXT NOT NULL DEFAULT '',
  backend TEXT NOT NULL DEFAULT '',
  pid INTEGER,
  pid_start TEXT,
  orchestrator_pid INTEGER NOT NULL,
  orchestrator_start TEXT,
  host TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL,
  outcome TEXT,
  notes TEXT,
  started_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  generation INTEGER NOT NULL DEFAULT 0,
  deadline_ms INTEGER,
  max_watch_ms INTEGER,
  log_base TEXT,
  pr TEXT,
  shared_id INTEGER,
  agent_format TEXT,
  model TEXT,
  cost_usd REAL,
  tokens_in INTEGER,
  tokens_out INTEGER,
  tokens_cache_read INTEGER,
  tokens_cache_write INTEGER,
  turns INTEGER,
  session_id TEXT,
  fix_round INTEGER
);
CREATE INDEX IF NOT EXISTS chump_dispatch_leases_state ON chump_dispatch_leases(state);
CREATE TABLE IF NOT EXISTS chump_runs (
  run_id TEXT PRIMARY KEY,
  host TEXT NOT NULL DEFAULT '',
  pid INTEGER NOT NULL,
  started_ms INTEGER NOT NULL,
  heartbeat_ms INTEGER NOT NULL,
  ended_ms INTEGER,
  ticks INTEGER NOT NULL DEFAULT 0,
  provider_errors INTEGER NOT NULL DEFAULT 0,
  write_failures INTEGER NOT NULL DEFAULT 0,
  live_agents INTEGER NOT NULL DEFAULT 0
);`;

/**
 * Columns added to the lease table after its first release, with their
 * definitions: a DB made by an older version gets them on open (the old rows
 * read as generation 0, no recorded deadline, no log files).
 */
const LEASE_COLUMNS_ADDED: readonly [string, string][] = [
  ["generation", "INTEGER NOT NULL DEFAULT 0"],
  ["deadline_ms", "INTEGER"],
  ["max_watch_ms", "INTEGER"],
  ["log_base", "TEXT"],
  ["pr", "TEXT"],
  ["shared_id", "INTEGER"],
  // What the agent's stdout speaks and what it cost (cost/): kept while it runs, final at its end.
  ["agent_format", "TEXT"],
  ["model", "TEXT"],
  ["cost_usd", "REAL"],
  ["tokens_in", "INTEGER"],
  ["tokens_out", "INTEGER"],
  ["tokens_cache_read", "INTEGER"],
  ["tokens_cache_write", "INTEGER"],
  ["turns", "INTEGER"],
  ["session_id", "TEXT"],
  ["fix_round", "INTEGER"],
];

/**
 * Columns added to the runs table: what the run spent and its budgets
 * (`--budget-run`, `--budget-day`, `--budget-gap`), for the dashboard.
 */
const RUN_COLUMNS_ADDED: readonly [string, string][] = [
  ["spent_usd", "REAL"],
  ["budget_run_usd", "REAL"],
  ["budget_day_usd", "REAL"],
  ["budget_gap_usd", "REAL"],
];

/**
 * Add the columns of `table` an older DB lacks (idempotent). Under the write
 * lock, looked at again: another orchestrator opening the same DB at the same
 * moment may have added them while this one waited for the lock.
 */
function addColumns(
  handle: DatabaseSync,
  table: string,
  columns: readonly [string, string][],
): void {
  const missing = () => {
    const have = new Set(
      handle.prepare(`PRAGMA table_info(${table})`).all().map((r) => String(r.name)),
    );
    return columns.filter(([name]) => !have.has(name));
  };
  if (missing().length === 0) return; // the usual open: no write lock taken
  handle.exec("BEGIN IMMEDIATE"); // a locked DB throws here: the caller's lock policy waits
  try {
    for (const [name, definition] of missing()) {
      handle.exec(`ALTER TABLE ${table} ADD COLUMN ${name} ${definition}`);
    }
    handle.exec("COMMIT");
  } catch (e) {
    if (handle.isTransaction) handle.exec("ROLLBACK"); // SQLite may have rolled it back itself
    throw e;
  }
}

/**
 * Create what is missing (WAL mode, every table, the added columns) on a
 * freshly opened handle.
 *
 * @example
 * ```ts
 * import { DatabaseSync } from "node:sqlite";
 *
 * applySchema(new DatabaseSync(":memory:"));
 * ```
 */
export function applySchema(handle: DatabaseSync): void {
  handle.exec("PRAGMA journal_mode = WAL");
  handle.exec(REFLECTION_SCHEMA);
  handle.exec(LEASE_SCHEMA);
  handle.exec(BACKOFF_SCHEMA);
  addColumns(handle, "chump_dispatch_leases", LEASE_COLUMNS_ADDED);
  addColumns(handle, "chump_runs", RUN_COLUMNS_ADDED);
}
