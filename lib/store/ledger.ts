/**
 * The durable lease ledger: one row per dispatch in the reflection DB's own
 * table `chump_dispatch_leases` (next to the contract's two tables, which it
 * never touches), written before the agent starts and at every transition.
 *
 * It answers three questions: which gaps are held by a live dispatch (so a
 * second orchestrator never takes them), which dispatches lost their
 * orchestrator (so `reap` can end them), and what ran recently (`status`).
 * Liveness is decided by pid AND kernel start time, never by process name,
 * so a reused pid is never mistaken for ours.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { dirname } from "node:path";
import { type ProcessTable, processTable, selfStartTime } from "../process/table.ts";
import { errorMessage, fail, ok, type Result } from "../util/result.ts";
import { sleep } from "../util/sleep.ts";

/** Where a dispatch is in its life. */
export type LeaseState = "starting" | "running" | "detached" | "ended";

/** One row of the ledger. */
export interface Lease {
  id: number;
  gapId: string;
  repoRoot: string;
  branch: string;
  worktree: string;
  baseCommit: string;
  effort: string;
  backend: string;
  pid: number | null;
  pidStart: string | null;
  orchestratorPid: number;
  orchestratorStart: string | null;
  host: string;
  state: LeaseState;
  outcome: string | null;
  notes: string | null;
  /** ms since the epoch. */
  startedMs: number;
  /** ms since the epoch. */
  updatedMs: number;
}

/** What is known before the agent starts. */
export type NewLease = Pick<
  Lease,
  "gapId" | "repoRoot" | "branch" | "worktree" | "baseCommit" | "effort" | "backend"
>;

/** The lease table and its index; created next to the reflection tables. */
export const LEASE_SCHEMA = `CREATE TABLE IF NOT EXISTS chump_dispatch_leases (
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
  updated_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS chump_dispatch_leases_state ON chump_dispatch_leases(state);`;

/**
 * Ledger writes block the event loop while SQLite waits on a lock; they are
 * rare (three per dispatch), so a few seconds of waiting beats failing.
 */
const LEDGER_BUSY_MS = 3000;

/** How long ending a lease keeps retrying a locked DB (each try blocks up to LEDGER_BUSY_MS). */
const END_RETRY_MS = 30_000;

/** Who this orchestrator is: pid, start time (epoch seconds), host. */
export interface Identity {
  pid: number;
  start: string | null;
  host: string;
}

/**
 * This process's identity.
 *
 * @example
 * ```ts
 * selfIdentity().pid === Deno.pid; // true
 * ```
 */
export function selfIdentity(): Identity {
  let host = "";
  try {
    host = Deno.hostname();
  } catch {
    // Without --allow-sys=hostname leases are still checked by pid + start time.
  }
  return { pid: Deno.pid, start: selfStartTime(), host };
}

/** The lease ledger of one DB. */
export interface Ledger {
  readonly path: string;
  /**
   * Record a dispatch before its agent starts. Atomic: fails when a live
   * lease already holds the gap (another orchestrator took it first).
   */
  begin(lease: NewLease): Promise<Result<number>>;
  /** The agent started: its pid and kernel start time. */
  running(id: number, pid: number, pidStart: string | undefined, detached: boolean): Result<void>;
  /**
   * The dispatch ended (outcome may be null for a failed dispatch); a lease
   * that ended already is left as it is. Retried
   * for a while when the DB is locked, so a busy DB does not leave a lease
   * that a later reap would take for an orphan.
   */
  end(id: number, outcome: string | null, notes: string): Promise<Result<void>>;
  /** Gap ids held by live dispatches (any orchestrator). */
  liveGapIds(): Promise<Set<string>>;
  /** Leases in `starting`/`running` whose orchestrator is gone (same host only). */
  orphans(): Promise<Lease[]>;
  /**
   * Take over a lease whose orchestrator is gone (compare-and-swap on its
   * orchestrator identity): true when this process now owns it, false when
   * another reaper was first or the lease ended meanwhile.
   */
  adopt(lease: Lease): Result<boolean>;
  /** Newest first; `activeOnly` keeps leases not yet ended. */
  list(limit: number, activeOnly?: boolean): Lease[];
  close(): void;
}

/**
 * Is the orchestrator of `lease` still running? Leases of other hosts are
 * assumed alive: their pids mean nothing here.
 *
 * @example
 * ```ts
 * orchestratorAlive(lease, selfIdentity(), await processTable({ fresh: true }));
 * ```
 */
export function orchestratorAlive(lease: Lease, self: Identity, table: ProcessTable): boolean {
  if (lease.host !== "" && self.host !== "" && lease.host !== self.host) return true;
  return table.alive(lease.orchestratorPid, lease.orchestratorStart);
}

/**
 * Is the agent of `lease` still running (same pid, same start time)?
 *
 * @example
 * ```ts
 * agentAlive(lease, await processTable({ fresh: true }));
 * ```
 */
export function agentAlive(lease: Lease, table: ProcessTable): boolean {
  if (lease.pid === null) return false;
  return table.alive(lease.pid, lease.pidStart);
}

/**
 * Is this lease holding its gap? Active leases hold while their orchestrator
 * or their agent lives; detached ones (dispatched without --watch) while the agent lives.
 *
 * @example
 * ```ts
 * leaseIsLive(lease, selfIdentity(), await processTable({ fresh: true }));
 * ```
 */
export function leaseIsLive(lease: Lease, self: Identity, table: ProcessTable): boolean {
  switch (lease.state) {
    case "starting":
    case "running":
      return orchestratorAlive(lease, self, table) || agentAlive(lease, table);
    case "detached":
      return agentAlive(lease, table);
    default:
      return false;
  }
}

/**
 * Open (creating if needed) the ledger in the DB at `dbPath`.
 *
 * @example
 * ```ts
 * const ledger = openLedger("sessions/chump_memory.db");
 * ```
 */
export function openLedger(dbPath: string, self: Identity = selfIdentity()): Result<Ledger> {
  let db: DatabaseSync;
  try {
    Deno.mkdirSync(dirname(dbPath), { recursive: true });
    db = new DatabaseSync(dbPath);
    db.exec(`PRAGMA busy_timeout = ${LEDGER_BUSY_MS}`);
    db.exec("PRAGMA journal_mode = WAL");
    // WAL + NORMAL survives a crash of this process (what leases are for);
    // only power loss can drop the last commits, and it takes the agents too.
    db.exec("PRAGMA synchronous = NORMAL");
    db.exec(LEASE_SCHEMA);
  } catch (e) {
    return fail(`cannot open the lease ledger in ${dbPath}: ${firstLine(e)}`);
  }
  return ok(ledgerOn(db, dbPath, self));
}

/**
 * Read the ledger without creating anything; undefined when the DB or the table does not exist.
 *
 * @example
 * ```ts
 * const ledger = openLedgerIfExists("sessions/chump_memory.db");
 * ```
 */
export function openLedgerIfExists(
  dbPath: string,
  self: Identity = selfIdentity(),
): Result<Ledger | undefined> {
  try {
    Deno.statSync(dbPath);
  } catch {
    return ok(undefined);
  }
  try {
    const db = new DatabaseSync(dbPath, { readOnly: true });
    db.exec(`PRAGMA busy_timeout = ${LEDGER_BUSY_MS}`);
    const table = db.prepare(
      "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'chump_dispatch_leases'",
    ).get();
    if (!table) {
      db.close();
      return ok(undefined);
    }
    return ok(ledgerOn(db, dbPath, self));
  } catch (e) {
    return fail(`cannot read the lease ledger in ${dbPath}: ${firstLine(e)}`);
  }
}

function ledgerOn(db: DatabaseSync, path: string, self: Identity): Ledger {
  const now = () => Date.now();
  const select = "SELECT * FROM chump_dispatch_leases";
  const active = `${select} WHERE state IN ('starting', 'running', 'detached')`;
  let closed = false;

  const rows = (sql: string, ...params: (string | number)[]): Lease[] =>
    db.prepare(sql).all(...params).map((r) => toLease(r as Record<string, unknown>));

  const attempt = <T>(what: string, fn: () => T): Result<T> => {
    try {
      return ok(fn());
    } catch (e) {
      return fail(`lease ledger (${path}): cannot ${what}: ${firstLine(e)}`);
    }
  };

  return {
    path,
    async begin(lease) {
      // A process listing only when another lease names this gap (the usual
      // dispatch has none: no `ps` per gap). A lease that appears between
      // this look and the transaction was just begun by a live orchestrator.
      const others = attempt(
        "read the leases",
        () => rows(`${active} AND gap_id = ?`, lease.gapId),
      );
      const table = others.ok && others.value.length === 0
        ? undefined
        : await processTable({ fresh: true });
      let held: string | undefined;
      const id = attempt("record the dispatch", () => {
        db.exec("BEGIN IMMEDIATE");
        try {
          const holder = rows(`${active} AND gap_id = ?`, lease.gapId)
            .find((l) => table === undefined || leaseIsLive(l, self, table));
          if (holder) {
            db.exec("ROLLBACK");
            held = `gap ${lease.gapId} is held by a live dispatch (lease ${holder.id}, ` +
              `orchestrator pid ${holder.orchestratorPid}` +
              `${holder.pid ? `, agent pid ${holder.pid}` : ""})`;
            return 0;
          }
          const t = now();
          const r = db.prepare(
            `INSERT INTO chump_dispatch_leases (gap_id, repo_root, branch, worktree, base_commit,
               effort, backend, orchestrator_pid, orchestrator_start, host, state, started_ms, updated_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'starting', ?, ?)`,
          ).run(
            lease.gapId,
            lease.repoRoot,
            lease.branch,
            lease.worktree,
            lease.baseCommit,
            lease.effort,
            lease.backend,
            self.pid,
            self.start,
            self.host,
            t,
            t,
          );
          db.exec("COMMIT");
          return Number(r.lastInsertRowid);
        } catch (e) {
          if (db.isTransaction) db.exec("ROLLBACK");
          throw e;
        }
      });
      return held !== undefined ? fail(held) : id;
    },
    running(id, pid, pidStart, detached) {
      return attempt("record the agent's pid", () => {
        db.prepare(
          "UPDATE chump_dispatch_leases SET pid = ?, pid_start = ?, state = ?, updated_ms = ? WHERE id = ?",
        ).run(pid, pidStart ?? null, detached ? "detached" : "running", now(), id);
      });
    },
    async end(id, outcome, notes) {
      const until = now() + END_RETRY_MS;
      for (;;) {
        const r = attempt("end the lease", () => {
          db.prepare(
            `UPDATE chump_dispatch_leases SET state = 'ended', outcome = ?, notes = ?, updated_ms = ?
              WHERE id = ? AND state != 'ended'`,
          ).run(outcome, notes, now(), id);
        });
        if (r.ok || !/locked|busy/i.test(r.error) || now() >= until) return r;
        await sleep(250);
      }
    },
    async liveGapIds() {
      const leases = rows(active);
      const ids = new Set<string>();
      if (leases.length === 0) return ids;
      const table = await processTable({ fresh: true });
      for (const l of leases) if (leaseIsLive(l, self, table)) ids.add(l.gapId);
      return ids;
    },
    async orphans() {
      const leases = rows(`${select} WHERE state IN ('starting', 'running') ORDER BY id`);
      if (leases.length === 0) return [];
      const table = await processTable({ fresh: true });
      return leases.filter((l) => !table.unknown && !orchestratorAlive(l, self, table));
    },
    adopt(lease) {
      return attempt("take over the lease", () => {
        const r = db.prepare(
          `UPDATE chump_dispatch_leases
              SET orchestrator_pid = ?, orchestrator_start = ?, host = ?, updated_ms = ?
            WHERE id = ? AND state IN ('starting', 'running')
              AND orchestrator_pid = ? AND orchestrator_start IS ?`,
        ).run(
          self.pid,
          self.start,
          self.host,
          now(),
          lease.id,
          lease.orchestratorPid,
          lease.orchestratorStart,
        );
        return Number(r.changes) === 1;
      });
    },
    list(limit, activeOnly = false) {
      const where = activeOnly ? " WHERE state != 'ended'" : "";
      return rows(`${select}${where} ORDER BY id DESC LIMIT ?`, limit);
    },
    close() {
      if (closed) return;
      closed = true;
      try {
        db.close();
      } catch {
        // already closed
      }
    },
  };
}

function toLease(r: Record<string, unknown>): Lease {
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  const str = (v: unknown) => (v === null || v === undefined ? null : String(v));
  return {
    id: Number(r.id),
    gapId: String(r.gap_id),
    repoRoot: String(r.repo_root),
    branch: String(r.branch),
    worktree: String(r.worktree),
    baseCommit: String(r.base_commit ?? ""),
    effort: String(r.effort ?? ""),
    backend: String(r.backend ?? ""),
    pid: num(r.pid),
    pidStart: str(r.pid_start),
    orchestratorPid: Number(r.orchestrator_pid),
    orchestratorStart: str(r.orchestrator_start),
    host: String(r.host ?? ""),
    state: String(r.state) as LeaseState,
    outcome: str(r.outcome),
    notes: str(r.notes),
    startedMs: Number(r.started_ms),
    updatedMs: Number(r.updated_ms),
  };
}

function firstLine(e: unknown): string {
  return errorMessage(e).split("\n")[0];
}
