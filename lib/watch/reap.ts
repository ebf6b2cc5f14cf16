/**
 * Reaping after a crashed orchestrator (SIGKILL, power loss): every lease
 * whose orchestrator is gone is taken over (atomically, so two reapers never
 * both act), its agent's process group is ended when that agent is still
 * running and provably ours (same pid AND start time as recorded), the
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
    if (
      lease.pid !== null && (await processTable({ fresh: true })).alive(lease.pid, lease.pidStart)
    ) {
      const t = await deps.terminate(lease.pid, { graceMs: deps.killGraceMs });
      agentEnded = true;
      if (!t.gone) {
        deps.err(
          `warning: agent PID ${lease.pid} of ${lease.gapId} did not go away` +
            (t.reason ? `: ${t.reason}` : ""),
        );
      }
    } else if (lease.pid === null) {
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
        `${agentEnded ? `agent PID ${lease.pid} ended` : "agent already gone"}; ` +
        (kept ? `worktree kept: ${kept}` : "worktree removed"),
    );
    reaped.push({ lease, agentEnded, kept });
  }
  return reaped;
}
