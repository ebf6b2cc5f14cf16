/**
 * Finishing a dispatch: end its agent's process group (the agent, or what
 * it left running after it exited) -> wait for its output to drain ->
 * classify the failure -> settle (the worktree rule, then ONE store call
 * that writes the reflection and ends the lease in one transaction) ->
 * record the outcome in the run and say what the cascade does next. A
 * flight finishes in the background, so one agent's kill grace never delays
 * the others. {@linkcode settle} is the one way every path records an
 * outcome (the run, and `reap`): work is never deleted and a reflection is
 * never lost (the writer spools what the DB refuses, with its lease, so the
 * import that records the row ends the lease with it).
 *
 * @module
 */
import { backoffEffect, classify, type SessionEnd } from "../learn/classify.ts";
import { DEFAULT_BACKOFF } from "../store/backoff.ts";
import { prInAnswer } from "../cost/session.ts";
import { costFacts, flightCost } from "./spend.ts";
import type { Dispatch } from "../dispatch/dispatch.ts";
import { cleanUpWorktree, type Workspace } from "../git/workspace.ts";
import { groupOwner } from "../process/table.ts";
import { endEscaped, isOfDispatch, markedProcesses } from "../process/escaped.ts";
import { encodeNotes } from "../store/notes.ts";
import { type DispatchReflection, gapDomain, type Outcome } from "../store/reflection.ts";
import type { ReflectionWriter, WriteReceipt } from "../store/writer.ts";
import { sleep } from "../util/sleep.ts";
import { afterOutcome } from "./routing.ts";
import { type Flight, type RunState, stopped } from "./state.ts";
import type { OutcomeRecord } from "./summary.ts";

/** How long to wait for an ended agent's output streams to close before writing its reflection. */
const DRAIN_WAIT_MS = 2000;

/** How a flight ends. */
export interface Ending {
  outcome: Outcome;
  /** Why (`exit code 1`, ...); blank for none. */
  reason: string;
  prNumber?: number;
  /** Other dispatches in flight when it was decided. */
  siblings: number;
}

/**
 * Finish `flight` in the background (the run awaits `run.endings`).
 *
 * @example
 * ```ts ignore
 * finish(run, flight, { outcome: "killed", reason: "exit code 1", siblings: 0 });
 * ```
 */
export function finish(run: RunState, flight: Flight, o: Ending): void {
  if (flight.ending) return; // decided already (a fix round and a stop racing): one outcome
  flight.ending = true;
  // Until the agent ended (for one that ended unwatched: when its waiter wrote its status),
  // else until now: what adaptive deadlines learn is the agent's time.
  const end = Math.min(flight.dispatch.process.endedAt ?? run.now(), run.now());
  const durationS = Math.max(0, Math.floor((end - flight.dispatch.startedAt) / 1000));
  const job = endFlight(run, flight, o, durationS);
  run.endings.add(job);
  job.finally(() => run.endings.delete(job));
}

/** What this run learns from an outcome: it counts for the run's next dispatch. */
function learnFrom(run: RunState, d: Dispatch, o: Ending, notes: string, durationS: number) {
  const gap = { effort: d.gap.effort ?? "", domain: gapDomain(d.gap.id) };
  const row = { gapId: d.gap.id, outcome: o.outcome, notes, createdAt: "", durationS };
  run.config.learned?.record({ ...row, ...gap });
}

async function endFlight(run: RunState, flight: Flight, o: Ending, durationS: number) {
  const d = flight.dispatch;
  await endGroup(run, d);
  if (await takenOverHere(run, d)) {
    // `stop` took the lease over: it ends the agent and what escaped it, and records the
    // outcome, not this run (which would otherwise race it to the escaped processes).
    run.flights.delete(d.gap.id);
    (run.result.lost ??= []).push({ gapId: d.gap.id, by: "the operator's stop" });
    run.report.report({ kind: "stopped_here", gapId: d.gap.id, leaseId: d.leaseId });
    return;
  }
  await endEscapees(run, d);
  await Promise.race([d.process.exited, sleep(DRAIN_WAIT_MS)]);
  const tail = d.process.tail.lines();
  const cost = flightCost(run, flight);
  const said = sessionEnd(d);
  // The agent's answer gives the PR number where the provider found none (the git provider).
  o = { ...o, prNumber: o.prNumber ?? prInAnswer(d.process.session?.usage().result?.text) };
  // With a routing table: the arm's facts in the notes, and what the outcome means for the
  // cascade; with a structured session, the class (`max_turns`, `over_budget`, ...) too.
  const kind = classify(o.outcome, o.reason, tail, said);
  const cls = flight.arm || d.process.session ? kind : undefined;
  const notes = encodeNotes({
    reason: o.reason,
    backend: d.agent.label,
    ...(flight.arm
      ? {
        model: d.agent.model,
        provider: d.agent.provider,
        attempt: flight.arm.attempt,
      }
      : {}),
    class: cls,
    lessons: flight.lessons,
    fixRounds: flight.fixRound,
    fixReasons: flight.fixReasons,
    cost: cost && costFacts(cost),
    tail,
  });
  const backoff = {
    ...(run.config.backoff ?? DEFAULT_BACKOFF),
    effect: flight.lostTo === undefined ? backoffEffect(o.outcome, o.reason, kind) : "none",
    reason: o.reason,
  } as const;
  const { kept, receipt } = await settle(run.deps, d, {
    ...reflectionOf(d, o, durationS, notes),
    backoff,
  });
  if (backoff.effect === "fail") await sayHeldBack(run, d.gap.id);
  run.report.report({ kind: "stored", gapId: d.gap.id, leaseId: d.leaseId, receipt });
  if (o.outcome === "shipped") run.queue.shipped.add(d.gap.id);
  if (receipt.stored === "spool" || receipt.stored === "stderr") run.counters.writeFailures++;
  run.flights.delete(d.gap.id);
  if (flight.lostTo !== undefined) {
    // Taken over by another host: not an outcome of this run (the taker records its dispatch).
    (run.result.lost ??= []).push({ gapId: d.gap.id, by: flight.lostTo });
    run.report.redraw();
    return;
  }
  learnFrom(run, d, o, notes, durationS);
  const routing = run.config.routing;
  const after = flight.arm && routing && !stopped(run)
    ? afterOutcome(routing, d.gap.id, flight.arm, cls, o.outcome === "shipped", run.now())
    : undefined;
  const record: OutcomeRecord = {
    gapId: d.gap.id,
    outcome: o.outcome,
    durationS,
    prNumber: o.prNumber,
    reason: o.reason,
    kept,
    retried: after?.retryAt !== undefined,
    cost: cost && costFacts(cost),
  };
  run.result.outcomes.push(record);
  if (after?.retryAt !== undefined && flight.gap) {
    run.queue.waiting.set(d.gap.id, { gap: flight.gap, at: after.retryAt });
  }
  run.report.report({ kind: "outcome", record, leaseId: d.leaseId, next: after?.next ?? {} });
}

/** A gap that failed again: backing off, or parked (as the ledger that holds its state says). */
async function sayHeldBack(run: RunState, gapId: string): Promise<void> {
  const { shared, ledger } = run.deps;
  const held = await (shared?.heldBack ? shared.heldBack() : ledger?.heldBack());
  const b = held?.ok ? held.value.find((x) => x.gapId === gapId) : undefined;
  if (b) run.report.report({ kind: "held_back", backoff: b, now: run.now() });
}

/**
 * End the dispatch's whole process group, whether the agent itself still
 * runs or not: what it left in the background must not outlive its
 * worktree. An empty group is not signalled, nor one whose pid now belongs
 * to another process (recycled).
 */
export async function endGroup(run: RunState, d: Dispatch): Promise<void> {
  const proc = d.process;
  if (proc.pgid <= 1) return; // no agent (a PR watched after a take-over): nothing to end
  await d.identified;
  const table = await run.deps.processes.table({ fresh: true });
  const owner = groupOwner(table, proc.pgid, d.identity);
  if (owner === "none") return;
  const t = await run.deps.terminate(proc.pgid, {
    graceMs: run.config.killGraceMs,
    skipGrace: run.deps.interrupt?.hurry,
  });
  if (!t.gone) {
    run.report.report({
      kind: "group_survived",
      gapId: d.gap.id,
      pgid: proc.pgid,
      reason: t.reason,
    });
  }
}

/**
 * Was the dispatch's lease taken over on this host meanwhile (a newer
 * generation: the operator's `stop`)? Unknown (the DB cannot be read) is
 * no: the outcome is recorded, and the writer's fencing drops a stale row.
 */
async function takenOverHere(run: RunState, d: Dispatch): Promise<boolean> {
  if (d.leaseId === null || !run.deps.ledger) return false;
  const now = await run.deps.ledger.generation(d.leaseId);
  return now.ok && now.value !== undefined && now.value !== d.leaseGeneration;
}

/**
 * End what left the agent's group but carries its dispatch's marks
 * (process/escaped.ts), before its worktree is removed, and say so.
 */
async function endEscapees(run: RunState, d: Dispatch): Promise<void> {
  if (d.process.pgid <= 1) return; // no agent of ours
  const mine = (await markedProcesses()).filter((m) =>
    isOfDispatch(m, { gapId: d.gap.id, worktree: d.worktree, leaseId: d.leaseId })
  );
  const ended = await endEscaped(mine, {
    processes: run.deps.processes,
    graceMs: run.config.killGraceMs,
    skipGrace: run.deps.interrupt?.hurry,
  });
  for (const e of ended) run.report.report({ kind: "escaped", ended: e, leaseId: d.leaseId });
}

/** What the agent's structured session said at its end, if it spoke one and said anything. */
function sessionEnd(d: Dispatch): SessionEnd | undefined {
  const u = d.process.session?.usage();
  if (u?.result) {
    return { subtype: u.result.subtype, isError: u.result.isError, text: u.result.text };
  }
  if (u?.error) return { isError: true, text: u.error };
  return undefined;
}

/** The reflection of a dispatch of this run. */
function reflectionOf(
  d: Dispatch,
  o: Ending,
  durationS: number,
  notes: string,
): DispatchReflection {
  return {
    gapId: d.gap.id,
    effort: d.gap.effort || "unknown",
    domain: gapDomain(d.gap.id),
    outcome: o.outcome,
    durationS,
    parallelSiblings: o.siblings,
    prNumber: o.prNumber,
    notes,
    leaseId: d.leaseId ?? undefined,
    leaseGeneration: d.leaseGeneration,
    sharedLeaseId: d.sharedLeaseId,
  };
}

/** What settling needs. */
export interface SettleDeps {
  workspace: Workspace;
  /** Records the reflection and ends the lease (with `--no-reflect`: only ends the lease). */
  writer: ReflectionWriter;
}

/**
 * Record one outcome: the worktree rule, then the reflection and the lease
 * end together.
 *
 * @param where the dispatch's worktree, branch and start commit
 * @param r the reflection (its lease ids say which lease it ends)
 * @returns where the worktree was kept and why (undefined: removed), and where the row went
 * @example
 * ```ts ignore
 * const { kept, receipt } = await settle(deps, dispatch, reflection);
 * ```
 */
export async function settle(
  deps: SettleDeps,
  where: { worktree: string; branch: string; startCommit: string },
  r: DispatchReflection,
): Promise<{ kept?: string; receipt: WriteReceipt }> {
  const kept = await cleanUpWorktree(deps.workspace, where, { shipped: r.outcome === "shipped" });
  return { kept, receipt: await deps.writer.write(r) };
}
