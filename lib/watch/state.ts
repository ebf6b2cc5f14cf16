/**
 * What one run is made of: its settings ({@linkcode RunConfig}), its side
 * effects ({@linkcode RunDeps}, injected), and the state its steps share
 * ({@linkcode RunState}: the flights in the air, the queue of what is picked
 * and waiting, the counters, the result), in small named parts so that each
 * step takes the parts it uses.
 *
 * @module
 */
import type { Learned } from "../learn/learner.ts";
import type { AgentTemplate, BackendSpec } from "../dispatch/agent.ts";
import type { Cascade } from "../learn/cascade.ts";
import type { Gap } from "../backlog/gap.ts";
import type { Deadlines } from "../util/duration.ts";
import type { Dispatch } from "../dispatch/dispatch.ts";
import type { Workspace } from "../git/workspace.ts";
import type { Ledger } from "../store/ledger.ts";
import type { PickOrder } from "../backlog/picker.ts";
import type { Spawner } from "../process/spawn.ts";
import type { TerminateResult } from "../process/signal.ts";
import type { Interrupt } from "../process/interrupt.ts";
import type { Processes } from "../process/table.ts";
import type { PrProvider, PrState } from "./providers/types.ts";
import type { ReflectionWriter } from "../store/writer.ts";
import type { Result } from "../util/result.ts";
import type { Beat, Claimed } from "../store/pg/claims.ts";
import type { RunResult } from "./summary.ts";
import type { AdoptedDispatch } from "./adopt.ts";
import type { Events } from "./events.ts";
import type { LiveView } from "./live.ts";
import type { RunObserver } from "./observer.ts";
import type { Waiting } from "./schedule.ts";
import type { ArmAttempt } from "./routing.ts";
import type { FleetGate } from "./fleet_gate.ts";
import type { Budgets } from "../cost/budget.ts";
import type { BackoffPolicy, GapBackoff } from "../store/backoff.ts";
import type { DispatchCost, PriceTable } from "../cost/prices.ts";

/** How the run behaves (from the CLI). */
export interface RunConfig {
  repoRoot: string;
  baseRef: string;
  /** The base ref's commit: every branch of this run starts here. */
  startCommit: string;
  maxParallel: number;
  maxTotal?: number;
  order: PickOrder;
  watch: boolean;
  tickMs: number;
  deadlines: Deadlines;
  maxWatchMs?: number;
  exitGraceTicks: number;
  killGraceMs: number;
  /** `--idle-timeout` (undefined: off). */
  idleTimeoutMs?: number;
  agent: AgentTemplate;
  /** Bound on one provider poll; default {@linkcode pollTimeoutFor}(tickMs). */
  pollTimeoutMs?: number;
  /**
   * A routing table's cascades (learn/cascade.ts): each gap's attempts go to
   * the arms it gives, instead of `agent`; `backends` are the table's own
   * command templates.
   */
  routing?: { cascade: Cascade; backends: Readonly<Record<string, BackendSpec>> };
  /** A gap's soft deadline (adaptive deadlines); default: `deadlines` by its effort. */
  deadlineOf?: (gap: Gap, arm?: string) => number;
  /** Where a gap's deadline adapted: when its idle or visibly failing agent ends early. */
  earlyEndOf?: (gap: Gap, arm?: string) => number | undefined;
  /** What the run learns as it goes: each outcome counts for the next dispatch. */
  learned?: Pick<Learned, "record" | "refresh">;
  /**
   * The lessons block of a gap's prompt (learn/lessons.ts). Its line count
   * goes into the notes (`lessons=<n>`) when lessons were given, when a
   * routing table is in use, or with `lessonsOff` (`--no-lessons`: 0).
   */
  lessonsFor?: (gap: Gap) => string[];
  lessonsOff?: boolean;
  /**
   * With a shared ledger: how long the run's end waits for it to take the
   * outcomes it could not (default 0: it says what is left at once).
   */
  ledgerExitWaitMs?: number;
  /** What tokens cost (`--prices` over the built-in table); default the built-in table. */
  prices?: PriceTable;
  /** `--budget-gap`, `--budget-run`, `--budget-day`. */
  budgets?: Budgets;
  /** `--retry-after` and `--park-after` (default store/backoff.ts's). */
  backoff?: BackoffPolicy;
  /** `--fix-rounds`: how often a red PR goes back to its agent (0 or absent: never). */
  fixRounds?: number;
  /** `--auto-merge`: request auto-merge once a PR's checks pass and no review blocks it. */
  autoMerge?: boolean;
  /** `--pause-when-base-red`: dispatch nothing new while the base branch's checks fail. */
  pauseWhenBaseRed?: boolean;
}

/** Everything with side effects, injected. */
export interface RunDeps {
  workspace: Workspace;
  spawner: Spawner;
  provider: PrProvider;
  writer: ReflectionWriter;
  ledger?: Ledger;
  terminate: (
    pgid: number,
    options: { graceMs: number; skipGrace?: AbortSignal },
  ) => Promise<TerminateResult>;
  out: (line: string) => void;
  err: (line: string) => void;
  interrupt?: Interrupt;
  /** The clock (default `Date.now`). */
  now?: () => number;
  /** The run's process table (process/table.ts), shared by its kills and identities. */
  processes: Processes;
  /** Where agents' log and status files go (see DispatchDeps.logsDir). */
  logsDir?: string;
  /** Cap of each log file while it is followed (see DispatchDeps.logCapBytes). */
  logCapBytes?: number;
  /** Dispatches taken over from a gone orchestrator (watch/adopt.ts), watched from the start. */
  adopted?: readonly AdoptedDispatch[];
  /** Where transitions are reported as JSON events (`--events`); none by default. */
  events?: Events;
  /** The live terminal view (a TTY without --no-live), redrawn at every tick and event. */
  live?: LiveView;
  /** This run's id: with a ledger, a watching run's counters are recorded under it each tick. */
  runId?: string;
  /** Claims shared with other hosts' orchestrators (`--ledger`, store/pg/claims.ts). */
  shared?: SharedClaims;
  /**
   * What was spent in the last 24 hours by everyone but this run (this
   * host's ledger, or the fleet's), for `--budget-day`: read at the start and
   * at every heartbeat.
   */
  daySpend?: () => Promise<Result<number>>;
}

/**
 * The claims of a ledger shared by several hosts (store/pg/claims.ts): a gap
 * runs on one host only; each outcome ends its shared lease through the
 * writer (store/pg/fleet.ts).
 */
export interface SharedClaims {
  /** This host's lease of the gap, or why not (another host holds it, the fleet is full). */
  claim(gapId: string): Promise<Result<Claimed>>;
  /** End a claim whose gap was not dispatched after all. */
  end(id: number, outcome: string): Promise<Result<void>>;
  liveGapIds(): Promise<Result<Set<string>>>;
  /** Alive now; re-own `held` and learn which were taken over, and which leases are suspect. */
  heartbeat(held?: readonly number[], ended?: boolean): Promise<Result<Beat>>;
  /** Outcomes of this host waiting in its spool for the ledger (none when it keeps no spool). */
  pending?(): Promise<number>;
  /** Where those wait. */
  readonly spoolPath?: string;
  /** Dollars the fleet's other runs recorded in the last 24 hours (`--budget-day`). */
  spentByOthers?(): Promise<Result<number>>;
  /** Gaps the fleet holds back (parked, or backing off after failures). */
  heldBack?(): Promise<Result<GapBackoff[]>>;
}

/** A dispatch being watched. */
export interface Flight {
  dispatch: Dispatch;
  /** Its gap as the backlog has it (absent for an adopted dispatch: its lease has id and effort). */
  gap?: Gap;
  deadlineMs: number;
  /** Where its deadline adapted: an idle or visibly failing agent ends after this (1.2 x p90). */
  earlyEndMs?: number;
  maxWatchMs: number;
  exitSeenAtTick?: number;
  warned: boolean;
  /** The IDLE warning was emitted. */
  idleWarned?: boolean;
  /** Set once a terminal decision was taken (its process may still be ending). */
  ending: boolean;
  /** The PR state of the last poll that worked. */
  lastPr?: PrState;
  /** Its agent exited and the last poll failed: it waits for the provider, holding no slot. */
  awaitingPr?: boolean;
  /** The arm and attempt number, when a routing table chose them. */
  arm?: ArmAttempt;
  /** Lessons lines its prompt was given, when the notes say so. */
  lessons?: number;
  /** The host that took its shared lease over (`--ledger`): it ends without a reflection. */
  lostTo?: string;
  /** Its cost, priced at its session's version (watch/spend.ts). */
  priced?: { version: number; value: DispatchCost };
  /** The session version and time of its last `usage` report. */
  usageSaid?: { version: number; at: number };
  /** The fix round its agent is in (watch/fix.ts), and why its PR went back to it. */
  fixRound?: number;
  fixReasons?: string[];
  /** A fix round is starting: no decision about it meanwhile. */
  fixing?: boolean;
  /** What its earlier rounds cost (a fix round's agent is a new session). */
  priorCost?: DispatchCost;
  /** Auto-merge was requested for its PR (or a request is under way), and how often. */
  autoMergeAsked?: boolean;
  autoMergeTries?: number;
  /** Review texts a fix round was given already (a review still standing is not sent again). */
  sentComments?: Set<string>;
}

/** What was picked, what waits, what shipped. */
export interface Queue {
  readonly gaps: readonly Gap[];
  /** Each gap id's slug (worktree and branch name). */
  readonly slugs: Map<string, string>;
  /** Picked once per run, whatever happened next. */
  readonly dispatched: Set<string>;
  readonly shipped: Set<string>;
  /** Gaps waiting for their next attempt. */
  readonly waiting: Map<string, Waiting>;
  /** Attempts made (the `--max-total` budget). */
  attempts: number;
  /** The live view's count of pickable gaps, and the picked/shipped sizes it was counted at. */
  queued?: { key: string; count: number };
  /** The local ledger's leases could not be read at the last pick (said once). */
  leasesUnread?: boolean;
  /** Held-back gaps already said in this run. */
  heldSaid?: Set<string>;
}

/** The run's counters, recorded in its `chump_runs` row. */
export interface Counters {
  readonly startedMs: number;
  tickNo: number;
  /** Provider polls that failed in a row (0 after one that worked). */
  failedPolls: number;
  /** Provider polls that failed, in all. */
  providerErrors: number;
  /** Reflections that did not reach the DB (spooled or printed). */
  writeFailures: number;
}

/** Everything one run keeps between its steps. */
export interface RunState {
  readonly config: RunConfig;
  readonly deps: RunDeps;
  readonly now: () => number;
  readonly report: RunObserver;
  /** Dispatches in the air, by gap id. */
  readonly flights: Map<string, Flight>;
  /** Outcomes being settled in the background. */
  readonly endings: Set<Promise<void>>;
  readonly queue: Queue;
  readonly counters: Counters;
  /** The shared ledger's gate (`--ledger`). */
  readonly fleet?: FleetGate;
  readonly result: RunResult;
  /** Spending: the last 24 hours' spend of everyone else, and the budget line once said. */
  readonly money: { dayBefore?: number; reached?: string };
  /** `--pause-when-base-red`: the base branch is red (nothing new is dispatched), as said. */
  paused?: string | undefined;
}

/** A poll is never cut shorter than this: a healthy `gh api graphql` can take seconds. */
export const MIN_POLL_TIMEOUT_MS = 10_000;

/** Nor allowed longer than this, however long the tick: a stuck poll must not hold a tick. */
export const MAX_POLL_TIMEOUT_MS = 60_000;

/**
 * How long one provider poll may take at this tick: the tick itself, within
 * [{@linkcode MIN_POLL_TIMEOUT_MS}, {@linkcode MAX_POLL_TIMEOUT_MS}], so a
 * hung provider at most doubles a tick's period.
 *
 * @example
 * ```ts
 * pollTimeoutFor(30_000); // 30000
 * pollTimeoutFor(100); // 10000
 * pollTimeoutFor(600_000); // 60000
 * ```
 */
export function pollTimeoutFor(tickMs: number): number {
  return Math.min(MAX_POLL_TIMEOUT_MS, Math.max(MIN_POLL_TIMEOUT_MS, tickMs));
}

/** The run was asked to stop. */
export function stopped(run: RunState): boolean {
  return run.deps.interrupt?.stop.aborted ?? false;
}

/** Stopped by a hangup: leave the agents for adoption instead of ending them. */
export function leaving(run: RunState): boolean {
  return run.deps.interrupt?.leave?.aborted ?? false;
}

/**
 * Agent slots in use: every flight but those whose agent exited and that
 * only wait for the PR provider to answer.
 */
export function slotsInUse(run: RunState): number {
  let n = 0;
  for (const f of run.flights.values()) if (!f.awaitingPr) n++;
  return n;
}

/** The flights whose outcome is not decided yet (and not starting a fix round). */
export function watched(run: RunState): Flight[] {
  return [...run.flights.values()].filter((f) => !f.ending && !f.fixing);
}

/** The flights whose outcome is not decided yet, those starting a fix round included (a stop ends them all). */
export function unsettled(run: RunState): Flight[] {
  return [...run.flights.values()].filter((f) => !f.ending);
}

/** A PR as the live view and the ledger show it: `#12 open`; "" for none. */
export function prLabel(pr: PrState | undefined): string {
  if (pr === undefined || pr.state === "none") return "";
  return `${pr.number === undefined ? "" : `#${pr.number} `}${pr.state}`;
}
