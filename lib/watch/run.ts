/**
 * One execute-mode run: dispatch up to `--max-parallel` gaps, and with
 * `--watch` tick until every dispatch reached a terminal outcome, refilling
 * free slots from the backlog as agents finish (continuous, not in waves).
 *
 * The outer loop only sequences the steps, each in its own module: `fill`
 * (watch/fill.ts, following watch/schedule.ts), `tick` (watch/tick.ts: one
 * provider poll, then watch/decide.ts per dispatch), `finish`
 * (watch/finish.ts: end the group, settle, record) and the shared ledger's
 * heartbeat (watch/fleet_gate.ts). Everything the run says goes through one
 * observer (watch/observer.ts). A shipped gap counts as done for its
 * dependents; a gap is never dispatched twice in one run (no runaway
 * spend). An interrupt stops picking, records what was already known about
 * agents that had exited, ends every other agent and writes a `killed`
 * reflection for each; a hangup leaves them running for adoption.
 *
 * @module
 */
import type { Gap } from "../backlog/gap.ts";
import { pickGaps } from "../backlog/picker.ts";
import { assignSlugs } from "../git/slug.ts";
import { sleep } from "../util/sleep.ts";
import { fill, watch } from "./fill.ts";
import { finish } from "./finish.ts";
import { FleetGate } from "./fleet_gate.ts";
import type { LiveRow } from "./live.ts";
import { type Frame, RunObserver } from "./observer.ts";
import { nextDue } from "./schedule.ts";
import {
  leaving,
  prLabel,
  type RunConfig,
  type RunDeps,
  type RunState,
  stopped,
  unsettled,
  watched,
} from "./state.ts";
import { outcomeCounts, type RunResult } from "./summary.ts";
import { settleExited, tick } from "./tick.ts";
import { NO_EVENTS } from "./events.ts";
import { PROVIDER_DOWN_TICKS } from "./decide.ts";
import { flightCost, runSpend } from "./spend.ts";
import { type DispatchCost, formatUsd } from "../cost/prices.ts";

/**
 * Dispatch and (with `watch`) monitor gaps until every dispatch is terminal.
 *
 * @param gaps the backlog, in file order
 * @param config the run's settings
 * @param deps side effects
 * @returns outcomes, dispatch failures, and whether it was interrupted
 * @example
 * ```ts ignore
 * const result = await runDispatches(backlog.gaps, config, deps);
 * ```
 */
export async function runDispatches(
  gaps: readonly Gap[],
  config: RunConfig,
  deps: RunDeps,
): Promise<RunResult> {
  const run = newRun(gaps, config, deps);
  for (const a of deps.adopted ?? []) {
    const d = a.dispatch;
    run.queue.dispatched.add(d.gap.id);
    watch(run, d, { deadlineMs: a.deadlineMs, maxWatchMs: a.maxWatchMs });
    run.report.report({
      kind: "adopted",
      ids: { gapId: d.gap.id, leaseId: d.leaseId },
      fields: {
        pid: d.process.pid,
        running_ms: run.now() - d.startedAt,
        deadline_ms: a.deadlineMs,
        ended: d.process.exitCode !== null,
      },
    });
  }
  await readDaySpend(run);
  // The base branch's checks before anything is dispatched (`--pause-when-base-red`).
  if (config.pauseWhenBaseRed && !stopped(run)) await tick(run, true);
  // What ended while nobody watched is settled at once, before anything new starts.
  if (run.flights.size > 0 && !stopped(run)) await tick(run);
  await fill(run);
  run.report.redraw();
  if (config.watch) await watchAll(run);
  else await leaveUnwatched(run);
  await identified(run);
  await heartbeat(run, true);
  return run.result;
}

/** A fresh run's state. */
function newRun(gaps: readonly Gap[], config: RunConfig, deps: RunDeps): RunState {
  const now = deps.now ?? Date.now;
  const sinks = { out: deps.out, err: deps.err, events: deps.events ?? NO_EVENTS, live: deps.live };
  const report = new RunObserver(sinks, () => frame(run));
  const run: RunState = {
    config,
    deps,
    now,
    report,
    flights: new Map(),
    endings: new Set(),
    queue: {
      gaps,
      slugs: assignSlugs(gaps.map((g) => g.id)),
      dispatched: new Set(),
      shipped: new Set(),
      waiting: new Map(),
      attempts: 0,
    },
    counters: { startedMs: now(), tickNo: 0, failedPolls: 0, providerErrors: 0, writeFailures: 0 },
    fleet: deps.shared ? new FleetGate(deps.shared, report, now) : undefined,
    result: { outcomes: [], failures: [], detached: 0 },
    money: {},
  };
  return run;
}

/** Without --watch: agents keep running after we exit, unless the operator interrupted the dispatch. */
async function leaveUnwatched(run: RunState): Promise<void> {
  if (stopped(run) && !leaving(run)) await interruptAll(run);
  else run.result.detached = run.flights.size;
  for (const { gap } of run.queue.waiting.values()) {
    run.report.report({ kind: "not_dispatched", gapId: gap.id });
  }
}

/** With --watch: tick, heartbeat and refill until nothing is in flight or waiting. */
async function watchAll(run: RunState): Promise<void> {
  // A paused run waits for its base branch to turn green, polling it each tick (while the
  // provider answers: one that keeps failing cannot say it turned green).
  const paused = () => run.paused !== undefined && run.counters.failedPolls < PROVIDER_DOWN_TICKS;
  while (run.flights.size > 0 || run.queue.waiting.size > 0 || paused()) {
    await pause(run);
    if (!stopped(run)) await tick(run);
    await heartbeat(run);
    if (stopped(run)) break;
    // Let finished kills record before refilling, so slots free up as soon as possible.
    await Promise.race([Promise.all([...run.endings]), sleep(0)]);
    await fill(run);
    run.report.redraw();
  }
  if (stopped(run)) {
    if (leaving(run)) await leaveAll(run);
    else {
      settleExited(run);
      await interruptAll(run);
    }
  }
  await Promise.all([...run.endings]);
}

/** Wait for the next step: a tick, the first due retry, or the endings in progress. */
async function pause(run: RunState): Promise<void> {
  const { tickMs } = run.config;
  const stop = run.deps.interrupt?.stop;
  if (run.flights.size === 0) {
    // Only gaps waiting for their next attempt: sleep until the first is due.
    const due = nextDue(run.queue.waiting) - run.now();
    await sleep(Math.max(0, Math.min(tickMs, due)), stop);
  } else if (watched(run).length === 0) {
    // Only endings in progress: they need no tick; refill as soon as they are done.
    await Promise.race([Promise.all([...run.endings]), sleep(tickMs, stop)]);
  } else {
    await sleep(tickMs, stop);
  }
}

/** The last 24 hours' spend of everyone else (`--budget-day`); unknown keeps the last figure. */
async function readDaySpend(run: RunState): Promise<void> {
  if (run.config.budgets?.dayUsd === undefined || !run.deps.daySpend) return;
  const spent = await run.deps.daySpend();
  if (spent.ok) run.money.dayBefore = spent.value;
}

/**
 * Record the run's counters in its `chump_runs` row, heartbeat the shared
 * ledger, and learn what other orchestrators recorded meanwhile.
 */
async function heartbeat(run: RunState, ended = false): Promise<void> {
  const { ledger, runId } = run.deps;
  if (!ended) {
    await readDaySpend(run);
    // In the background: a slow or absent ledger never holds up the tick.
    void run.config.learned?.refresh();
  }
  if (run.fleet) {
    const flights = [...run.flights.values()];
    const lost = ended
      ? await run.fleet.end(flights, run.config.ledgerExitWaitMs ?? 0)
      : await run.fleet.beat(flights, false);
    for (const flight of lost) {
      finish(run, flight, {
        outcome: "killed",
        reason: `lease taken over by ${flight.lostTo}`,
        siblings: run.flights.size - 1,
      });
    }
  }
  if (!ledger || runId === undefined || !run.config.watch) return;
  const c = run.counters;
  await ledger.heartbeat({
    runId,
    startedMs: c.startedMs,
    endedMs: ended ? run.now() : undefined,
    ticks: c.tickNo,
    providerErrors: c.providerErrors,
    writeFailures: c.writeFailures,
    liveAgents: ended ? 0 : run.flights.size,
    spentUsd: spentLabel(run) === undefined ? undefined : runSpend(run).run,
    budgets: run.config.budgets,
  });
}

/**
 * Stop on a hangup: outcomes already being recorded finish; every other
 * agent is left running under its waiter, its lease as it is (its
 * orchestrator, this process, is about to be gone), for the next watching
 * run to adopt. Nothing is killed and no reflection is written for them.
 */
async function leaveAll(run: RunState): Promise<void> {
  run.result.interrupted = run.deps.interrupt?.signalName() ?? "SIGHUP";
  run.report.report({
    kind: "interrupted",
    fields: { signal: run.result.interrupted, left_running: true },
  });
  await Promise.all([...run.endings]);
  run.result.leftRunning = watched(run).length;
}

/** Stop: end every live agent with a `killed` reflection naming the signal. */
async function interruptAll(run: RunState): Promise<void> {
  const name = run.deps.interrupt?.signalName() ?? "SIGINT";
  run.result.interrupted = name;
  run.report.report({ kind: "interrupted", fields: { signal: name, left_running: false } });
  const live = unsettled(run);
  const siblings = run.flights.size - 1;
  for (const flight of live) {
    finish(run, flight, { outcome: "killed", reason: `interrupted by ${name}`, siblings });
  }
  await Promise.all([...run.endings]);
}

/** Every exact identity still being learned is in the lease before the run returns. */
async function identified(run: RunState): Promise<void> {
  run.deps.processes.flushIdentify();
  await Promise.all([...run.flights.values()].map((f) => f.dispatch.identified));
}

/** What the live view shows now: the flights, and the run's totals. */
function frame(run: RunState): Frame {
  const t = run.now();
  const rows: LiveRow[] = [...run.flights.values()].map((f) => {
    const d = f.dispatch;
    const code = d.process.exitCode;
    return {
      gapId: d.gap.id,
      backend: f.arm?.arm ?? d.agent.label,
      state: (f.ending ? "ending" : code === null ? "running" : `exited ${code}`) +
        (f.fixRound ? ` (fix ${f.fixRound}/${run.config.fixRounds ?? f.fixRound})` : ""),
      elapsedMs: t - d.startedAt,
      deadlineMs: f.deadlineMs,
      idleMs: t - d.process.lastOutputAt,
      pr: prLabel(f.lastPr),
      cost: costLabel(flightCost(run, f)),
      lastWarning: d.process.tail.lines().at(-1) ?? "",
    };
  });
  const n = outcomeCounts(run.result);
  return {
    rows,
    totals: {
      running: run.flights.size,
      shipped: n.shipped,
      failed: n.ci_failed + n.stalled + n.killed + n.spawn_failures,
      queued: queued(run),
      nextTickMs: run.config.tickMs,
      spent: spentLabel(run),
    },
  };
}

/** A flight's cost for the live view: `$0.42`, `?` when its model has no price, blank without a session. */
function costLabel(c: DispatchCost | undefined): string {
  if (!c) return "";
  return c.usd === undefined ? "?" : formatUsd(c.usd);
}

/** What the run spent, against its budget: `$1.20 of $5.00`; blank when nothing spoke a session. */
function spentLabel(run: RunState): string | undefined {
  const costed = run.result.outcomes.some((o) => o.cost) ||
    [...run.flights.values()].some((f) => f.dispatch.process.session);
  if (!costed) return undefined;
  const spent = formatUsd(runSpend(run).run);
  const budget = run.config.budgets?.runUsd;
  return budget === undefined ? spent : `${spent} of ${formatUsd(budget)}`;
}

/** Pickable gaps not dispatched yet; counted again only when what was picked or shipped changed. */
function queued(run: RunState): number {
  const q = run.queue;
  const key = `${q.dispatched.size}/${q.shipped.size}`;
  if (q.queued?.key !== key) {
    const count = pickGaps(q.gaps, {
      limit: Infinity,
      order: run.config.order,
      dispatched: q.dispatched,
      shipped: q.shipped,
    }).length;
    q.queued = { key, count };
  }
  return q.queued.count;
}
