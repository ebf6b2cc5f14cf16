/**
 * Carrying a PR to merge: when a dispatch's PR is open and its checks
 * completed with a failure, a reviewer requested changes, or it conflicts
 * with its base, the agent is started again in the same worktree on the same
 * branch (a fix round, `--fix-rounds`, default 2) with a prompt that says what
 * is wrong; its Claude session is resumed when known. The lease and the
 * deadline clock go on; the dispatch still has one reflection, whose notes
 * say `fix_rounds=` and `fix_reasons=`. The reasons, the texts and the
 * prompt are pure (watch/fix_text.ts); {@linkcode startFixRound} does the round.
 *
 * @module
 */
import { resumeArgv } from "../dispatch/agent.ts";
import { respawnAgent } from "../dispatch/dispatch.ts";
import { oneLine } from "../util/text.ts";
import { errorMessage } from "../util/result.ts";
import { endGroup, finish } from "./finish.ts";
import type { PrReview } from "./providers/types.ts";
import { fixPrompt, type FixReason, reasonsText } from "./fix_text.ts";
import { flightCost } from "./spend.ts";
import { type Flight, type RunState, stopped } from "./state.ts";

/** Bytes of a failed check's log kept for the prompt (its end). */
const LOG_TAIL_BYTES = 6000;

/**
 * Start fix round `flight.fixRound + 1`: the failed checks' log tails (when
 * the provider gives them), the round's command (the dispatch's agent told
 * what is wrong; its Claude session resumed), the old round's process group
 * ended, the new agent started. A round that cannot start ends the dispatch
 * `stalled`, saying why.
 *
 * @example
 * ```ts ignore
 * await startFixRound(run, flight, ["ci_failed"], review);
 * ```
 */
export async function startFixRound(
  run: RunState,
  flight: Flight,
  reasons: readonly FixReason[],
  review: PrReview,
): Promise<void> {
  try {
    await fixRound(run, flight, reasons, review);
  } catch (e) {
    // Whatever went wrong, the dispatch is decided, not left waiting for a round that never came.
    flight.fixing = false;
    if (flight.ending) return;
    const pr = flight.lastPr?.state === "open" ? flight.lastPr.number : undefined;
    finish(run, flight, {
      outcome: "stalled",
      prNumber: pr,
      reason: `fix round ${(flight.fixRound ?? 0)} could not start: ${
        oneLine(errorMessage(e), 300)
      }`,
      siblings: run.flights.size - 1,
    });
  }
}

async function fixRound(
  run: RunState,
  flight: Flight,
  reasons: readonly FixReason[],
  review: PrReview,
): Promise<void> {
  const d = flight.dispatch;
  const round = (flight.fixRound ?? 0) + 1;
  const rounds = run.config.fixRounds ?? 0;
  const pr = flight.lastPr?.state === "open" ? flight.lastPr.number : undefined;
  const logs = await failedLogs(run, reasons, review);
  const prompt = fixPrompt({
    gapId: d.gap.id,
    pr,
    round,
    rounds,
    baseRef: run.config.baseRef,
    reasons,
    review,
    logs,
  });
  const remade = d.agent.remake!(prompt);
  const agent = {
    ...remade,
    argv: resumeArgv(remade.argv, remade.format, flightCost(run, flight)?.sessionId),
    remake: d.agent.remake,
  };
  // What the last round left running in its group goes first: one agent per worktree.
  await endGroup(run, d);
  // Stopped, or decided meanwhile (a stop, a take-over): no new agent. Nothing is awaited
  // between this look and the spawn, so none can start behind a decision.
  if (stopped(run) || flight.ending) {
    flight.fixing = false;
    return;
  }
  // What the rounds before cost stays the dispatch's: the old round's figures, taken now.
  const prior = flightCost(run, flight);
  flight.exitSeenAtTick = undefined;
  const started = await respawnAgent(d, run.deps, agent, round);
  if (started.ok) {
    flight.priorCost = prior;
    flight.priced = undefined;
    flight.fixRound = round;
    flight.fixReasons = [...new Set([...(flight.fixReasons ?? []), ...reasons])];
    flight.sentComments ??= new Set();
    for (const c of review.comments) flight.sentComments.add(c);
  }
  if (!started.ok) {
    flight.fixing = false;
    finish(run, flight, {
      outcome: "stalled",
      prNumber: pr,
      reason: `${pr === undefined ? "the PR" : `PR #${pr}`}: fix round ${round} could not start: ` +
        oneLine(started.error, 300),
      siblings: run.flights.size - 1,
    });
    return;
  }
  flight.fixing = false;
  run.report.report({
    kind: "fix_round",
    ids: { gapId: d.gap.id, leaseId: d.leaseId },
    text: reasonsText(reasons, review, run.config.baseRef),
    fields: {
      round,
      rounds,
      reasons: reasons.join(","),
      pr_number: pr ?? null,
      pid: started.value.pid,
      resumed: agent.argv.includes("--resume"),
    },
  });
}

/** The end of each failed check's log (when the provider gives them and the checks failed). */
async function failedLogs(
  run: RunState,
  reasons: readonly FixReason[],
  review: PrReview,
): Promise<Map<string, string>> {
  const logs = new Map<string, string>();
  if (reasons.includes("ci_failed") && run.deps.provider.failedLog) {
    for (const f of review.failing) {
      if (f.runId === undefined) continue;
      const log = await run.deps.provider.failedLog(f.runId, {
        maxBytes: LOG_TAIL_BYTES,
        signal: run.deps.interrupt?.stop,
      });
      if (log.ok && log.value.trim() !== "") logs.set(f.name, log.value.trimEnd());
    }
  }
  return logs;
}
