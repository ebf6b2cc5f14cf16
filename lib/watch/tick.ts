/**
 * One tick of a watching run: ONE provider poll for every watched branch
 * (bounded by {@linkcode pollTimeoutFor} and abandoned the moment the run is
 * stopped, so a hung `gh` or `git fetch` delays a tick by at most that bound
 * and never delays an interrupt), then {@linkcode decideTick} per dispatch,
 * its decision applied here. {@linkcode settleExited} is the same for a run
 * that stops: agents that had exited are recorded by what was known
 * ({@linkcode decideAtStop}), not as interrupted.
 *
 * @module
 */
import { awaitsProvider, decideAtStop, decideTick, type TickDecision } from "./decide.ts";
import { finish } from "./finish.ts";
import type { PrState } from "./providers/types.ts";
import {
  type Flight,
  pollTimeoutFor,
  prLabel,
  type RunState,
  stopped,
  watched as watchedOf,
} from "./state.ts";
import { oneLine } from "../util/text.ts";
import { overBudget, reportUsage } from "./spend.ts";

/**
 * One tick: poll, then decide every watched dispatch.
 *
 * @example
 * ```ts ignore
 * await tick(run);
 * ```
 */
export async function tick(run: RunState): Promise<void> {
  const { deps, counters } = run;
  counters.tickNo++;
  const watched = watchedOf(run);
  if (watched.length === 0) return;
  const siblings = run.flights.size - 1;
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
    counters.failedPolls = 0;
  } else {
    counters.failedPolls++;
    counters.providerErrors++;
    run.report.report({
      kind: "provider_failed",
      fields: {
        provider: deps.provider.name,
        reason: oneLine(polled.error, 300),
        failed_polls: counters.failedPolls,
      },
    });
  }
  const t = run.now();
  for (const flight of watched) {
    if (stopped(run)) return;
    const pr: PrState | undefined = polled.ok
      ? polled.value.get(flight.dispatch.branch) ?? { state: "none" }
      : undefined;
    seePr(run, flight, pr);
    reportUsage(run, flight, t);
    flight.awaitingPr = awaitsProvider(flight.dispatch.process.exitCode, pr);
    apply(run, flight, decide(run, flight, pr, t), t, siblings);
  }
}

/** A PR state newly seen: its event, and the lease's PR column. */
function seePr(run: RunState, flight: Flight, pr: PrState | undefined): void {
  const d = flight.dispatch;
  if (
    pr !== undefined && pr.state !== "none" &&
    (pr.state !== flight.lastPr?.state || pr.number !== flight.lastPr?.number)
  ) {
    run.report.report({
      kind: "pr_seen",
      ids: { gapId: d.gap.id, leaseId: d.leaseId },
      fields: { pr_number: pr.number ?? null, state: pr.state },
    });
  }
  const label = prLabel(pr);
  if (label !== "" && label !== prLabel(flight.lastPr) && d.leaseId !== null) {
    run.deps.ledger?.notePr(d.leaseId, label).catch(() => {});
  }
  if (pr !== undefined) flight.lastPr = pr;
}

/** The tick decision for one dispatch, from what this tick observed. */
function decide(run: RunState, flight: Flight, pr: PrState | undefined, t: number): TickDecision {
  const proc = flight.dispatch.process;
  const exitCode = proc.exitCode;
  if (exitCode !== null && flight.exitSeenAtTick === undefined) {
    flight.exitSeenAtTick = run.counters.tickNo;
  }
  return decideTick({
    pr,
    exitCode,
    ticksSinceExit: exitCode === null ? 0 : run.counters.tickNo - flight.exitSeenAtTick!,
    elapsedMs: t - flight.dispatch.startedAt,
    deadlineMs: flight.deadlineMs,
    maxWatchMs: flight.maxWatchMs,
    exitGraceTicks: run.config.exitGraceTicks,
    warned: flight.warned,
    failedPolls: run.counters.failedPolls,
    idleMs: t - proc.lastOutputAt,
    idleTimeoutMs: run.config.idleTimeoutMs,
    idleWarned: flight.idleWarned,
    overBudget: overBudget(run, flight),
  });
}

/** Apply one tick decision. */
function apply(
  run: RunState,
  flight: Flight,
  decision: TickDecision,
  t: number,
  siblings: number,
): void {
  const d = flight.dispatch;
  const proc = d.process;
  const ids = { gapId: d.gap.id, leaseId: d.leaseId };
  switch (decision.kind) {
    case "watch":
      return;
    case "warn":
      flight.warned = true;
      return run.report.report({
        kind: "deadline_warning",
        ids,
        message: decision.message,
        quietS: Math.round((t - proc.lastOutputAt) / 1000),
        fields: { pid: proc.pid, elapsed_ms: t - d.startedAt, deadline_ms: flight.deadlineMs },
      });
    case "idle":
      flight.idleWarned = true;
      return run.report.report({
        kind: "output_idle",
        ids,
        message: decision.message,
        fields: {
          pid: proc.pid,
          idle_ms: t - proc.lastOutputAt,
          idle_timeout_ms: run.config.idleTimeoutMs ?? 0,
        },
      });
    case "kill":
      run.report.report({
        kind: "killing",
        gapId: d.gap.id,
        reason: decision.reason,
        pid: proc.pid,
      });
      return finish(run, flight, { outcome: "killed", reason: decision.reason, siblings });
    case "terminal":
      return finish(run, flight, {
        outcome: decision.outcome,
        reason: decision.reason,
        prNumber: decision.prNumber,
        siblings,
      });
  }
}

/**
 * The run is stopping: agents that had already exited are settled by what
 * was known ({@linkcode decideAtStop}) before the interrupt ends the rest.
 *
 * @example
 * ```ts ignore
 * settleExited(run);
 * ```
 */
export function settleExited(run: RunState): void {
  const name = run.deps.interrupt?.signalName() ?? "SIGINT";
  const siblings = run.flights.size - 1;
  for (const flight of watchedOf(run)) {
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
