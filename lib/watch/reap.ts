/**
 * Reaping after a crashed orchestrator (SIGKILL, power loss): every lease
 * whose orchestrator is gone is taken over (atomically, so two reapers never
 * both act), its agent's process group is ended when that agent is still
 * running and provably ours (same pid AND start time as recorded), or when
 * the agent is gone but left processes in its group, the
 * missing `killed` reflection is written with notes `orchestrator lost`,
 * the worktree rule is applied and the lease is ended. Idempotent: a second
 * reap finds nothing.
 *
 * @module
 */
import { gitWorkspace } from "../git/workspace.ts";
import type { Lease, Ledger } from "../store/ledger.ts";
import { processTable } from "../process/table.ts";
import type { TerminateResult } from "../process/signal.ts";
import type { ReflectionWriter } from "../store/writer.ts";
import { settleOutcome } from "./settle.ts";
import { oneLine } from "../util/text.ts";

/** The note a reaped dispatch's reflection starts with. */
export const ORCHESTRATOR_LOST = "orchestrator lost";

/** What {@linkcode reapOrphans} needs. */
export interface ReapDeps {
  ledger: Ledger;
  writer: ReflectionWriter;
  terminate: (pgid: number, options: { graceMs: number }) => Promise<TerminateResult>;
  killGraceMs: number;
  out: (line: string) => void;
  err: (line: string) => void;
  now?: () => number;
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
 * const reaped = await reapOrphans({ ledger, writer, terminate: terminateGroup, killGraceMs: 30_000, out, err });
 * ```
 */
export async function reapOrphans(deps: ReapDeps): Promise<Reaped[]> {
  const { ledger, now = Date.now } = deps;
  const orphans = await ledger.orphans();
  const reaped: Reaped[] = [];
  for (const lease of orphans) {
    const adopted = await ledger.adopt(lease);
    if (!adopted.ok) {
      deps.err(`warning: ${adopted.error}`);
      continue;
    }
    if (!adopted.value) continue; // another reaper took it, or it ended meanwhile
    const siblings = orphans.filter((o) =>
      o.id !== lease.id && o.orchestratorPid === lease.orchestratorPid
    ).length;

    let agentEnded = false;
    let groupEnded = false;
    if (lease.pid !== null) {
      const table = await processTable({ fresh: true });
      // The agent itself, provably ours (pid and start time); or, once it is
      // gone, what it left in its process group (pgid = its pid). A live
      // process with that pid but another start time means the number was
      // reused: its group is not ours.
      agentEnded = table.alive(lease.pid, lease.pidStart);
      groupEnded = !agentEnded && !table.alive(lease.pid) && table.groupAlive(lease.pid);
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
    } else {
      deps.err(
        `warning: lease ${lease.id} (${lease.gapId}) never recorded its agent's pid; ` +
          "if an agent was started it cannot be proven ours and is left alone",
      );
    }
    const { kept } = await settleOutcome({ ...deps, workspace: gitWorkspace(lease.repoRoot) }, {
      gapId: lease.gapId,
      effort: lease.effort,
      leaseId: lease.id,
      worktree: lease.worktree,
      branch: lease.branch,
      startCommit: lease.baseCommit,
      outcome: "killed",
      reason: ORCHESTRATOR_LOST,
      backend: lease.backend || "unknown",
      tail: [],
      durationS: Math.max(0, Math.floor((now() - lease.startedMs) / 1000)),
      parallelSiblings: siblings,
    });
    deps.out(
      `REAPED: ${
        oneLine(lease.gapId)
      } (lease ${lease.id}, orchestrator PID ${lease.orchestratorPid}): ` +
        `${agentNote(lease.pid, agentEnded, groupEnded)}; ` +
        (kept ? `worktree kept: ${kept}` : "worktree removed"),
    );
    reaped.push({ lease, agentEnded, kept });
  }
  return reaped;
}

/** What became of a reaped lease's agent, for its REAPED line. */
function agentNote(pid: number | null, agentEnded: boolean, groupEnded: boolean): string {
  if (agentEnded) return `agent PID ${pid} ended`;
  if (groupEnded) return `agent already gone, what it left in process group ${pid} ended`;
  return "agent already gone";
}
