/**
 * A lease as the ledger keeps it (one row of `chump_dispatch_leases` per
 * dispatch, store/schema.ts), what is recorded at each step of a dispatch,
 * and one run's counters (`chump_runs`). Types and the row reader; the
 * ledger itself is store/ledger.ts.
 *
 * @module
 */

import type { CostFacts } from "./notes.ts";
import type { GapBackoff } from "./backoff.ts";
import type { Result } from "../util/result.ts";

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
  /** What its agent's stdout speaks (cost/session.ts); null: plain, or an older version's lease. */
  agentFormat: string | null;
  /** The model it was started with, when known. */
  model: string | null;
  /** What it has cost so far (final once it ended); null: no structured session. */
  cost: CostFacts | null;
  /** The fix round its agent is in (its PR went back to it); null: none. */
  fixRound: number | null;
}

/** What is known before the agent starts. */
export type NewLease =
  & Pick<
    Lease,
    "gapId" | "repoRoot" | "branch" | "worktree" | "baseCommit" | "effort" | "backend"
  >
  & Partial<Pick<Lease, "deadlineMs" | "maxWatchMs" | "sharedId" | "agentFormat" | "model">>;

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
  /** What the run has spent so far (finished and running dispatches), when any spoke a session. */
  spentUsd?: number;
  /** Its budgets, in USD. */
  budgets?: { runUsd?: number; dayUsd?: number; gapUsd?: number };
}

/**
 * A lease from its DB row.
 *
 * @example
 * ```ts ignore
 * const lease = toLease(statement.get(id));
 * ```
 */
export function toLease(r: Record<string, unknown>): Lease {
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
    agentFormat: str(r.agent_format),
    fixRound: num(r.fix_round),
    model: str(r.model),
    cost: r.tokens_in === null || r.tokens_in === undefined ? null : {
      usd: num(r.cost_usd) ?? undefined,
      tokensIn: Number(r.tokens_in),
      tokensOut: Number(r.tokens_out ?? 0),
      cacheRead: Number(r.tokens_cache_read ?? 0),
      cacheWrite: Number(r.tokens_cache_write ?? 0),
      turns: Number(r.turns ?? 0),
      session: str(r.session_id) ?? undefined,
    },
  };
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
  /** Gap ids held by live dispatches (any orchestrator). */
  liveGapIds(): Promise<Result<Set<string>>>;
  /**
   * Leases in `starting`/`running` (and, with `detached`, `detached`) whose
   * orchestrator is gone (same host only), oldest first.
   */
  orphans(options?: { detached?: boolean }): Promise<Result<Lease[]>>;
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
   * The generation of lease `id` now (undefined: no such lease): a watcher
   * whose generation is older was taken over (`stop`, `reap`) and records nothing.
   */
  generation(id: number): Promise<Result<number | undefined>>;
  /**
   * Record this run's counters now (an upsert of its `chump_runs` row). Best
   * effort: waits at most a moment for a locked DB and reports nothing.
   */
  heartbeat(beat: RunBeat): Promise<void>;
  /** A fix round started its agent again: its pid, identity, files and round (while the lease is live). */
  respawned(
    id: number,
    started: { pid: number; pidStart?: string; logBase?: string; fixRound: number },
  ): Promise<Result<void>>;
  /** The agent's PR as the last poll saw it (`#12 open`), for `status` and the dashboard. Best effort. */
  notePr(id: number, pr: string): Promise<void>;
  /** What the agent has cost so far, for `status`, the dashboard and the daily budget. Best effort. */
  noteCost(id: number, cost: CostFacts): Promise<void>;
  /**
   * Dollars spent by the leases of other orchestrators (this one's are its
   * run's own): those that ended since `sinceMs`, and those still live (what
   * they cost so far).
   */
  spentByOthers(sinceMs: number): Promise<Result<number>>;
  /** Gaps held back now: parked, or backing off after failures (store/backoff.ts). */
  heldBack(): Promise<Result<GapBackoff[]>>;
  /** Forget a gap's failures (`unpark`): the row it had, if any. */
  unpark(gapId: string): Promise<Result<GapBackoff | undefined>>;
  close(): void;
}
