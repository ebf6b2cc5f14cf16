/**
 * One execute-mode run: dispatch up to `--max-parallel` gaps, and with
 * `--watch` tick until every dispatch reached a terminal outcome, refilling
 * free slots from the backlog as agents finish (continuous, not in waves).
 *
 * The run is four named steps over one {@linkcode RunState}: `fill` (pick
 * and dispatch into free slots), `tick` (ONE provider poll for all watched
 * branches, then {@linkcode decideTick} per dispatch; the poll is bounded by
 * {@linkcode pollTimeoutFor} and abandoned the moment the run is stopped, so
 * a hung `gh` or `git fetch` delays a tick by at most that bound and never
 * delays an interrupt), `finish` (a terminal outcome ends the agent's process
 * group (leader or not), then settles:
 * worktree rule, reflection, lease end; in the background so one agent's
 * grace never delays the others) and `interruptAll`. A shipped gap counts as
 * done for its dependents; a gap is never dispatched twice in one run (no
 * runaway spend). An interrupt stops picking, records what was already known
 * about agents that had exited ({@linkcode decideAtStop}: `exit code 1` is
 * not "interrupted"), ends every other agent and writes a `killed`
 * reflection for each.
 *
 * @module
 */
import {
  type AgentCommand,
  agentCommandFor,
  type AgentTemplate,
  armAgent,
} from "../dispatch/agent.ts";
import type { Cascade } from "../learn/cascade.ts";
import { classify } from "../learn/classify.ts";
import { formatDuration } from "../util/duration.ts";
import type { Gap } from "../backlog/load.ts";
import { deadlineFor, type Deadlines } from "../util/duration.ts";
import { type Dispatch, dispatchGap } from "../dispatch/dispatch.ts";
import type { Workspace } from "../git/workspace.ts";
import type { Ledger } from "../store/ledger.ts";
import { decideAtStop, decideTick } from "./decide.ts";
import { pickGaps, type PickOrder } from "../backlog/picker.ts";
import type { Spawner } from "../process/spawn.ts";
import type { TerminateResult } from "../process/signal.ts";
import type { PrProvider, PrState } from "./providers/types.ts";
import type { Outcome } from "../store/reflection.ts";
import type { ReflectionWriter } from "../store/writer.ts";
import { assignSlugs, branchFor, worktreeFor } from "../dispatch/slug.ts";
import { sleep } from "../util/sleep.ts";
import { oneLine } from "../util/text.ts";
import type { Result } from "../util/result.ts";
import type { Beat, Claimed } from "../store/pg/claims.ts";
import { settleOutcome } from "./settle.ts";
import { outcomeCounts, outcomeLine, type RunResult } from "./summary.ts";
import type { AdoptedDispatch } from "./adopt.ts";
import { type Events, NO_EVENTS } from "./events.ts";
import type { LiveRow, LiveView } from "./live.ts";
import { flushIdentify, groupOwner, processTable } from "../process/table.ts";

export { outcomeCounts, outcomeLine, runExitCode, summaryLines } from "./summary.ts";
export type { OutcomeRecord, RunResult } from "./summary.ts";

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
  routing?: { cascade: Cascade; backends: Readonly<Record<string, string>> };
  /** A gap's soft deadline (adaptive deadlines); default: `deadlines` by its effort. */
  deadlineOf?: (gap: Gap) => number;
  /**
   * The lessons block of a gap's prompt (learn/lessons.ts). Its line count
   * goes into the notes (`lessons=<n>`) when lessons were given, when a
   * routing table is in use, or with `lessonsOff` (`--no-lessons`: 0).
   */
  lessonsFor?: (gap: Gap) => string[];
  lessonsOff?: boolean;
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

/**
 * Asks a run to stop: `stop` first (stop picking, end agents), `hurry` to
 * skip the kill grace; with `leave` (a hangup) the agents are not ended but
 * left running for the next watching run to adopt.
 */
export interface Interrupt {
  readonly stop: AbortSignal;
  readonly hurry: AbortSignal;
  readonly leave?: AbortSignal;
  /** `SIGINT` or `SIGTERM` once stopped. */
  readonly signalName: () => string | undefined;
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
  now?: () => number;
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
}

/** How long claims may keep failing (the shared ledger down) before a gap is given up. */
export const CLAIM_GIVE_UP_MS = 5 * 60_000;

/** A dispatch being watched. */
interface Flight {
  dispatch: Dispatch;
  deadlineMs: number;
  maxWatchMs: number;
  exitSeenAtTick?: number;
  warned: boolean;
  /** The IDLE warning was emitted. */
  idleWarned?: boolean;
  /** Set once a terminal decision was taken (its process may still be ending). */
  ending: boolean;
  /** The PR state of the last poll that worked. */
  lastPr?: PrState;
  /** The arm and attempt number, when a routing table chose them. */
  arm?: { arm: string; attempt: number };
  /** Lessons lines its prompt was given, when the notes say so. */
  lessons?: number;
  /** The host that took its shared lease over (`--ledger`): it ends without a reflection. */
  lostTo?: string;
}

/** Everything one run keeps between its steps. */
interface RunState {
  gaps: readonly Gap[];
  config: RunConfig;
  deps: RunDeps;
  now: () => number;
  slugs: Map<string, string>;
  inflight: Map<string, Flight>;
  dispatched: Set<string>;
  shipped: Set<string>;
  /** Outcomes being settled in the background. */
  endings: Set<Promise<void>>;
  result: RunResult;
  attempts: number;
  tickNo: number;
  /** Provider polls that failed in a row (0 after one that worked). */
  failedPolls: number;
  /** Provider polls that failed, in all. */
  providerErrors: number;
  /** Reflections that did not reach the DB (spooled or printed). */
  writeFailures: number;
  startedMs: number;
  /** Gaps waiting for their next attempt (a retry's backoff, or every arm cooling down). */
  waiting: Map<string, { gap: Gap; at: number }>;
  /** The shared ledger (`--ledger`): since when claims fail, whether it is known down or full. */
  fleet: { failingSince?: number; down?: boolean; full?: boolean; suspects: Set<number> };
}

/** How long to wait for an ended agent's output streams to close before writing its reflection. */
const DRAIN_WAIT_MS = 2000;

/**
 * Dispatch and (with `watch`) monitor gaps until every dispatch is terminal.
 *
 * @param gaps the backlog, in file order
 * @param config the run's settings
 * @param deps side effects
 * @returns outcomes, dispatch failures, and whether it was interrupted
 * @example
 * ```ts ignore
 * const result = await runDispatches(backlog.gaps, config, deps);
 * ```
 */
export async function runDispatches(
  gaps: readonly Gap[],
  config: RunConfig,
  deps: RunDeps,
): Promise<RunResult> {
  const run: RunState = {
    gaps,
    config,
    deps,
    now: deps.now ?? Date.now,
    slugs: assignSlugs(gaps.map((g) => g.id)),
    inflight: new Map(),
    dispatched: new Set(),
    shipped: new Set(),
    endings: new Set(),
    result: { outcomes: [], failures: [], detached: 0 },
    attempts: 0,
    tickNo: 0,
    failedPolls: 0,
    providerErrors: 0,
    writeFailures: 0,
    startedMs: (deps.now ?? Date.now)(),
    waiting: new Map(),
    fleet: { suspects: new Set() },
  };
  for (const a of deps.adopted ?? []) {
    const d = a.dispatch;
    events(run).emit("adopted", { gapId: d.gap.id, leaseId: d.leaseId }, {
      pid: d.process.pid,
      running_ms: run.now() - d.startedAt,
      deadline_ms: a.deadlineMs,
      ended: d.process.exitCode !== null,
    });
    run.dispatched.add(d.gap.id);
    startFlight(run, d, a.deadlineMs, a.maxWatchMs);
  }
  // What ended while nobody watched is settled at once, before anything new starts.
  if (run.inflight.size > 0 && !stopped(run)) await tick(run);
  await fill(run);
  redraw(run);
  if (!config.watch) {
    // Unwatched agents keep running after we exit, unless the operator interrupted the dispatch.
    if (stopped(run) && !leaving(run)) await interruptAll(run);
    else run.result.detached = run.inflight.size;
    for (const { gap } of run.waiting.values()) {
      deps.err(
        `note: ${oneLine(gap.id)} was not dispatched: it waits (for a fleet slot, the shared ` +
          "ledger or a cooling arm), and a run without --watch does not wait",
      );
    }
    await identified(run);
    await heartbeat(run, true);
    return run.result;
  }
  while (run.inflight.size > 0 || run.waiting.size > 0) {
    if (run.inflight.size === 0) {
      // Only gaps waiting for their next attempt: sleep until the first is due.
      const due = Math.min(...[...run.waiting.values()].map((w) => w.at)) - run.now();
      await sleep(Math.max(0, Math.min(config.tickMs, due)), deps.interrupt?.stop);
    } else if ([...run.inflight.values()].every((f) => f.ending)) {
      // Only endings in progress: they need no tick; refill as soon as they are done.
      await Promise.race([
        Promise.all([...run.endings]),
        sleep(config.tickMs, deps.interrupt?.stop),
      ]);
    } else {
      await sleep(config.tickMs, deps.interrupt?.stop);
    }
    if (!stopped(run)) await tick(run);
    await heartbeat(run);
    if (stopped(run) && leaving(run)) {
      await leaveAll(run);
      break;
    }
    if (stopped(run)) {
      settleExited(run);
      await interruptAll(run);
      break;
    }
    // Let finished kills record before refilling, so slots free up as soon as possible.
    await Promise.race([Promise.all([...run.endings]), sleep(0)]);
    await fill(run);
    redraw(run);
  }
  // Interrupted with nothing in flight (e.g. during a claim): still an interrupted run.
  if (stopped(run) && !run.result.interrupted) {
    if (leaving(run)) await leaveAll(run);
    else await interruptAll(run);
  }
  await Promise.all([...run.endings]);
  await identified(run);
  await heartbeat(run, true);
  return run.result;
}

/** Record the run's counters in its `chump_runs` row (a watching run with a ledger and an id). */
async function heartbeat(run: RunState, ended = false): Promise<void> {
  const { ledger, runId } = run.deps;
  await fleetBeat(run, ended);
  if (!ledger || runId === undefined || !run.config.watch) return;
  await ledger.heartbeat({
    runId,
    startedMs: run.startedMs,
    endedMs: ended ? run.now() : undefined,
    ticks: run.tickNo,
    providerErrors: run.providerErrors,
    writeFailures: run.writeFailures,
    liveAgents: ended ? 0 : run.inflight.size,
  });
}

/**
 * The shared ledger's heartbeat (`--ledger`): re-own this run's leases, end
 * the flights whose lease another host took over (no reflection: the taker
 * records its own dispatch), and say once which gaps are suspect.
 */
async function fleetBeat(run: RunState, ended: boolean): Promise<void> {
  const { shared, out, err } = run.deps;
  if (!shared) return;
  const held = [...run.inflight.values()]
    .filter((f) => !f.ending && f.dispatch.sharedLeaseId !== undefined)
    .map((f) => f.dispatch.sharedLeaseId!);
  const beat = await shared.heartbeat(held, ended);
  if (!beat.ok) {
    if (!run.fleet.down) err(`warning: ${beat.error}; retried every tick`);
    run.fleet.down = true;
    return;
  }
  ledgerAnswers(run);
  for (const lost of beat.value.lost) {
    const flight = [...run.inflight.values()].find((f) =>
      f.dispatch.sharedLeaseId === lost.id && !f.ending
    );
    if (!flight) continue;
    const by = lost.takenBy ?? "another host";
    flight.lostTo = by;
    events(run).emit("lost", { gapId: lost.gapId, leaseId: flight.dispatch.leaseId }, {
      taken_by: lost.takenBy,
      pid: flight.dispatch.process.pid,
    });
    out(
      `LOST: ${oneLine(lost.gapId)}: ${oneLine(by)} took over its lease in the shared ledger; ` +
        `ending its agent (PID ${flight.dispatch.process.pid}), no reflection from this host`,
    );
    finish(run, flight, {
      outcome: "killed",
      reason: `lease taken over by ${by}`,
      siblings: run.inflight.size - 1,
    });
  }
  for (const s of beat.value.suspect) {
    if (run.fleet.suspects.has(s.id)) continue;
    run.fleet.suspects.add(s.id);
    events(run).emit("suspect", { gapId: s.gapId }, { host: s.host, suspect_ms: s.suspectMs });
    out(
      `SUSPECT: ${oneLine(s.gapId)} is held by ${
        oneLine(s.host)
      }, whose orchestrator stopped heartbeating; ` +
        "not dispatched here while it is suspect",
    );
  }
}

/** The shared ledger is full or silent: no claim can succeed until a later tick. */
function fleetWaits(run: RunState): boolean {
  return run.fleet.full === true || run.fleet.down === true;
}

/** The shared ledger answered: say so once when it had not. */
function ledgerAnswers(run: RunState): void {
  if (run.fleet.down) run.deps.err("note: the shared ledger answers again");
  run.fleet.down = false;
}

/** Redraw the live view (when there is one) from the run's state now. */
function redraw(run: RunState): void {
  const live = run.deps.live;
  if (!live) return;
  const t = run.now();
  const rows: LiveRow[] = [...run.inflight.values()].map((f) => {
    const d = f.dispatch;
    const code = d.process.exitCode;
    const pr = f.lastPr;
    return {
      gapId: d.gap.id,
      backend: f.arm?.arm ?? d.agent.label,
      state: f.ending ? "ending" : code === null ? "running" : `exited ${code}`,
      elapsedMs: t - d.startedAt,
      deadlineMs: f.deadlineMs,
      idleMs: t - d.process.lastOutputAt,
      pr: prLabel(pr),
      lastWarning: d.process.tail.lines().at(-1) ?? "",
    };
  });
  const n = outcomeCounts(run.result);
  live.frame(rows, {
    running: run.inflight.size,
    shipped: n.shipped,
    failed: n.ci_failed + n.stalled + n.killed + n.spawn_failures,
    queued: pickGaps(run.gaps, {
      limit: Infinity,
      order: run.config.order,
      dispatched: run.dispatched,
      shipped: run.shipped,
    }).length,
    nextTickMs: run.config.tickMs,
  });
}

/** A PR as the live view and the ledger show it: `#12 open`; "" for none. */
function prLabel(pr: PrState | undefined): string {
  if (pr === undefined || pr.state === "none") return "";
  return `${pr.number === undefined ? "" : `#${pr.number} `}${pr.state}`;
}

/** Every exact identity still being learned is in the lease before the run returns. */
async function identified(run: RunState): Promise<void> {
  flushIdentify();
  await Promise.all([...run.inflight.values()].map((f) => f.dispatch.identified));
}

function events(run: RunState): Events {
  return run.deps.events ?? NO_EVENTS;
}

function stopped(run: RunState): boolean {
  return run.deps.interrupt?.stop.aborted ?? false;
}

/** Stopped by a hangup: leave the agents for adoption instead of ending them. */
function leaving(run: RunState): boolean {
  return run.deps.interrupt?.leave?.aborted ?? false;
}

/** Pick and dispatch until the slots (or the --max-total budget) are used up. */
async function fill(run: RunState): Promise<void> {
  const { config, deps } = run;
  while (!stopped(run)) {
    const free = config.maxParallel - run.inflight.size;
    const budget = config.maxTotal === undefined
      ? free
      : Math.min(free, config.maxTotal - run.attempts);
    if (budget <= 0) {
      if (config.maxTotal !== undefined && run.attempts >= config.maxTotal) dropWaiting(run);
      return;
    }
    // Gaps whose next attempt is due go first (they were picked already).
    const due = [...run.waiting.values()].filter((w) => w.at <= run.now()).slice(0, budget);
    if (due.length > 0) {
      for (const w of due) {
        if (stopped(run)) return;
        run.waiting.delete(w.gap.id);
        if (await dispatchOne(run, w.gap)) run.attempts++;
        if (fleetWaits(run)) return;
      }
      continue;
    }
    // The shared ledger is full or silent: the gaps waiting for it go first when it frees.
    if (fleetWaits(run)) return;
    const options = {
      limit: budget,
      order: config.order,
      dispatched: run.dispatched,
      shipped: run.shipped,
    };
    // Leases cost a process listing: only look when there is something to pick.
    if (pickGaps(run.gaps, options).length === 0) return;
    const leased = new Set(await deps.ledger?.liveGapIds() ?? []);
    const elsewhere = await deps.shared?.liveGapIds();
    if (elsewhere?.ok) { for (const id of elsewhere.value) leased.add(id); }
    const picks = pickGaps(run.gaps, { ...options, leased });
    if (picks.length === 0) return;
    for (const gap of picks) {
      if (stopped(run)) return;
      // Picked once per run, whatever happens; a gap another orchestrator
      // took first is not ours to retry, and costs no --max-total slot.
      run.dispatched.add(gap.id);
      if (await dispatchOne(run, gap)) run.attempts++;
      if (fleetWaits(run)) return;
    }
  }
}

/** The --max-total budget is spent: gaps waiting for another attempt get none in this run. */
function dropWaiting(run: RunState): void {
  for (const { gap } of run.waiting.values()) {
    run.deps.out(
      `NO-RETRY: ${oneLine(gap.id)}: --max-total reached; its next attempt is left for a later run`,
    );
  }
  run.waiting.clear();
}

/**
 * Dispatch one gap; a failure is reported and counted, a success starts its
 * flight, a gap that another orchestrator's live lease took first is skipped
 * with one note. Returns whether this was an attempt (false for the skip).
 */
async function dispatchOne(run: RunState, gap: Gap): Promise<boolean> {
  const { config, deps } = run;
  const slug = run.slugs.get(gap.id)!;
  const worktree = worktreeFor(config.repoRoot, slug);
  const deadlineMs = config.deadlineOf?.(gap) ?? deadlineFor(gap.effort, config.deadlines);
  const maxWatchMs = config.maxWatchMs ?? 4 * deadlineMs;
  const chosen = chooseAgent(run, gap);
  if (chosen === undefined) return false;
  if (!chosen.ok) {
    run.result.failures.push({ gapId: gap.id, reason: chosen.error });
    deps.out(`DISPATCH-FAILED: ${oneLine(gap.id)}: ${oneLine(chosen.error, 500)}`);
    return true;
  }
  const { agent, arm, lessons } = chosen;
  let sharedId: number | undefined;
  if (deps.shared) {
    const claimed = await claimShared(run, deps.shared, gap);
    if (typeof claimed === "boolean") return claimed;
    sharedId = claimed;
  }
  const r = await dispatchGap(
    {
      gap,
      slug,
      branch: branchFor(slug),
      worktree,
      startCommit: config.startCommit,
      baseRef: config.baseRef,
      agent,
      detached: !config.watch,
      deadlineMs,
      maxWatchMs,
      sharedLeaseId: sharedId,
    },
    deps,
  );
  if (!r.ok || "taken" in r.value) {
    if (sharedId !== undefined) await deps.shared?.end(sharedId, "not dispatched");
  }
  if (!r.ok) {
    run.result.failures.push({ gapId: gap.id, reason: r.error });
    deps.out(`DISPATCH-FAILED: ${oneLine(gap.id)}: ${oneLine(r.error, 500)}`);
    return true;
  }
  if ("taken" in r.value) {
    const holder = r.value.taken;
    deps.err(
      `note: ${oneLine(gap.id)} was just taken by another orchestrator (lease ${holder.id}, ` +
        `orchestrator PID ${holder.orchestratorPid}); picking the next gap`,
    );
    return false;
  }
  deps.out(`DISPATCHED: ${oneLine(gap.id)} in ${worktree} as PID ${r.value.process.pid}`);
  events(run).emit("dispatched", { gapId: gap.id, leaseId: r.value.leaseId }, {
    pid: r.value.process.pid,
    worktree,
    branch: r.value.branch,
    backend: r.value.agent.label,
    deadline_ms: deadlineMs,
    arm: arm?.arm ?? null,
    attempt: arm?.attempt ?? 1,
  });
  startFlight(run, r.value, deadlineMs, maxWatchMs, arm);
  const flight = run.inflight.get(gap.id);
  if (flight) flight.lessons = lessons;
  return true;
}

/**
 * Claim `gap` in the shared ledger: its lease id, or what `dispatchOne`
 * returns instead (false: not an attempt; another host holds it, or it
 * waits for a fleet slot or for the ledger to answer; true: given up).
 */
async function claimShared(
  run: RunState,
  shared: SharedClaims,
  gap: Gap,
): Promise<number | boolean> {
  const { deps, config } = run;
  const claimed = await shared.claim(gap.id);
  const retryAt = run.now() + Math.max(config.tickMs, 1000);
  if (!claimed.ok) {
    run.fleet.failingSince ??= run.now();
    if (run.now() - run.fleet.failingSince > CLAIM_GIVE_UP_MS) {
      run.result.failures.push({ gapId: gap.id, reason: claimed.error });
      deps.out(`DISPATCH-FAILED: ${oneLine(gap.id)}: ${oneLine(claimed.error, 500)}`);
      return true;
    }
    if (!run.fleet.down) deps.err(`warning: ${claimed.error}; claims are retried every tick`);
    run.fleet.down = true;
    run.waiting.set(gap.id, { gap, at: retryAt });
    return false;
  }
  run.fleet.failingSince = undefined;
  ledgerAnswers(run);
  const c = claimed.value;
  if (!c.won && c.why === "fleet-full") {
    if (!run.fleet.full) {
      deps.out(`FLEET-FULL: the whole fleet is at --fleet-max; waiting for a slot`);
    }
    run.fleet.full = true;
    run.waiting.set(gap.id, { gap, at: retryAt });
    return false;
  }
  if (!c.won) {
    deps.err(
      `note: ${oneLine(gap.id)} is held by another host's orchestrator (shared ledger); ` +
        "picking the next gap",
    );
    return false;
  }
  run.fleet.full = false;
  if (c.tookOver) {
    events(run).emit("taken_over", { gapId: gap.id }, {
      from_host: c.tookOver.host,
      generation: c.generation,
    });
    deps.out(
      `TAKEOVER: ${oneLine(gap.id)} from ${
        oneLine(c.tookOver.host)
      } (its orchestrator stopped heartbeating; ` +
        `generation ${c.tookOver.generation} -> ${c.generation})`,
    );
  }
  return c.id;
}

/**
 * The agent of the gap's next attempt: the run's one agent, or with a
 * routing table the next arm of its cascade. Undefined: every arm it may use
 * cools down, so it waits (and says so once).
 */
function chooseAgent(
  run: RunState,
  gap: Gap,
):
  | { ok: true; agent: AgentCommand; arm?: Flight["arm"]; lessons?: number }
  | { ok: false; error: string }
  | undefined {
  const { routing, lessonsOff } = run.config;
  const given = run.config.lessonsFor?.(gap) ?? [];
  const lessons = given.length > 0 || routing || lessonsOff ? given.length : undefined;
  const plain = () => ({
    ok: true as const,
    agent: agentCommandFor(run.config.agent, gap.id, given),
    lessons,
  });
  if (!routing) return plain();
  const next = routing.cascade.next(gap, run.now());
  if (next.kind === "none") return plain();
  if (next.kind === "wait") {
    run.waiting.set(gap.id, { gap, at: next.until });
    run.deps.out(
      `WAITING: ${oneLine(gap.id)}: every arm left in its cascade cools down; next try in ${
        formatDuration(Math.max(0, next.until - run.now()))
      }`,
    );
    return undefined;
  }
  const { pick, attempt } = next.attempt;
  const agent = armAgent(pick.candidate, gap.id, routing.backends, given);
  if (!agent.ok) return agent;
  return { ok: true, agent: agent.value, arm: { arm: pick.arm, attempt }, lessons };
}

/** Watch `dispatch` from now on (dispatched by this run, or adopted). */
function startFlight(
  run: RunState,
  dispatch: Dispatch,
  deadlineMs: number,
  maxWatchMs: number,
  arm?: Flight["arm"],
) {
  run.inflight.set(dispatch.gap.id, {
    dispatch,
    deadlineMs,
    maxWatchMs,
    warned: false,
    ending: false,
    arm,
  });
}

/** One tick: one provider poll for every watched branch, then a decision per dispatch. */
async function tick(run: RunState): Promise<void> {
  const { deps } = run;
  run.tickNo++;
  const watched = [...run.inflight.values()].filter((f) => !f.ending);
  if (watched.length === 0) return;
  const siblings = run.inflight.size - 1;
  const polled = await deps.provider.poll(
    watched.map((f) => ({
      branch: f.dispatch.branch,
      startCommit: f.dispatch.startCommit,
      startedAt: f.dispatch.startedAt,
    })),
    {
      timeoutMs: run.config.pollTimeoutMs ?? pollTimeoutFor(run.config.tickMs),
      signal: deps.interrupt?.stop,
    },
  );
  // Stopped during the poll: the stop sequence records what is known (see settleExited).
  if (stopped(run)) return;
  if (polled.ok) {
    run.failedPolls = 0;
  } else {
    run.failedPolls++;
    run.providerErrors++;
    deps.err(
      `warning: PR provider ${deps.provider.name} failed: ${
        oneLine(polled.error, 300)
      }; retrying next tick`,
    );
    events(run).emit("retry", {}, {
      provider: deps.provider.name,
      reason: oneLine(polled.error, 300),
      failed_polls: run.failedPolls,
    });
  }
  const t = run.now();
  for (const flight of watched) {
    if (stopped(run)) return;
    const pr: PrState | undefined = polled.ok
      ? polled.value.get(flight.dispatch.branch) ?? { state: "none" }
      : undefined;
    decideFlight(run, flight, pr, t, siblings);
  }
}

/** Apply the tick decision for one dispatch. */
function decideFlight(
  run: RunState,
  flight: Flight,
  pr: PrState | undefined,
  t: number,
  siblings: number,
): void {
  const { deps } = run;
  const proc = flight.dispatch.process;
  const exitCode = proc.exitCode;
  if (exitCode !== null && flight.exitSeenAtTick === undefined) flight.exitSeenAtTick = run.tickNo;
  const ids = { gapId: flight.dispatch.gap.id, leaseId: flight.dispatch.leaseId };
  if (
    pr !== undefined && pr.state !== "none" &&
    (pr.state !== flight.lastPr?.state || pr.number !== flight.lastPr?.number)
  ) {
    events(run).emit("pr_seen", ids, { pr_number: pr.number ?? null, state: pr.state });
  }
  const label = prLabel(pr);
  if (label !== "" && label !== prLabel(flight.lastPr) && flight.dispatch.leaseId !== null) {
    run.deps.ledger?.notePr(flight.dispatch.leaseId, label).catch(() => {});
  }
  if (pr !== undefined) flight.lastPr = pr;
  const decision = decideTick({
    pr,
    exitCode,
    ticksSinceExit: exitCode === null ? 0 : run.tickNo - flight.exitSeenAtTick!,
    elapsedMs: t - flight.dispatch.startedAt,
    deadlineMs: flight.deadlineMs,
    maxWatchMs: flight.maxWatchMs,
    exitGraceTicks: run.config.exitGraceTicks,
    warned: flight.warned,
    failedPolls: run.failedPolls,
    idleMs: t - proc.lastOutputAt,
    idleTimeoutMs: run.config.idleTimeoutMs,
    idleWarned: flight.idleWarned,
  });
  switch (decision.kind) {
    case "watch":
      break;
    case "warn": {
      flight.warned = true;
      const quiet = Math.round((t - proc.lastOutputAt) / 1000);
      deps.err(
        `warning: STALLED: ${flight.dispatch.gap.id} ${decision.message}; ` +
          `last output ${quiet}s ago (PID ${proc.pid})`,
      );
      events(run).emit("deadline_warning", ids, {
        pid: proc.pid,
        elapsed_ms: t - flight.dispatch.startedAt,
        deadline_ms: flight.deadlineMs,
      });
      break;
    }
    case "idle":
      flight.idleWarned = true;
      deps.err(`warning: IDLE: ${flight.dispatch.gap.id} ${decision.message} (PID ${proc.pid})`);
      events(run).emit("output_idle", ids, {
        pid: proc.pid,
        idle_ms: t - proc.lastOutputAt,
        idle_timeout_ms: run.config.idleTimeoutMs ?? 0,
      });
      break;
    case "kill":
      deps.out(`KILLING: ${flight.dispatch.gap.id} (${decision.reason}): PID ${proc.pid}`);
      finish(run, flight, { outcome: "killed", reason: decision.reason, siblings });
      break;
    case "terminal":
      finish(run, flight, {
        outcome: decision.outcome,
        reason: decision.reason,
        prNumber: decision.prNumber,
        siblings,
      });
      break;
  }
}

/**
 * The run is stopping: agents that had already exited are settled by what
 * was known ({@linkcode decideAtStop}) before the interrupt ends the rest.
 */
function settleExited(run: RunState): void {
  const name = run.deps.interrupt?.signalName() ?? "SIGINT";
  const siblings = run.inflight.size - 1;
  for (const flight of run.inflight.values()) {
    if (flight.ending) continue;
    const decision = decideAtStop(flight.dispatch.process.exitCode, name, flight.lastPr);
    if (decision === undefined) continue;
    finish(run, flight, {
      outcome: decision.outcome,
      reason: decision.reason,
      prNumber: decision.prNumber,
      siblings,
    });
  }
}

/**
 * End a flight in the background: end its agent's process group (the agent,
 * or whatever it left running after it exited), wait for its output to
 * drain, then settle it (worktree rule, reflection, lease end).
 */
function finish(
  run: RunState,
  flight: Flight,
  o: { outcome: Outcome; reason: string; prNumber?: number; siblings: number },
): void {
  const { config, deps } = run;
  flight.ending = true;
  const d = flight.dispatch;
  const durationS = Math.max(0, Math.floor((run.now() - d.startedAt) / 1000));
  const job = (async () => {
    const proc = d.process;
    // Every outcome ends the whole group, whether the agent itself still runs
    // or not: what it left in the background must not outlive its worktree.
    // An empty group is not signalled (terminate checks the process table),
    // nor one whose pid now belongs to another process (recycled).
    await d.identified;
    const owner = groupOwner(await processTable({ fresh: true }), proc.pgid, d.identity);
    const t = owner === "none" ? { gone: true, escalated: false } : await deps.terminate(
      proc.pgid,
      { graceMs: config.killGraceMs, skipGrace: deps.interrupt?.hurry },
    );
    if (!t.gone) {
      deps.err(
        `warning: process group ${proc.pgid} of ${d.gap.id} did not go away` +
          (t.reason ? `: ${oneLine(t.reason, 300)}` : ""),
      );
    }
    await Promise.race([proc.exited, sleep(DRAIN_WAIT_MS)]);
    const tail = proc.tail.lines();
    // With a routing table: the arm's lines in the notes, and what the outcome means for the cascade.
    const cls = flight.arm ? classify(o.outcome, o.reason, tail) : undefined;
    const extra = [
      ...(flight.arm
        ? [
          ...(d.agent.model ? [`model=${d.agent.model}`] : []),
          ...(d.agent.provider ? [`provider=${d.agent.provider}`] : []),
          `attempt=${flight.arm.attempt}`,
          ...(cls ? [`class=${cls}`] : []),
        ]
        : []),
      ...(flight.lessons !== undefined ? [`lessons=${flight.lessons}`] : []),
    ];
    const { kept, stored } = await settleOutcome(deps, {
      gapId: d.gap.id,
      effort: d.gap.effort,
      leaseId: d.leaseId,
      leaseGeneration: d.leaseGeneration,
      sharedLeaseId: d.sharedLeaseId,
      worktree: d.worktree,
      branch: d.branch,
      startCommit: d.startCommit,
      outcome: o.outcome,
      reason: o.reason,
      backend: d.agent.label,
      extra,
      tail,
      durationS,
      parallelSiblings: o.siblings,
      prNumber: o.prNumber,
    });
    if (o.outcome === "shipped") run.shipped.add(d.gap.id);
    if (stored === "spool" || stored === "stderr") run.writeFailures++;
    if (flight.lostTo !== undefined) {
      // Taken over by another host: not an outcome of this run (the taker records its dispatch).
      run.inflight.delete(d.gap.id);
      redraw(run);
      return;
    }
    const now = run.now();
    const next = flight.arm && config.routing && !stopped(run)
      ? config.routing.cascade.outcome(d.gap.id, flight.arm.arm, cls, o.outcome === "shipped", now)
      : undefined;
    const record = {
      gapId: d.gap.id,
      outcome: o.outcome,
      durationS,
      prNumber: o.prNumber,
      reason: o.reason,
      kept,
      retried: next?.retryAt !== undefined,
    };
    run.result.outcomes.push(record);
    run.inflight.delete(d.gap.id);
    deps.out(outcomeLine(record));
    if (next?.cooling) {
      deps.out(
        `COOLDOWN: ${next.cooling.arm} is rate limited: no new dispatch to it for ${
          formatDuration(Math.max(0, next.cooling.until - now))
        }`,
      );
    }
    if (next?.retryAt !== undefined && flight.arm) {
      const waitMs = Math.max(0, next.retryAt - now);
      run.waiting.set(d.gap.id, { gap: d.gap, at: next.retryAt });
      deps.out(
        `RETRY: ${
          oneLine(d.gap.id)
        }: attempt ${flight.arm.attempt} on ${flight.arm.arm} was ${cls}; ` +
          `the next arm of its cascade in ${formatDuration(waitMs)}`,
      );
      events(run).emit("requeued", { gapId: d.gap.id, leaseId: d.leaseId }, {
        attempt: flight.arm.attempt,
        class: cls ?? "",
        arm: flight.arm.arm,
        wait_ms: waitMs,
      });
    }
    redraw(run);
    events(run).emit("outcome", { gapId: d.gap.id, leaseId: d.leaseId }, {
      outcome: o.outcome,
      duration_s: durationS,
      pr_number: o.prNumber ?? null,
      reason: o.reason,
      worktree_kept: kept ?? null,
    });
  })();
  run.endings.add(job);
  job.finally(() => run.endings.delete(job));
}

/**
 * Stop on a hangup: outcomes already being recorded finish; every other
 * agent is left running under its waiter, its lease as it is (its
 * orchestrator, this process, is about to be gone), for the next watching
 * run to adopt. Nothing is killed and no reflection is written for them.
 */
async function leaveAll(run: RunState): Promise<void> {
  run.result.interrupted = run.deps.interrupt?.signalName() ?? "SIGHUP";
  events(run).emit("interrupted", {}, { signal: run.result.interrupted, left_running: true });
  await Promise.all([...run.endings]);
  run.result.leftRunning = [...run.inflight.values()].filter((f) => !f.ending).length;
}

/** Stop: end every live agent with a `killed` reflection naming the signal. */
async function interruptAll(run: RunState): Promise<void> {
  const name = run.deps.interrupt?.signalName() ?? "SIGINT";
  run.result.interrupted = name;
  events(run).emit("interrupted", {}, { signal: name, left_running: false });
  const live = [...run.inflight.values()].filter((f) => !f.ending);
  const siblings = run.inflight.size - 1;
  for (const flight of live) {
    finish(run, flight, { outcome: "killed", reason: `interrupted by ${name}`, siblings });
  }
  await Promise.all([...run.endings]);
}
