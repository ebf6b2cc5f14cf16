/**
 * The durable lease ledger: one row per dispatch in the reflection DB's own
 * table `chump_dispatch_leases` (next to the contract's two tables, which it
 * never touches), written before the agent starts and at every transition.
 *
 * It answers three questions: which gaps are held by a live dispatch (so a
 * second orchestrator never takes them), which dispatches lost their
 * orchestrator (so `reap` can end them), and what ran recently (`status`).
 * Liveness is decided by pid AND recorded identity (see process/table.ts),
 * never by process name, so a reused pid is never mistaken for ours. Each
 * take-over (adoption, reap) is a compare-and-set on the lease's generation,
 * and an outcome is recorded only by the generation that owns the lease.
 *
 * The ledger shares the DB's one connection and lock policy with the
 * reflection writer (see db.ts): a lease write waits out a locked DB for up
 * to {@linkcode LEASE_LOCK_WAIT_MS} with the event loop turning. A lease
 * ends with its outcome's reflection, in the same transaction (see
 * writer.ts); {@linkcode Ledger.end} is for dispatches that never had one.
 *
 * @module
 */
import { hostName } from "../util/env.ts";
import { identify, type ProcessTable, processTable, selfStartTime } from "../process/table.ts";
import { fail, ok, type Result } from "../util/result.ts";
import {
  type Connection,
  endLease,
  LEASE_LOCK_WAIT_MS,
  openStore,
  readOnlyStore,
  type Store,
  transaction,
} from "./db.ts";

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
  /** 0 when dispatched, +1 each time an orchestrator takes the lease over (adoption, reap). */
  generation: number;
  /** The soft deadline it was dispatched with; null in leases of older versions. */
  deadlineMs: number | null;
  /** How long it may be watched; null in leases of older versions. */
  maxWatchMs: number | null;
  /** Path prefix of its log and status files (see process/waiter.ts); null: none kept. */
  logBase: string | null;
  /** Its PR as last seen by its watcher (`#12 open`); null: none seen. */
  pr: string | null;
  /** Its lease in the shared ledger (`--ledger`, store/pg/); null: none. */
  sharedId: number | null;
}

/** What is known before the agent starts. */
export type NewLease =
  & Pick<
    Lease,
    "gapId" | "repoRoot" | "branch" | "worktree" | "baseCommit" | "effort" | "backend"
  >
  & Partial<Pick<Lease, "deadlineMs" | "maxWatchMs" | "sharedId">>;

/** What {@linkcode Ledger.running} records once the agent started. */
export interface Started {
  pid: number;
  /** Its identity (see process/table.ts). */
  pidStart?: string;
  /** Nobody watches it (dispatched without --watch). */
  detached: boolean;
  /** Where its log and status files are, when kept. */
  logBase?: string;
}

/** Who this orchestrator is: pid, start (an identity, see process/table.ts), host. */
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
  // Without --allow-sys=hostname (host ""), leases are still checked by pid + start time.
  return { pid: Deno.pid, start: selfStartTime(), host: hostName() };
}

/**
 * This process's identity with its exact start (see process/table.ts): what
 * a run records in its leases, so that the next run can tell for sure
 * whether it is still alive.
 *
 * @example
 * ```ts
 * (await exactSelfIdentity()).pid === Deno.pid; // true
 * ```
 */
export async function exactSelfIdentity(): Promise<Identity> {
  const self = selfIdentity();
  return { ...self, start: await identify(self.pid, self.start ?? selfStartTime()) };
}

/** What {@linkcode Ledger.begin} found: the gap is ours now, or a live lease holds it. */
export type Begun =
  | { begun: true; leaseId: number }
  | { begun: false; holder: Lease };

/** One run's counters, as its heartbeat records them. */
export interface RunBeat {
  runId: string;
  startedMs: number;
  /** Set on the last beat, when the run ends. */
  endedMs?: number;
  ticks: number;
  providerErrors: number;
  /** Reflections that could not go to the DB (spooled, or printed). */
  writeFailures: number;
  liveAgents: number;
}

/** The lease ledger of one DB. */
export interface Ledger {
  readonly path: string;
  /**
   * Record a dispatch before its agent starts. Atomic: when a live lease
   * already holds the gap (another orchestrator took it first) nothing is
   * written and the holder comes back, as a value: losing that race is not a
   * failure. A failure is a DB that could not take the row.
   */
  begin(lease: NewLease): Promise<Result<Begun>>;
  /** The agent started: its pid, identity and files (only while the lease is `starting`). */
  running(id: number, started: Started): Promise<Result<void>>;
  /**
   * Replace the agent's spawn-time identity with its exact one (see
   * process/table.ts), while the lease is live and still names that pid.
   */
  identify(id: number, pid: number, identity: string): Promise<Result<void>>;
  /**
   * End a dispatch that has no outcome to record (outcome null: it failed
   * before its agent ran); a lease that ended already is left as it is. An
   * outcome ends its lease with its reflection instead (writer.ts).
   */
  end(id: number, outcome: string | null, notes: string): Promise<Result<void>>;
  /** Gap ids held by live dispatches (any orchestrator); empty when the DB cannot be read. */
  liveGapIds(): Promise<Set<string>>;
  /**
   * Leases in `starting`/`running` (and, with `detached`, `detached`) whose
   * orchestrator is gone (same host only), oldest first.
   */
  orphans(options?: { detached?: boolean }): Promise<Lease[]>;
  /**
   * Take over a lease whose orchestrator is gone: a compare-and-set on its
   * generation, in one statement, so of two orchestrators racing for it
   * exactly one wins. The winner owns it (this process as orchestrator, the
   * generation + 1, a detached lease now `running`) and gets the new
   * generation; undefined when another was first or the lease ended meanwhile.
   */
  adopt(lease: Lease): Promise<Result<number | undefined>>;
  /** The newest `limit` leases, newest first. */
  list(limit: number): Promise<Result<Lease[]>>;
  /**
   * Record this run's counters now (an upsert of its `chump_runs` row). Best
   * effort: waits at most a moment for a locked DB and reports nothing.
   */
  heartbeat(beat: RunBeat): Promise<void>;
  /** The agent's PR as the last poll saw it (`#12 open`), for `status` and the dashboard. Best effort. */
  notePr(id: number, pr: string): Promise<void>;
  close(): void;
}

/**
 * Is the orchestrator of `lease` still running? Leases of other hosts are
 * assumed alive: their pids mean nothing here.
 *
 * @example
 * ```ts
 * import { processTable } from "../process/table.ts";
 *
 * declare const lease: Lease;
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
 * import { processTable } from "../process/table.ts";
 *
 * declare const lease: Lease;
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
 * import { processTable } from "../process/table.ts";
 *
 * declare const lease: Lease;
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
 * Open (creating if needed) the ledger in the DB at `dbPath`, on the DB's
 * shared connection. Fails only when the DB is unusable (not when it is
 * merely locked: the first write waits for that).
 *
 * @example
 * ```ts
 * const ledger = openLedger("sessions/chump_memory.db");
 * ```
 */
export function openLedger(dbPath: string, self: Identity = selfIdentity()): Result<Ledger> {
  const store = openStore(dbPath);
  const opened = store.check();
  if (!opened.ok) {
    store.close();
    return fail(`cannot open the lease ledger in ${dbPath}: ${opened.error}`);
  }
  return ok(ledgerOn(store, self));
}

/**
 * Read the ledger without creating anything (read-only, also in a directory
 * this process cannot write); undefined when the DB or the table does not exist.
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
  const opened = readOnlyStore(dbPath, { table: "chump_dispatch_leases" });
  if (!opened.ok) return fail(`cannot read the lease ledger in ${dbPath}: ${opened.error}`);
  return ok(opened.value && ledgerOn(opened.value, self));
}

/** How long recording an agent's exact identity waits out a locked DB before it gives up. */
const IDENTIFY_LOCK_WAIT_MS = 500;

const SELECT = "SELECT * FROM chump_dispatch_leases";
const ACTIVE = `${SELECT} WHERE state IN ('starting', 'running', 'detached')`;

function ledgerOn(store: Store, self: Identity): Ledger {
  const now = () => Date.now();
  const rows = (c: Connection, sql: string, ...params: (string | number)[]): Lease[] =>
    c.statement(sql).all(...params).map((r) => toLease(r as Record<string, unknown>));

  /** One operation under the lock policy, as a Result naming what failed. */
  const attempt = async <T>(
    what: string,
    op: (c: Connection) => T,
    lockWaitMs = LEASE_LOCK_WAIT_MS,
  ): Promise<Result<T>> => {
    const r = await store.run(op, { lockWaitMs });
    return r.ok ? ok(r.value) : fail(`lease ledger (${store.path}): cannot ${what}: ${r.reason}`);
  };

  return {
    path: store.path,
    async begin(lease) {
      // A process listing only when another lease names this gap (the usual
      // dispatch has none: no `ps` per gap). A lease that appears between
      // this look and the transaction was just begun by a live orchestrator.
      const others = await attempt(
        "read the leases",
        (c) => rows(c, `${ACTIVE} AND gap_id = ?`, lease.gapId),
      );
      const table = others.ok && others.value.length === 0
        ? undefined
        : await processTable({ fresh: true });
      return await attempt("record the dispatch", (c): Begun =>
        transaction(c, () => {
          const holder = rows(c, `${ACTIVE} AND gap_id = ?`, lease.gapId)
            .find((l) => table === undefined || leaseIsLive(l, self, table));
          if (holder) return { begun: false, holder };
          const t = now();
          const r = c.statement(
            `INSERT INTO chump_dispatch_leases (gap_id, repo_root, branch, worktree, base_commit,
               effort, backend, orchestrator_pid, orchestrator_start, host, state, started_ms,
               updated_ms, deadline_ms, max_watch_ms, shared_id)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'starting', ?, ?, ?, ?, ?)`,
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
            lease.deadlineMs ?? null,
            lease.maxWatchMs ?? null,
            lease.sharedId ?? null,
          );
          return { begun: true, leaseId: Number(r.lastInsertRowid) };
        }));
    },
    async running(id, started) {
      return await attempt("record the agent's pid", (c) => {
        c.statement(
          `UPDATE chump_dispatch_leases
              SET pid = ?, pid_start = ?, state = ?, log_base = ?, updated_ms = ?
            WHERE id = ? AND state = 'starting'`,
        ).run(
          started.pid,
          started.pidStart ?? null,
          started.detached ? "detached" : "running",
          started.logBase ?? null,
          now(),
          id,
        );
      });
    },
    async identify(id, pid, identity) {
      // A refinement, not a record: it never holds the connection long on a locked DB
      // (an outcome's reflection may be waiting behind it); skipped, the lease keeps the
      // spawn-time identity, which still tells a reused pid apart.
      return await attempt("record the agent's identity", (c) => {
        c.statement(
          `UPDATE chump_dispatch_leases SET pid_start = ?, updated_ms = ?
            WHERE id = ? AND pid = ? AND state IN ('running', 'detached')`,
        ).run(identity, now(), id, pid);
      }, IDENTIFY_LOCK_WAIT_MS);
    },
    async end(id, outcome, notes) {
      return await attempt("end the lease", (c) => {
        endLease(c, id, outcome, notes);
      });
    },
    async liveGapIds() {
      const leases = await attempt("read the leases", (c) => rows(c, ACTIVE));
      const ids = new Set<string>();
      // Unreadable: pick as if nothing were leased; begin() still refuses a held gap.
      if (!leases.ok || leases.value.length === 0) return ids;
      const table = await processTable({ fresh: true });
      for (const l of leases.value) if (leaseIsLive(l, self, table)) ids.add(l.gapId);
      return ids;
    },
    async orphans(options = {}) {
      const states = options.detached
        ? "'starting', 'running', 'detached'"
        : "'starting', 'running'";
      const leases = await attempt(
        "read the leases",
        (c) => rows(c, `${SELECT} WHERE state IN (${states}) ORDER BY id`),
      );
      if (!leases.ok || leases.value.length === 0) return [];
      const table = await processTable({ fresh: true });
      return leases.value.filter((l) => !table.unknown && !orchestratorAlive(l, self, table));
    },
    async adopt(lease) {
      return await attempt("take over the lease", (c) => {
        const r = c.statement(
          `UPDATE chump_dispatch_leases
              SET orchestrator_pid = ?, orchestrator_start = ?, host = ?, updated_ms = ?,
                  generation = generation + 1,
                  state = CASE state WHEN 'detached' THEN 'running' ELSE state END
            WHERE id = ? AND generation = ? AND state IN ('starting', 'running', 'detached')`,
        ).run(self.pid, self.start, self.host, now(), lease.id, lease.generation);
        return Number(r.changes) === 1 ? lease.generation + 1 : undefined;
      });
    },
    async list(limit) {
      return await attempt(
        "read the leases",
        (c) => rows(c, `${SELECT} ORDER BY id DESC LIMIT ?`, limit),
      );
    },
    async heartbeat(b) {
      await attempt("record the run", (c) =>
        c.statement(
          `INSERT INTO chump_runs (run_id, host, pid, started_ms, heartbeat_ms, ended_ms, ticks,
             provider_errors, write_failures, live_agents) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(run_id) DO UPDATE SET heartbeat_ms = excluded.heartbeat_ms,
             ended_ms = excluded.ended_ms, ticks = excluded.ticks,
             provider_errors = excluded.provider_errors,
             write_failures = excluded.write_failures, live_agents = excluded.live_agents`,
        ).run(
          b.runId,
          self.host,
          self.pid,
          b.startedMs,
          now(),
          b.endedMs ?? null,
          b.ticks,
          b.providerErrors,
          b.writeFailures,
          b.liveAgents,
        ), HEARTBEAT_LOCK_WAIT_MS);
    },
    async notePr(id, pr) {
      await attempt(
        "record the PR",
        (c) => c.statement("UPDATE chump_dispatch_leases SET pr = ? WHERE id = ?").run(pr, id),
        HEARTBEAT_LOCK_WAIT_MS,
      );
    },
    close() {
      store.close();
    },
  };
}

/** A heartbeat is worth little next to a tick: it waits at most this long for a locked DB. */
const HEARTBEAT_LOCK_WAIT_MS = 200;

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
    generation: num(r.generation) ?? 0,
    deadlineMs: num(r.deadline_ms),
    maxWatchMs: num(r.max_watch_ms),
    logBase: str(r.log_base),
    pr: str(r.pr),
    sharedId: num(r.shared_id),
  };
}

/**
 * The lease `target` names in the DB at `db` (digits: a lease id; else the
 * gap's newest), or why there is none.
 *
 * @example
 * ```ts
 * const dir = Deno.makeTempDirSync();
 * const found = await findLease(`${dir}/none.db`, "A-1");
 * // found.ok === false: "no dispatches recorded in .../none.db"
 * ```
 */
export async function findLease(db: string, target: string): Promise<Result<Lease>> {
  const opened = openLedgerIfExists(db);
  if (!opened.ok) return opened;
  if (!opened.value) return fail(`no dispatches recorded in ${db}`);
  try {
    const all = await opened.value.list(Number.MAX_SAFE_INTEGER);
    if (!all.ok) return all;
    const byId = /^\d+$/.test(target) ? all.value.find((l) => l.id === Number(target)) : undefined;
    const found = byId ?? all.value.find((l) => l.gapId === target);
    return found ? ok(found) : fail(`no dispatch of '${target}' (a gap id or a lease id) in ${db}`);
  } finally {
    opened.value.close();
  }
}
