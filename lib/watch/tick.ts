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
import { classify } from "../learn/classify.ts";
import {
  awaitsProvider,
  decideAtStop,
  decideTick,
  type TickDecision,
  type TickInput,
} from "./decide.ts";
import { startFixRound } from "./fix.ts";
import { fixReasonsOf } from "./fix_text.ts";
import { finish } from "./finish.ts";
import type { PrState } from "./providers/types.ts";
import {
  type Flight,
  pollTimeoutFor,
  prLabel,
  type RunState,
  stopped,
  unsettled,
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
export async function tick(run: RunState, baseOnly = false): Promise<void> {
  const { deps, counters } = run;
  counters.tickNo++;
  const watched = baseOnly ? [] : watchedOf(run);
  // With no PR to watch, a poll only when the base branch's checks are wanted.
  if (watched.length === 0 && !run.config.pauseWhenBaseRed) return;
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
    const decision = decide(run, flight, pr, t);
    apply(run, flight, decision, t, siblings);
    if (decision.kind === "watch") askAutoMerge(run, flight, pr);
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
    earlyEnd: flight.earlyEndMs === undefined ? undefined : {
      afterMs: flight.earlyEndMs,
      failing: failingClass(proc.tail.lines()),
    },
    overBudget: overBudget(run, flight),
    fix: fixInput(run, flight, pr),
  });
}

/**
 * A failure class a running agent's latest stderr lines show (it is stuck on a rate limit, the
 * network); an error it recovered from earlier in its run does not count.
 *
 * @example
 * ```ts ignore
 * failingClass(["ERROR: 429 Too Many Requests"]); // "rate_limited"
 * ```
 */
export function failingClass(tail: readonly string[]): string | undefined {
  const latest = tail.slice(-FAILING_LINES);
  if (latest.length === 0) return undefined;
  const cls = classify("killed", "", latest);
  return cls === "rate_limited" || cls === "transient" ? cls : undefined;
}

/** The stderr tail's last lines that say what an agent is doing now. */
const FAILING_LINES = 2;

/** What a fix round would deal with, when the dispatch's open PR may go back to its agent. */
function fixInput(run: RunState, flight: Flight, pr: PrState | undefined): TickInput["fix"] {
  const max = run.config.fixRounds ?? 0;
  if (max <= 0 || pr?.state !== "open" || !pr.review || !flight.dispatch.agent.remake) {
    return undefined;
  }
  // A review still standing whose words were all given to a round already is not a new
  // reason: the reviewer has to look again (meanwhile the PR is watched to max-watch).
  const sent = flight.sentComments;
  const fresh = (c: string) => !sent?.has(c);
  const reasons = fixReasonsOf(pr.review).filter((r) =>
    r !== "changes_requested" || pr.review!.comments.length === 0 && !sent ||
    pr.review!.comments.some(fresh)
  );
  return { reasons, used: flight.fixRound ?? 0, max };
}

/** Run `job` in the background; the run waits for it before it ends. */
function background(run: RunState, job: Promise<void>): void {
  const tracked = job.catch(() => {});
  run.endings.add(tracked);
  tracked.finally(() => run.endings.delete(tracked));
}

/** How often a failing auto-merge request is made for one PR. */
const AUTO_MERGE_TRIES = 3;

/**
 * `--auto-merge`: once an open PR's checks pass and no review blocks it, ask
 * once for it to merge by itself (the provider's `gh pr merge --auto --squash`).
 */
function askAutoMerge(run: RunState, flight: Flight, pr: PrState | undefined): void {
  const ask = run.deps.provider.requestAutoMerge;
  if (!run.config.autoMerge || !ask || flight.autoMergeAsked) return;
  if ((flight.autoMergeTries ?? 0) >= AUTO_MERGE_TRIES) return;
  if (pr?.state !== "open" || pr.number === undefined || !pr.review) return;
  const r = pr.review;
  const blocked = r.conflicting || r.reviewDecision === "CHANGES_REQUESTED" ||
    r.reviewDecision === "REVIEW_REQUIRED";
  if (r.checks !== "passing" || blocked) return;
  flight.autoMergeAsked = true;
  flight.autoMergeTries = (flight.autoMergeTries ?? 0) + 1;
  const number = pr.number;
  const ids = { gapId: flight.dispatch.gap.id, leaseId: flight.dispatch.leaseId };
  background(
    run,
    ask.call(run.deps.provider, number).then((done) => {
      // A request that failed is made again at a later tick, a few times at most.
      if (!done.ok) flight.autoMergeAsked = false;
      run.report.report({
        kind: "auto_merge",
        ids,
        pr: number,
        ...(done.ok ? {} : { error: done.error }),
      });
    }),
  );
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
    case "fix": {
      const review = flight.lastPr?.state === "open" ? flight.lastPr.review : undefined;
      if (!review) return;
      flight.fixing = true;
      return background(run, startFixRound(run, flight, decision.reasons, review));
    }
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
  for (const flight of unsettled(run)) {
    if (flight.fixing) continue; // its old round exited; the interrupt ends it with the rest
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
