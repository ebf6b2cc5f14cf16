/**
 * Reaping after a crashed orchestrator (SIGKILL, power loss): every lease
 * whose orchestrator is gone is taken over (atomically, so two reapers never
 * both act), its agent's process group is ended when that agent is still
 * running and provably ours (same pid AND start time as recorded), or when
 * the agent is gone but left processes in its group, the missing reflection
 * is written, the worktree rule is applied and the lease is ended.
 * Idempotent: a second reap finds nothing.
 *
 * The outcome: the PR provider is asked ONCE for every reaped branch, so a
 * gap whose PR merged (or closed) while nobody watched is recorded `shipped`
 * (or `ci_failed`) as a tick would have; anything else is `killed` with
 * notes `orchestrator lost`. A provider that fails is a warning, not a reason
 * to leave leases unreaped.
 *
 * @module
 */
import { gitWorkspace } from "../git/workspace.ts";
import type { Lease, Ledger } from "../store/ledger.ts";
import type { PrProvider, PrState } from "./providers/types.ts";
import { decideReaped } from "./decide.ts";
import { groupOwner, type Processes, type ProcessTable } from "../process/table.ts";
import type { TerminateResult } from "../process/signal.ts";
import type { ReflectionWriter } from "../store/writer.ts";
import { settle } from "./finish.ts";
import { encodeNotes } from "../store/notes.ts";
import { gapDomain, type Outcome } from "../store/reflection.ts";
import { fail, ok, type Result } from "../util/result.ts";
import { describeReceipt } from "../store/writer.ts";
import { oneLine } from "../util/text.ts";
import { pathState } from "../util/fs.ts";
import {
  type EndedEscapee,
  endEscaped,
  isOfDispatch,
  type Marked,
  markedProcesses,
} from "../process/escaped.ts";
import { escapedLine } from "./observer.ts";

/** The note a reaped dispatch's reflection starts with (unless its PR decided the outcome). */
const ORCHESTRATOR_LOST = "orchestrator lost";

/** Reaping runs before a dispatch run starts: its one PR poll may not hold that up longer. */
const REAP_POLL_TIMEOUT_MS = 30_000;

/** What {@linkcode reapOrphans} needs. */
export interface ReapDeps {
  ledger: Ledger;
  writer: ReflectionWriter;
  terminate: (pgid: number, options: { graceMs: number }) => Promise<TerminateResult>;
  killGraceMs: number;
  /** The process table (whose agents still run). */
  processes: Processes;
  out: (line: string) => void;
  err: (line: string) => void;
  /** Asked once for all reaped branches; without one every reaped dispatch is `killed`. */
  provider?: PrProvider;
}

/** One reaped dispatch. */
export interface Reaped {
  lease: Lease;
  /** The agent was still running and was ended. */
  agentEnded: boolean;
  /** Where the worktree was kept and why, or undefined when it was removed. */
  kept?: string;
}

/**
 * Reap every dispatch whose orchestrator is gone.
 *
 * @returns what was reaped (empty when nothing was orphaned)
 * @example
 * ```ts
 * declare const deps: ReapDeps;
 * const reaped = await reapOrphans(deps);
 * ```
 */
export async function reapOrphans(deps: ReapDeps): Promise<Reaped[]> {
  // Detached leases too: a run without --watch left their agents, and it is gone.
  const found = await deps.ledger.orphans({ detached: true });
  if (!found.ok) {
    deps.err(`warning: ${found.error}; nothing reaped`);
    return [];
  }
  const orphans = found.value;
  const adopted: Lease[] = [];
  for (const lease of orphans) {
    const taken = await deps.ledger.adopt(lease);
    if (!taken.ok) {
      deps.err(`warning: ${taken.error}`);
      continue;
    }
    // Undefined: another reaper took it, or it ended meanwhile.
    if (taken.value !== undefined) adopted.push({ ...lease, generation: taken.value });
  }
  const prs = await pollOnce(deps, adopted);
  const reaped: Reaped[] = [];
  for (const lease of adopted) {
    const siblings = orphans.filter((o) =>
      o.id !== lease.id && o.orchestratorPid === lease.orchestratorPid
    ).length;
    const decision = decideReaped(prs?.get(lease.branch), ORCHESTRATOR_LOST);
    reaped.push(await reapOne(deps, lease, decision, siblings));
  }
  return reaped;
}

/** What the operator's stop records. */
export const STOPPED_BY_OPERATOR = "stopped by the operator";

/**
 * Stop one dispatch (`stop GAP|LEASE`): take its lease over (so a run that
 * watches it does not record it too), end its agent, record `killed`,
 * `stopped by the operator`, and say so in one `STOPPED:` line.
 *
 * @returns what was stopped, or why nothing was (the lease ended or was taken meanwhile)
 * @example
 * ```ts ignore
 * const stopped = await stopLease(deps, lease);
 * ```
 */
export async function stopLease(deps: ReapDeps, lease: Lease): Promise<Result<Reaped>> {
  const taken = await deps.ledger.adopt(lease);
  if (!taken.ok) return taken;
  if (taken.value === undefined) {
    return fail(`lease ${lease.id} (${lease.gapId}) ended or was taken over meanwhile`);
  }
  const decision = { outcome: "killed" as const, reason: STOPPED_BY_OPERATOR };
  return ok(await reapOne(deps, { ...lease, generation: taken.value }, decision, 0));
}

/** End a lease taken over: end its agent, record `decision`, say what was done. */
async function reapOne(
  deps: ReapDeps,
  lease: Lease,
  decision: { outcome: Outcome; reason: string; prNumber?: number },
  siblings: number,
): Promise<Reaped> {
  const { agentEnded, groupEnded } = await endAgent(deps, lease);
  const marked = await markedProcesses();
  const table = await deps.processes.table({ fresh: true });
  say(deps, await endEscaped(escapeesOf(marked, [lease], table), { ...escaping(deps), table }));
  // An unreadable path counts as there: nothing is claimed gone that may not be.
  const gone = (await pathState(lease.worktree)) === "absent";
  const { kept, receipt } = await settle(
    { ...deps, workspace: gitWorkspace(lease.repoRoot) },
    { worktree: lease.worktree, branch: lease.branch, startCommit: lease.baseCommit },
    {
      gapId: lease.gapId,
      effort: lease.effort || "unknown",
      domain: gapDomain(lease.gapId),
      outcome: decision.outcome,
      durationS: Math.max(0, Math.floor((Date.now() - lease.startedMs) / 1000)),
      parallelSiblings: siblings,
      prNumber: decision.prNumber,
      notes: encodeNotes({ reason: decision.reason, backend: lease.backend || "unknown" }),
      leaseId: lease.id,
      leaseGeneration: lease.generation,
      sharedLeaseId: lease.sharedId ?? undefined,
    },
  );
  const note = describeReceipt(receipt, { gapId: lease.gapId, leaseId: lease.id });
  if (note) deps.err(note);
  const decided = decision.outcome === "killed"
    ? ""
    : `; ${decision.outcome}${
      decision.prNumber === undefined ? "" : ` (PR #${decision.prNumber})`
    }`;
  const worktree = gone
    ? `worktree already gone${kept ? `; kept: ${kept}` : ""}`
    : kept
    ? `worktree kept: ${kept}`
    : "worktree removed";
  const verb = decision.reason === STOPPED_BY_OPERATOR
    ? `STOPPED: ${oneLine(lease.gapId)} (lease ${lease.id}): `
    : `REAPED: ${
      oneLine(lease.gapId)
    } (lease ${lease.id}, orchestrator PID ${lease.orchestratorPid}): `;
  deps.out(
    verb +
      `${agentNote(lease.pid, agentEnded, groupEnded)}${decided}; ${worktree}`,
  );
  return { lease, agentEnded, kept };
}

/**
 * End the lease's agent when it still runs and is provably ours (pid and
 * start time), or, once it is gone, what it left in its process group (pgid
 * = its pid). A live process with that pid but another start time means the
 * number was reused: its group is not ours.
 */
async function endAgent(
  deps: ReapDeps,
  lease: Lease,
): Promise<{ agentEnded: boolean; groupEnded: boolean }> {
  if (lease.pid === null) {
    deps.err(
      `warning: lease ${lease.id} (${lease.gapId}) never recorded its agent's pid; ` +
        "if an agent was started it cannot be proven ours and is left alone",
    );
    return { agentEnded: false, groupEnded: false };
  }
  const table = await deps.processes.table({ fresh: true });
  const owner = groupOwner(table, lease.pid, lease.pidStart);
  const agentEnded = owner === "agent";
  const groupEnded = owner === "leftovers";
  if (agentEnded || groupEnded) {
    const t = await deps.terminate(lease.pid, { graceMs: deps.killGraceMs });
    if (!t.gone) {
      const who = agentEnded ? "agent PID" : "process group";
      deps.err(
        `warning: ${who} ${lease.pid} of ${lease.gapId} did not go away` +
          (t.reason ? `: ${t.reason}` : ""),
      );
    }
  }
  return { agentEnded, groupEnded };
}

/**
 * End the processes that left their agent's group and outlived their
 * dispatch (its lease has ended; process/escaped.ts): one `ESCAPED:` line
 * each.
 *
 * @returns how many were found
 * @example
 * ```ts
 * declare const deps: ReapDeps;
 * const escaped = await reapEscaped(deps);
 * ```
 */
export async function reapEscaped(deps: ReapDeps): Promise<number> {
  const marked = await markedProcesses();
  if (marked.length === 0) return 0;
  const leases = await deps.ledger.list(Number.MAX_SAFE_INTEGER);
  if (!leases.ok) {
    deps.err(`warning: ${leases.error}; processes that left their agent's group are left alone`);
    return 0;
  }
  const table = await deps.processes.table({ fresh: true });
  const ended = leases.value.filter((l) => l.state === "ended");
  const escaped = escapeesOf(marked, ended, table);
  say(deps, await endEscaped(escaped, { ...escaping(deps), table }));
  return escaped.length;
}

/** Escaped processes are ended with the agents' grace, polling the same process table. */
function escaping(deps: ReapDeps): { processes: Processes; graceMs: number } {
  return { processes: deps.processes, graceMs: deps.killGraceMs };
}

/** Slack on a lease's times when a process's start (whole seconds) is compared with them. */
const START_SLACK_S = 2;

/**
 * The processes of `marked` that carry the marks of one of `leases` AND
 * started during it (after its dispatch; for an ended lease, before its
 * end): lease ids repeat across DBs, but no two dispatches hold one worktree
 * at the same time, so a live agent of another DB with the same marks is
 * never taken for an ended dispatch's.
 */
function escapeesOf(marked: Marked[], leases: readonly Lease[], table: ProcessTable): Marked[] {
  return marked.filter((m) => {
    const start = table.startOf(m.pid);
    if (start === undefined) return false; // gone already
    return leases.some((l) =>
      isOfDispatch(m, { gapId: l.gapId, worktree: l.worktree, leaseId: l.id }) &&
      start >= Math.floor(l.startedMs / 1000) - START_SLACK_S &&
      (l.state !== "ended" || start <= Math.ceil(l.updatedMs / 1000) + START_SLACK_S)
    );
  });
}

/** One line per escaped process: ended (stdout) or not (a warning). */
function say(deps: ReapDeps, ended: readonly EndedEscapee[]): void {
  for (const e of ended) (e.gone ? deps.out : deps.err)(escapedLine(e));
}

/** What became of a reaped lease's agent, for its REAPED line. */
function agentNote(pid: number | null, agentEnded: boolean, groupEnded: boolean): string {
  if (agentEnded) return `agent PID ${pid} ended`;
  if (groupEnded) return `agent already gone, what it left in process group ${pid} ended`;
  return "agent already gone";
}

/** One provider poll for every reaped branch; undefined (after a warning) when it fails. */
async function pollOnce(
  deps: ReapDeps,
  leases: readonly Lease[],
): Promise<Map<string, PrState> | undefined> {
  if (!deps.provider || leases.length === 0) return undefined;
  const polled = await deps.provider.poll(
    leases.map((l) => ({ branch: l.branch, startCommit: l.baseCommit, startedAt: l.startedMs })),
    { timeoutMs: REAP_POLL_TIMEOUT_MS },
  );
  if (polled.ok) return polled.value;
  deps.err(
    `warning: PR provider ${deps.provider.name} failed: ${
      oneLine(polled.error, 300)
    }; reaped dispatches are recorded without their PR state`,
  );
  return undefined;
}
