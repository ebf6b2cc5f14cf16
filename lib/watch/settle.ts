/**
 * Recording a terminal outcome, the one way every path does it (the watch
 * loop, `reap`, and later adoption): apply the worktree rule, then ONE store
 * call writes the reflection and ends the lease in one transaction. Work is
 * never deleted and a reflection is never lost (the writer spools what the
 * DB refuses; a spooled row carries its lease, so the import that records
 * the row ends the lease with it).
 *
 * @module
 */
import { cleanUpWorktree, type Workspace } from "../git/workspace.ts";
import { buildNotes, gapDomain, type Outcome } from "../store/reflection.ts";
import type { ReflectionWriter, WriteReceipt } from "../store/writer.ts";

/** What settling needs. */
export interface SettleDeps {
  workspace: Workspace;
  /** Records the reflection and ends the lease (with `--no-reflect`: only ends the lease). */
  writer: ReflectionWriter;
  err: (line: string) => void;
}

/** One terminal outcome to record. */
export interface Settlement {
  gapId: string;
  /** The gap's effort as written, `unknown` when missing. */
  effort: string;
  leaseId: number | null;
  /** The lease's generation when this outcome was decided (see DispatchReflection). */
  leaseGeneration?: number;
  /** Its lease in the shared ledger (`--ledger`): the fleet writer records it there too. */
  sharedLeaseId?: number;
  worktree: string;
  branch: string;
  startCommit: string;
  outcome: Outcome;
  /** Why it ended (`exit code 1`, ...); blank for none. */
  reason: string;
  /** The agent backend's label. */
  backend: string;
  /** `key=value` lines after `backend=` (a routed arm's `model=`, `attempt=`, `class=`, ...). */
  extra?: readonly string[];
  /** The stderr tail, oldest first. */
  tail: readonly string[];
  durationS: number;
  parallelSiblings: number;
  prNumber?: number;
}

/**
 * Record one outcome: the worktree rule, then the reflection and the lease
 * end together.
 *
 * @returns where the worktree was kept and why (undefined: removed), and the notes written
 * @example
 * ```ts ignore
 * const { kept } = await settleOutcome(deps, settlement);
 * ```
 */
export async function settleOutcome(
  deps: SettleDeps,
  s: Settlement,
): Promise<{ kept?: string; notes: string; stored: WriteReceipt["stored"] }> {
  const kept = await cleanUpWorktree(deps.workspace, s, { shipped: s.outcome === "shipped" });
  const notes = buildNotes(s.reason, s.backend, s.tail, s.extra);
  const receipt = await deps.writer.write({
    gapId: s.gapId,
    effort: s.effort || "unknown",
    domain: gapDomain(s.gapId),
    outcome: s.outcome,
    durationS: s.durationS,
    parallelSiblings: s.parallelSiblings,
    prNumber: s.prNumber,
    notes,
    leaseId: s.leaseId ?? undefined,
    leaseGeneration: s.leaseGeneration,
    sharedLeaseId: s.sharedLeaseId,
  });
  if (receipt.stored === "spool") {
    deps.err(
      `warning: reflection for ${s.gapId} spooled to ${receipt.path} (${receipt.reason}); ` +
        "its lease ends when the spool is imported",
    );
  } else if (receipt.stored === "stderr") {
    deps.err(`warning: reflection for ${s.gapId} printed above, not stored (${receipt.reason})`);
  } else if (receipt.stored === "superseded") {
    deps.err(
      `note: ${s.gapId} (lease ${s.leaseId}) was taken over or recorded by another ` +
        "orchestrator; its outcome is not written twice",
    );
  } else if (receipt.stored === "discarded" && receipt.leaseError) {
    deps.err(`warning: ${receipt.leaseError}`);
  }
  return { kept, notes, stored: receipt.stored };
}
