/**
 * The durable lease ledger: one row per dispatch in the reflection DB's own
 * table `chump_dispatch_leases` (next to the contract's two tables, which it
 * never touches), written before the agent starts and at every transition.
 *
 * It answers three questions: which gaps are held by a live dispatch (so a
 * second orchestrator never takes them), which dispatches lost their
 * orchestrator (so `reap` can end them), and what ran recently (`status`).
 * Whose processes are alive it asks a {@linkcode Liveness}
 * (process/liveness.ts): the data layer never lists processes itself. Each
 * take-over (adoption, reap) is a compare-and-set on the lease's generation,
 * and an outcome is recorded only by the generation that owns the lease.
 *
 * The ledger shares the DB's connection and lock policy with the reflection
 * writer (store/connection.ts): a lease write waits out a locked DB for up
 * to {@linkcode LEASE_LOCK_WAIT_MS} with the event loop turning. A lease
 * ends with its outcome's reflection, in the same transaction (see
 * store/outcome.ts); {@linkcode Ledger.end} is for dispatches that never had one.
 *
 * @module
 */
import type { Liveness } from "../process/liveness.ts";
import { fail, ok, type Result } from "../util/result.ts";
import {
  type Connection,
  LEASE_LOCK_WAIT_MS,
  openStore,
  type Store,
  transaction,
} from "./connection.ts";
import {
  type Begun,
  type Lease,
  type Ledger,
  type NewLease,
  type RunBeat,
  type Started,
  toLease,
} from "./leases.ts";
import {
  ACTIVE,
  INSERT_LEASE,
  NOTE_COST,
  RECORD_IDENTITY,
  RECORD_PID,
  RESPAWNED,
  RUN_BEAT,
  SELECT,
  SPENT_BY_OTHERS,
  TAKE_OVER,
} from "./ledger_sql.ts";
import { costColumns, endLease } from "./outcome.ts";
import { clearBackoff, type GapBackoff, readBackoffs } from "./backoff.ts";
import type { CostFacts } from "./notes.ts";
import { readOnlyStore } from "./reader.ts";

export type { Begun, Lease, LeaseState, Ledger, NewLease, RunBeat, Started } from "./leases.ts";

/**
 * Open (creating if needed) the ledger in the DB at `dbPath`. Fails only
 * when the DB is unusable (not when it is merely locked: the first write
 * waits for that).
 *
 * @param liveness whose leases are alive, and who this orchestrator is
 * @param store the DB's connection to share (default: its own, closed with the ledger)
 * @example
 * ```ts ignore
 * const ledger = openLedger("sessions/chump_memory.db", processLiveness());
 * ```
 */
export function openLedger(
  dbPath: string,
  liveness: Liveness,
  store?: Store,
): Result<Ledger> {
  const own = store ?? openStore(dbPath);
  const opened = own.check();
  if (!opened.ok) {
    if (store === undefined) own.close();
    return fail(`cannot open the lease ledger in ${dbPath}: ${opened.error}`);
  }
  return ok(new SqliteLedger(own, liveness, store === undefined));
}

/**
 * Read the ledger without creating anything (read-only, also in a directory
 * this process cannot write); undefined when the DB or the table does not exist.
 *
 * @example
 * ```ts ignore
 * const ledger = openLedgerIfExists("sessions/chump_memory.db", processLiveness());
 * ```
 */
export function openLedgerIfExists(
  dbPath: string,
  liveness: Liveness,
): Result<Ledger | undefined> {
  const opened = readOnlyStore(dbPath, { table: "chump_dispatch_leases" });
  if (!opened.ok) return fail(`cannot read the lease ledger in ${dbPath}: ${opened.error}`);
  return ok(opened.value && new SqliteLedger(opened.value, liveness, true));
}

/** How long recording an agent's exact identity waits out a locked DB before it gives up. */
const IDENTIFY_LOCK_WAIT_MS = 500;

/** A heartbeat is worth little next to a tick: it waits at most this long for a locked DB. */
const HEARTBEAT_LOCK_WAIT_MS = 200;

/** The ledger on a connection to its DB. */
class SqliteLedger implements Ledger {
  readonly #store: Store;
  readonly #liveness: Liveness;
  /** Close the connection with the ledger (it opened it). */
  readonly #owns: boolean;

  constructor(store: Store, liveness: Liveness, owns: boolean) {
    this.#store = store;
    this.#liveness = liveness;
    this.#owns = owns;
  }

  get path(): string {
    return this.#store.path;
  }

  async begin(lease: NewLease): Promise<Result<Begun>> {
    // A process listing only when another lease names this gap (the usual
    // dispatch has none: no `ps` per gap). A lease that appears between
    // this look and the transaction was just begun by a live orchestrator.
    const others = await this.#attempt(
      "read the leases",
      (c) => rows(c, `${ACTIVE} AND gap_id = ?`, lease.gapId),
    );
    const look = others.ok && others.value.length === 0 ? undefined : await this.#liveness.look();
    const self = this.#liveness.self;
    return await this.#attempt("record the dispatch", (c): Begun =>
      transaction(c, () => {
        const holder = rows(c, `${ACTIVE} AND gap_id = ?`, lease.gapId)
          .find((l) => look === undefined || look.holds(l));
        if (holder) return { begun: false, holder };
        const t = Date.now();
        const r = c.statement(INSERT_LEASE).run(
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
          lease.agentFormat ?? null,
          lease.model ?? null,
        );
        return { begun: true, leaseId: Number(r.lastInsertRowid) };
      }));
  }

  async running(id: number, started: Started): Promise<Result<void>> {
    return await this.#attempt("record the agent's pid", (c) => {
      c.statement(RECORD_PID).run(
        started.pid,
        started.pidStart ?? null,
        started.detached ? "detached" : "running",
        started.logBase ?? null,
        Date.now(),
        id,
      );
    });
  }

  async identify(id: number, pid: number, identity: string): Promise<Result<void>> {
    // A refinement, not a record: it never holds the connection long on a locked DB
    // (an outcome's reflection may be waiting behind it); skipped, the lease keeps the
    // spawn-time identity, which still tells a reused pid apart.
    return await this.#attempt("record the agent's identity", (c) => {
      c.statement(RECORD_IDENTITY).run(identity, Date.now(), id, pid);
    }, IDENTIFY_LOCK_WAIT_MS);
  }

  async end(id: number, outcome: string | null, notes: string): Promise<Result<void>> {
    return await this.#attempt("end the lease", (c) => {
      endLease(c, id, outcome, notes);
    });
  }

  async liveGapIds(): Promise<Result<Set<string>>> {
    const leases = await this.#attempt("read the leases", (c) => rows(c, ACTIVE));
    if (!leases.ok) return leases;
    const ids = new Set<string>();
    if (leases.value.length === 0) return ok(ids);
    const look = await this.#liveness.look();
    for (const l of leases.value) if (look.holds(l)) ids.add(l.gapId);
    return ok(ids);
  }

  async orphans(options: { detached?: boolean } = {}): Promise<Result<Lease[]>> {
    const states = options.detached ? "'starting', 'running', 'detached'" : "'starting', 'running'";
    const leases = await this.#attempt(
      "read the leases",
      (c) => rows(c, `${SELECT} WHERE state IN (${states}) ORDER BY id`),
    );
    if (!leases.ok || leases.value.length === 0) return leases;
    const look = await this.#liveness.look();
    return ok(leases.value.filter((l) => look.orphaned(l)));
  }

  async adopt(lease: Lease): Promise<Result<number | undefined>> {
    const self = this.#liveness.self;
    return await this.#attempt("take over the lease", (c) => {
      const r = c.statement(TAKE_OVER).run(
        self.pid,
        self.start,
        self.host,
        Date.now(),
        lease.id,
        lease.generation,
      );
      return Number(r.changes) === 1 ? lease.generation + 1 : undefined;
    });
  }

  async list(limit: number): Promise<Result<Lease[]>> {
    return await this.#attempt(
      "read the leases",
      (c) => rows(c, `${SELECT} ORDER BY id DESC LIMIT ?`, limit),
    );
  }

  async generation(id: number): Promise<Result<number | undefined>> {
    return await this.#attempt("read the lease", (c) => {
      const row = c.statement("SELECT generation FROM chump_dispatch_leases WHERE id = ?").get(id);
      return row === undefined ? undefined : Number((row as { generation: unknown }).generation);
    });
  }

  async heartbeat(b: RunBeat): Promise<void> {
    const self = this.#liveness.self;
    await this.#attempt("record the run", (c) =>
      c.statement(RUN_BEAT).run(
        b.runId,
        self.host,
        self.pid,
        b.startedMs,
        Date.now(),
        b.endedMs ?? null,
        b.ticks,
        b.providerErrors,
        b.writeFailures,
        b.liveAgents,
        b.spentUsd ?? null,
        b.budgets?.runUsd ?? null,
        b.budgets?.dayUsd ?? null,
        b.budgets?.gapUsd ?? null,
      ), HEARTBEAT_LOCK_WAIT_MS);
  }

  async respawned(
    id: number,
    started: { pid: number; pidStart?: string; logBase?: string; fixRound: number },
  ): Promise<Result<void>> {
    return await this.#attempt("record the fix round's agent", (c) => {
      c.statement(RESPAWNED).run(
        started.pid,
        started.pidStart ?? null,
        started.logBase ?? null,
        started.fixRound,
        Date.now(),
        id,
      );
    });
  }

  async notePr(id: number, pr: string): Promise<void> {
    await this.#attempt(
      "record the PR",
      (c) => c.statement("UPDATE chump_dispatch_leases SET pr = ? WHERE id = ?").run(pr, id),
      HEARTBEAT_LOCK_WAIT_MS,
    );
  }

  async spentByOthers(sinceMs: number): Promise<Result<number>> {
    const self = this.#liveness.self;
    return await this.#attempt("read what was spent", (c) => {
      const row = c.statement(SPENT_BY_OTHERS).get(sinceMs, self.pid, self.start ?? "", self.host);
      return Number(row?.usd ?? 0);
    });
  }

  async heldBack(): Promise<Result<GapBackoff[]>> {
    const now = Date.now();
    return await this.#attempt(
      "read the held-back gaps",
      (c) => readBackoffs(c).filter((b) => b.parked || b.retryAtMs > now),
    );
  }

  async unpark(gapId: string): Promise<Result<GapBackoff | undefined>> {
    return await this.#attempt("unpark the gap", (c) => clearBackoff(c, gapId));
  }

  async noteCost(id: number, cost: CostFacts): Promise<void> {
    await this.#attempt(
      "record the cost",
      (c) => c.statement(NOTE_COST).run(...costColumns(cost), id),
      HEARTBEAT_LOCK_WAIT_MS,
    );
  }

  close(): void {
    if (this.#owns) this.#store.close();
  }

  /** One operation under the lock policy, as a Result naming what failed. */
  async #attempt<T>(
    what: string,
    op: (c: Connection) => T,
    lockWaitMs = LEASE_LOCK_WAIT_MS,
  ): Promise<Result<T>> {
    const r = await this.#store.run(op, { lockWaitMs });
    return r.ok
      ? ok(r.value)
      : fail(`lease ledger (${this.#store.path}): cannot ${what}: ${r.reason}`);
  }
}

/** The leases `sql` selects. */
function rows(c: Connection, sql: string, ...params: (string | number)[]): Lease[] {
  return c.statement(sql).all(...params).map((r) => toLease(r as Record<string, unknown>));
}

/**
 * The lease `target` names in the DB at `db` (digits: a lease id; else the
 * gap's newest), or why there is none.
 *
 * @example
 * ```ts
 * import { processLiveness } from "../process/liveness.ts";
 *
 * const dir = Deno.makeTempDirSync();
 * const found = await findLease(`${dir}/none.db`, "A-1", processLiveness());
 * // found.ok === false: "no dispatches recorded in .../none.db"
 * ```
 */
export async function findLease(
  db: string,
  target: string,
  liveness: Liveness,
): Promise<Result<Lease>> {
  const opened = openLedgerIfExists(db, liveness);
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
