/**
 * Dispatching one gap (CONTRACT §3): lease -> worktree + branch -> claim ->
 * agent. A failing step aborts that gap only, undoes what it made (a
 * worktree is removed only while it holds no commits) and ends its lease.
 *
 * Git work sits behind `Workspace` (git/workspace.ts), process starts behind
 * `Spawner`, so the order of steps can be tested without either.
 *
 * @module
 */
import { type AgentCommand, modelInArgv } from "./agent.ts";
import { createSessionMeter } from "../cost/session.ts";
import type { Gap } from "../backlog/gap.ts";
import { cleanUpWorktree, type Workspace } from "../git/workspace.ts";
import type { Lease, Ledger } from "../store/ledger.ts";
import type { AgentProcess, Spawner } from "../process/spawn.ts";
import { fail, ok, type Result } from "../util/result.ts";
import type { Processes } from "../process/table.ts";
import { type AgentFiles, agentFiles, logBase } from "../process/waiter.ts";

/** What a dispatch knows of its gap (an adopted one knows only what its lease recorded). */
export type GapRef = Pick<Gap, "id" | "effort">;

/** One gap about to be dispatched. */
export interface DispatchRequest {
  gap: GapRef;
  slug: string;
  branch: string;
  worktree: string;
  /** The base ref's commit; the branch starts here. */
  startCommit: string;
  /** The base ref (e.g. `origin/main`), told to the agent as `CHUMP_BASE_REF`. */
  baseRef: string;
  agent: AgentCommand;
  /** True when nobody will watch the agent (no --watch). */
  detached: boolean;
  /** Its soft deadline and watch limit, recorded in the lease (an adopter keeps them). */
  deadlineMs?: number;
  maxWatchMs?: number;
  /** Its lease in the shared ledger (`--ledger`), recorded in the local one for an adopter. */
  sharedLeaseId?: number;
}

/** A dispatch whose agent is running. */
export interface Dispatch extends DispatchRequest {
  leaseId: number | null;
  /** The lease's generation this run owns (0 when it dispatched the gap itself). */
  leaseGeneration: number;
  /** The agent's (waiter's) process identity, as recorded in the lease (see process/table.ts). */
  identity?: string;
  /**
   * Settles once the exact identity replaced the spawn-time one in
   * `identity` and in the lease (it is learned off the dispatch's critical
   * path: the next gap need not wait for it). Await it before relying on
   * `identity`, and before the ledger closes.
   */
  identified?: Promise<void>;
  process: AgentProcess;
  /** ms since the epoch. */
  startedAt: number;
}

/**
 * What a dispatch came to when no step failed: its agent runs, or the gap
 * was taken by another orchestrator's live lease between the pick and the
 * lease (a lost race, not a failure: nothing was made).
 */
export type Dispatched =
  | { kind: "started"; dispatch: Dispatch }
  | { kind: "taken"; holder: Lease };

/** What {@linkcode dispatchGap} needs. */
export interface DispatchDeps {
  workspace: Workspace;
  spawner: Spawner;
  /** Absent only in tests that do not care about leases. */
  ledger?: Ledger;
  /** The run's process table: each agent's exact identity is read through it. */
  processes: Processes;
  /** Ends an agent's process group (one whose dispatch could not be recorded). */
  terminate: (pgid: number, options: { graceMs: number }) => Promise<unknown>;
  now?: () => number;
  /** `stop` aborting (the run was interrupted) ends a claim script at once. */
  interrupt?: { readonly stop: AbortSignal };
  /**
   * Where agents' log and status files go (`dispatch-logs/` next to the DB).
   * With a ledger, each agent then runs under a waiter and outlives this
   * process (process/waiter.ts); without, its output is piped to us.
   */
  logsDir?: string;
  /** Cap of each log file while it is followed (default 32 MiB). */
  logCapBytes?: number;
}

/**
 * Dispatch one gap: lease, worktree, claim, spawn, in that order.
 *
 * @returns the running dispatch, or the live lease of another orchestrator
 * that holds the gap, or one line saying which step failed
 * @example
 * ```ts
 * declare const request: DispatchRequest;
 * declare const deps: DispatchDeps;
 * const d = await dispatchGap(request, deps);
 * ```
 */
export async function dispatchGap(
  request: DispatchRequest,
  deps: DispatchDeps,
): Promise<Result<Dispatched>> {
  const { workspace } = deps;
  const { gap, branch, worktree, startCommit } = request;
  const begun = await beginLease(request, deps);
  if (!begun.ok) return begun;
  if (begun.value.kind === "taken") return ok(begun.value);
  const { leaseId } = begun.value;
  const abandon = (why: string, madeWorktree: boolean) =>
    abandonDispatch(request, deps, leaseId, why, madeWorktree);

  const added = await workspace.addWorktree(branch, worktree, startCommit);
  if (!added.ok) return await abandon(added.error, false);

  const claimed = await workspace.claim(worktree, gap.id, { signal: deps.interrupt?.stop });
  if (!claimed.ok) return await abandon(claimed.error, true);

  const files = leaseId !== null && deps.logsDir !== undefined
    ? agentFiles(logBase(deps.logsDir, leaseId, request.slug), deps.logCapBytes)
    : undefined;
  const started = spawnFor(request, deps, leaseId, files);
  if (!started.ok) return await abandon(started.error, true);
  const proc = started.value;
  if (leaseId !== null && deps.ledger) {
    // Its spawn-time identity first (durable at once), the exact one as soon as it is read.
    const recorded = await deps.ledger.running(leaseId, {
      pid: proc.pid,
      pidStart: proc.startTime,
      detached: request.detached,
      logBase: files?.base,
    });
    if (!recorded.ok) {
      // A lease without its agent's pid cannot be adopted nor reaped: were this run to
      // die, the agent would run on unaccounted for. End it now instead.
      await deps.terminate(proc.pgid, { graceMs: ABANDON_GRACE_MS });
      return await abandon(`${recorded.error}; its agent (PID ${proc.pid}) was ended`, true);
    }
  }
  return ok({ kind: "started", dispatch: runningDispatch(request, deps, leaseId, proc) });
}

/** SIGTERM -> SIGKILL grace for an agent ended because its dispatch could not be recorded. */
const ABANDON_GRACE_MS = 2000;

/** The lease (none without a ledger), or the live lease of another orchestrator holding the gap. */
async function beginLease(
  request: DispatchRequest,
  deps: DispatchDeps,
): Promise<Result<{ kind: "begun"; leaseId: number | null } | { kind: "taken"; holder: Lease }>> {
  if (!deps.ledger) return ok({ kind: "begun", leaseId: null });
  const lease = await deps.ledger.begin({
    gapId: request.gap.id,
    repoRoot: deps.workspace.repoRoot,
    branch: request.branch,
    worktree: request.worktree,
    baseCommit: request.startCommit,
    effort: request.gap.effort,
    backend: request.agent.label,
    agentFormat: request.agent.format,
    model: agentModel(request.agent),
    deadlineMs: request.deadlineMs,
    maxWatchMs: request.maxWatchMs,
    sharedId: request.sharedLeaseId,
  });
  if (!lease.ok) return lease;
  if (!lease.value.begun) return ok({ kind: "taken", holder: lease.value.holder });
  return ok({ kind: "begun", leaseId: lease.value.leaseId });
}

/** A step failed: undo what was made (a worktree only while it holds no commits), end the lease. */
async function abandonDispatch(
  request: DispatchRequest,
  deps: DispatchDeps,
  leaseId: number | null,
  why: string,
  madeWorktree: boolean,
): Promise<Result<never>> {
  let reason = why;
  if (madeWorktree) {
    const kept = await cleanUpWorktree(deps.workspace, request, { shipped: false });
    if (kept) reason += `; worktree kept: ${kept}`;
  }
  if (leaseId !== null) await deps.ledger?.end(leaseId, null, `dispatch failed: ${reason}`);
  return fail(reason);
}

/**
 * Start the agent of a dispatch again in its worktree, on its branch (a fix
 * round of its PR): `agent` is the round's command (its prompt says what is
 * wrong), `CHUMP_FIX_ROUND=<round>` is in its environment, its log files are
 * the round's own (`<base>-fix<round>`), and its lease records the new pid
 * and files (an adopter follows this round). The lease and the deadline
 * clock go on.
 *
 * @example
 * ```ts ignore
 * const proc = await respawnAgent(dispatch, deps, command, 1);
 * ```
 */
export async function respawnAgent(
  d: Dispatch,
  deps: DispatchDeps,
  agent: AgentCommand,
  round: number,
): Promise<Result<AgentProcess>> {
  const files = d.leaseId !== null && deps.logsDir !== undefined
    ? agentFiles(logBase(deps.logsDir, d.leaseId, `${d.slug}-fix${round}`), deps.logCapBytes)
    : undefined;
  const started = spawnFor({ ...d, agent }, deps, d.leaseId, files, {
    CHUMP_FIX_ROUND: String(round),
  });
  if (!started.ok) return started;
  const proc = started.value;
  if (d.leaseId !== null && deps.ledger) {
    await deps.ledger.respawned(d.leaseId, {
      pid: proc.pid,
      pidStart: proc.startTime,
      logBase: files?.base,
      fixRound: round,
    });
  }
  d.agent = agent;
  d.process = proc;
  d.identity = proc.startTime;
  d.identified = identifyLater(d, deps, proc);
  return started;
}

/** Start the agent in its worktree, with the environment of CONTRACT §3. */
function spawnFor(
  request: DispatchRequest,
  deps: DispatchDeps,
  leaseId: number | null,
  files: AgentFiles | undefined,
  extraEnv: Record<string, string> = {},
): Result<AgentProcess> {
  const { agent, gap, branch, worktree } = request;
  return deps.spawner.spawn({
    argv: agent.argv,
    cwd: worktree,
    env: {
      ...agent.env,
      CHUMP_DISPATCH_DEPTH: "1",
      CHUMP_GAP_ID: gap.id,
      CHUMP_BRANCH: branch,
      CHUMP_WORKTREE: worktree,
      CHUMP_BASE_REF: request.baseRef,
      ...(leaseId !== null ? { CHUMP_LEASE_ID: String(leaseId) } : {}),
      ...extraEnv,
    },
    stdin: agent.stdin,
    unwatched: request.detached,
    files,
    session: request.detached ? undefined : createSessionMeter(
      agent.format ?? "plain",
      agentModel(agent),
    ),
  });
}

/** The model an agent was started with: its arm's, else the one its command names. */
function agentModel(agent: AgentCommand): string | undefined {
  return agent.model ?? modelInArgv(agent.argv);
}

/** The dispatch of a started agent; its exact identity is learned in the background. */
function runningDispatch(
  request: DispatchRequest,
  deps: DispatchDeps,
  leaseId: number | null,
  proc: AgentProcess,
): Dispatch {
  const dispatch: Dispatch = {
    ...request,
    leaseId,
    leaseGeneration: 0,
    identity: proc.startTime,
    process: proc,
    startedAt: (deps.now ?? Date.now)(),
  };
  dispatch.identified = identifyLater(dispatch, deps, proc);
  return dispatch;
}

/** Learn the agent's exact identity off the critical path; record it in the lease. */
function identifyLater(d: Dispatch, deps: DispatchDeps, proc: AgentProcess): Promise<void> {
  return (async () => {
    const exact = await deps.processes.identify(proc.pid, proc.startTime);
    if (d.process !== proc) return; // a later round replaced it meanwhile
    d.identity = exact;
    if (d.leaseId !== null && exact !== proc.startTime) {
      await deps.ledger?.identify(d.leaseId, proc.pid, exact);
    }
  })().catch(() => {});
}
