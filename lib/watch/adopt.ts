/**
 * Adoption (a restart loses no agent work): a watching run first takes over
 * every dispatch whose orchestrator is gone (a crash, a closed terminal, a
 * run without `--watch`) and watches it to an outcome like its own.
 *
 * - Which: leases of this repo in `starting`/`running`/`detached` whose
 *   orchestrator is no longer alive on this host (process identity, see
 *   process/table.ts) and whose agent pid was recorded. A lease without a
 *   pid (its orchestrator died mid-dispatch) is left to the reap that follows.
 * - Exactly once: each is taken by a compare-and-set on its generation
 *   (store/ledger.ts `adopt`); a run that loses the race leaves it alone, and
 *   only the generation that owns a lease can record its outcome.
 * - Its agent: when the recorded pid still runs with the recorded identity,
 *   it is watched from outside (process/adopted.ts): deadlines count from
 *   the original dispatch, with the deadline it was dispatched with. When it
 *   ended while nobody watched, its recorded exit status (or "not recorded")
 *   and its PR state settle it at the first tick. A recycled pid is never
 *   taken for the agent, and never signalled (see watch/finish.ts).
 *
 * @module
 */
import { createSessionMeter } from "../cost/session.ts";
import { isAgentFormat } from "../cost/formats.ts";
import { basename } from "../util/path.ts";
import type { Dispatch } from "../dispatch/dispatch.ts";
import { AdoptedAgents } from "../process/adopted.ts";
import type { Processes } from "../process/table.ts";
import { EXIT_UNRECORDED } from "../process/spawn.ts";
import { agentFiles } from "../process/waiter.ts";
import type { Lease, Ledger } from "../store/ledger.ts";
import { deadlineFor, type Deadlines, exactDuration, roughDuration } from "../util/duration.ts";
import { oneLine } from "../util/text.ts";

/** What adoption needs. */
export interface AdoptDeps {
  ledger: Ledger;
  /** Only leases of this repository are adopted (the PR provider is this repo's). */
  repoRoot: string;
  baseRef: string;
  /** For leases that predate recorded deadlines. */
  deadlines: Deadlines;
  maxWatchMs?: number;
  /** Cap of each log file while it is followed (default 32 MiB). */
  logCapBytes?: number;
  /** The run's process table (adopted agents are looked at through it). */
  processes: Processes;
  out: (line: string) => void;
  err: (line: string) => void;
}

/** One adopted dispatch, ready for the watch loop. */
export interface AdoptedDispatch {
  dispatch: Dispatch;
  deadlineMs: number;
  maxWatchMs: number;
}

/**
 * Take over and prepare for watching every dispatch a gone orchestrator left.
 *
 * @returns the adopted dispatches (empty when there was nothing to adopt)
 * @example
 * ```ts ignore
 * const adopted = await adoptOrphans({ ledger, repoRoot, baseRef, deadlines, out, err });
 * ```
 */
export async function adoptOrphans(deps: AdoptDeps): Promise<AdoptedDispatch[]> {
  const found = await deps.ledger.orphans({ detached: true });
  if (!found.ok) {
    deps.err(`warning: ${found.error}; nothing adopted`);
    return [];
  }
  const orphans = found.value.filter((l) => l.pid !== null && l.repoRoot === deps.repoRoot);
  const agents = new AdoptedAgents(deps.processes);
  const adopted: AdoptedDispatch[] = [];
  for (const lease of orphans) {
    const taken = await deps.ledger.adopt(lease);
    if (!taken.ok) {
      deps.err(`warning: ${taken.error}`);
      continue;
    }
    if (taken.value === undefined) continue; // another run took it first, or it ended
    adopted.push(prepare(lease, taken.value, deps, agents));
  }
  if (adopted.length === 0) return adopted;
  // Learn at once which ended while nobody watched (their first tick decides them).
  await agents.poll();
  for (const a of adopted) {
    const d = a.dispatch;
    const running = roughDuration(Date.now() - d.startedAt);
    const code = d.process.exitCode;
    if (code !== null) {
      const status = code === EXIT_UNRECORDED ? "exit status not recorded" : `exit code ${code}`;
      deps.out(
        `ADOPTED: ${oneLine(d.gap.id)} (lease ${d.leaseId}): its agent ended while unwatched ` +
          `(${status}); settling it with its PR state`,
      );
    } else {
      deps.out(
        `ADOPTED: ${oneLine(d.gap.id)} as PID ${d.process.pid}, running ${running}, ` +
          `deadline ${exactDuration(a.deadlineMs)}`,
      );
    }
  }
  return adopted;
}

/** The dispatch of an adopted lease, as the watch loop knows its own. */
function prepare(
  lease: Lease,
  generation: number,
  deps: AdoptDeps,
  agents: AdoptedAgents,
): AdoptedDispatch {
  const deadlineMs = lease.deadlineMs ?? deadlineFor(lease.effort, deps.deadlines);
  const maxWatchMs = lease.maxWatchMs ?? deps.maxWatchMs ?? 4 * deadlineMs;
  const files = lease.logBase === null ? undefined : agentFiles(lease.logBase, deps.logCapBytes);
  // A structured session is read again from its file's start: the figures are the whole session's.
  const format = lease.agentFormat !== null && isAgentFormat(lease.agentFormat)
    ? lease.agentFormat
    : undefined;
  const session = format && files
    ? createSessionMeter(format, lease.model ?? undefined)
    : undefined;
  const process = agents.adopt({
    pid: lease.pid!,
    identity: lease.pidStart,
    startedMs: lease.startedMs,
    files,
    session,
  });
  const dispatch: Dispatch = {
    gap: { id: lease.gapId, effort: lease.effort },
    slug: basename(lease.worktree),
    branch: lease.branch,
    worktree: lease.worktree,
    startCommit: lease.baseCommit,
    baseRef: deps.baseRef,
    agent: {
      argv: [],
      label: lease.backend || "unknown",
      format,
      model: lease.model ?? undefined,
    },
    detached: false,
    leaseId: lease.id,
    leaseGeneration: generation,
    sharedLeaseId: lease.sharedId ?? undefined,
    identity: lease.pidStart ?? undefined,
    process,
    startedAt: lease.startedMs,
  };
  return { dispatch, deadlineMs, maxWatchMs };
}
