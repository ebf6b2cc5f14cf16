/**
 * One execute-mode run: dispatch up to `--max-parallel` gaps, and with
 * `--watch` tick until every dispatch reached a terminal outcome, refilling
 * free slots from the backlog as agents finish (continuous, not in waves).
 *
 * Per tick: ONE provider poll for all watched branches, then
 * {@linkcode decideTick} per dispatch. A terminal outcome ends the agent's
 * process group if it still runs, applies the worktree rule, writes the
 * reflection and ends the lease; kills run in the background so one agent's
 * grace never delays the others. A shipped gap counts as done for its
 * dependents; a gap is never dispatched twice in one run (no runaway spend).
 * An interrupt stops picking, ends every agent and writes a `killed`
 * reflection for each.
 *
 * @module
 */
import { agentCommandFor, type AgentTemplate } from "../dispatch/agent.ts";
import type { Gap } from "../backlog/load.ts";
import { deadlineFor, type Deadlines } from "../util/duration.ts";
import {
  cleanUpWorktree,
  type Dispatch,
  dispatchGap,
  type Workspace,
} from "../dispatch/dispatch.ts";
import type { Ledger } from "../store/ledger.ts";
import { decideTick } from "./decide.ts";
import { pickGaps, type PickOrder } from "../backlog/picker.ts";
import type { Spawner, TerminateResult } from "../process/spawn.ts";
import type { PrProvider, PrState } from "./providers/types.ts";
import {
  buildNotes,
  type DispatchReflection,
  gapDomain,
  type Outcome,
  type ReflectionWriter,
} from "../store/reflections.ts";
import { assignSlugs, branchFor, worktreeFor } from "../dispatch/slug.ts";
import { oneLine } from "../util/text.ts";

/** How the run behaves (from the CLI). */
export interface RunConfig {
  repoRoot: string;
  baseRef: string;
  /** The base ref's commit: every branch of this run starts here. */
  startCommit: string;
  maxParallel: number;
  maxTotal?: number;
  order: PickOrder;
  watch: boolean;
  tickMs: number;
  deadlines: Deadlines;
  maxWatchMs?: number;
  exitGraceTicks: number;
  killGraceMs: number;
  agent: AgentTemplate;
}

/** Asks a run to stop: `stop` first (stop picking, end agents), `hurry` to skip the kill grace. */
export interface Interrupt {
  readonly stop: AbortSignal;
  readonly hurry: AbortSignal;
  /** `SIGINT` or `SIGTERM` once stopped. */
  readonly signalName: () => string | undefined;
}

/** Everything with side effects, injected. */
export interface RunDeps {
  workspace: Workspace;
  spawner: Spawner;
  provider: PrProvider;
  writer: ReflectionWriter;
  ledger?: Ledger;
  terminate: (
    pgid: number,
    options: { graceMs: number; skipGrace?: AbortSignal },
  ) => Promise<TerminateResult>;
  out: (line: string) => void;
  err: (line: string) => void;
  interrupt?: Interrupt;
  now?: () => number;
}

/** One terminal outcome of the run. */
export interface OutcomeRecord {
  gapId: string;
  outcome: Outcome;
  durationS: number;
  prNumber?: number;
  reason: string;
  /** Set when the worktree was kept: where and why. */
  kept?: string;
}

/** What a run did. */
export interface RunResult {
  outcomes: OutcomeRecord[];
  failures: { gapId: string; reason: string }[];
  /** Dispatches left running (no --watch). */
  detached: number;
  /** `SIGINT`/`SIGTERM` when the run was interrupted. */
  interrupted?: string;
}

/** A dispatch being watched. */
interface Flight {
  dispatch: Dispatch;
  deadlineMs: number;
  maxWatchMs: number;
  exitSeenAtTick?: number;
  warned: boolean;
  /** Set once a terminal decision was taken (its process may still be ending). */
  ending: boolean;
}

/** How long to wait for an ended agent's output streams to close before writing its reflection. */
const DRAIN_WAIT_MS = 2000;

/**
 * Dispatch and (with `watch`) monitor gaps until every dispatch is terminal.
 *
 * @param gaps the backlog, in file order
 * @param config the run's settings
 * @param deps side effects
 * @returns outcomes, dispatch failures, and whether it was interrupted
 * @example
 * ```ts
 * const result = await runDispatches(backlog.gaps, config, deps);
 * ```
 */
export async function runDispatches(
  gaps: readonly Gap[],
  config: RunConfig,
  deps: RunDeps,
): Promise<RunResult> {
  const now = deps.now ?? Date.now;
  const slugs = assignSlugs(gaps.map((g) => g.id));
  const inflight = new Map<string, Flight>();
  const dispatched = new Set<string>();
  const shipped = new Set<string>();
  const endings = new Set<Promise<void>>();
  const result: RunResult = { outcomes: [], failures: [], detached: 0 };
  let attempts = 0;
  let tickNo = 0;
  const stopped = () => deps.interrupt?.stop.aborted ?? false;

  const fill = async () => {
    while (!stopped()) {
      const free = config.maxParallel - inflight.size;
      const budget = config.maxTotal === undefined
        ? free
        : Math.min(free, config.maxTotal - attempts);
      if (budget <= 0) return;
      const options = { limit: budget, order: config.order, dispatched, shipped };
      // Leases cost a process listing: only look when there is something to pick.
      if (pickGaps(gaps, options).length === 0) return;
      const picks = pickGaps(gaps, { ...options, leased: await deps.ledger?.liveGapIds() });
      if (picks.length === 0) return;
      for (const gap of picks) {
        if (stopped()) return;
        attempts++;
        dispatched.add(gap.id);
        await dispatchOne(gap);
      }
    }
  };

  const dispatchOne = async (gap: Gap) => {
    const slug = slugs.get(gap.id)!;
    const worktree = worktreeFor(config.repoRoot, slug);
    const r = await dispatchGap(
      {
        gap,
        slug,
        branch: branchFor(slug),
        worktree,
        startCommit: config.startCommit,
        baseRef: config.baseRef,
        agent: agentCommandFor(config.agent, gap.id),
        detached: !config.watch,
      },
      deps,
    );
    if (!r.ok) {
      result.failures.push({ gapId: gap.id, reason: r.error });
      deps.out(`DISPATCH-FAILED: ${oneLine(gap.id)}: ${oneLine(r.error, 500)}`);
      return;
    }
    deps.out(`DISPATCHED: ${oneLine(gap.id)} in ${worktree} as PID ${r.value.process.pid}`);
    const deadlineMs = deadlineFor(gap.effort, config.deadlines);
    inflight.set(gap.id, {
      dispatch: r.value,
      deadlineMs,
      maxWatchMs: config.maxWatchMs ?? 4 * deadlineMs,
      warned: false,
      ending: false,
    });
  };

  /** End a flight: stop its agent if needed, then clean up and record. */
  const end = (
    flight: Flight,
    outcome: Outcome,
    reason: string,
    prNumber: number | undefined,
    siblings: number,
  ) => {
    flight.ending = true;
    const durationS = Math.max(0, Math.floor((now() - flight.dispatch.startedAt) / 1000));
    const job = (async () => {
      const proc = flight.dispatch.process;
      if (proc.exitCode === null) {
        const t = await deps.terminate(proc.pgid, {
          graceMs: config.killGraceMs,
          skipGrace: deps.interrupt?.hurry,
        });
        if (!t.gone) {
          deps.err(
            `warning: process group ${proc.pgid} of ${flight.dispatch.gap.id} did not go away`,
          );
        }
      }
      await Promise.race([proc.exited, sleep(DRAIN_WAIT_MS)]);
      await record(flight, { outcome, reason, prNumber, durationS, siblings });
      inflight.delete(flight.dispatch.gap.id);
    })();
    endings.add(job);
    job.finally(() => endings.delete(job));
  };

  const record = async (
    flight: Flight,
    o: { outcome: Outcome; reason: string; prNumber?: number; durationS: number; siblings: number },
  ) => {
    const d = flight.dispatch;
    const kept = await cleanUpWorktree(deps.workspace, d, { shipped: o.outcome === "shipped" });
    const notes = buildNotes(o.reason, d.agent.label, d.process.tail.lines());
    const reflection: DispatchReflection = {
      gapId: d.gap.id,
      effort: d.gap.effort || "unknown",
      domain: gapDomain(d.gap.id),
      outcome: o.outcome,
      durationS: o.durationS,
      parallelSiblings: o.siblings,
      prNumber: o.prNumber,
      notes,
      leaseId: d.leaseId ?? undefined,
    };
    const receipt = await deps.writer.write(reflection);
    if (receipt.stored === "spool") {
      deps.err(
        `warning: reflection for ${d.gap.id} spooled to ${receipt.path} (${receipt.reason})`,
      );
    } else if (receipt.stored === "stderr") {
      deps.err(`warning: reflection for ${d.gap.id} printed above, not stored (${receipt.reason})`);
    }
    if (d.leaseId !== null && deps.ledger) {
      const ended = await deps.ledger.end(d.leaseId, o.outcome, notes);
      if (!ended.ok) deps.err(`warning: ${ended.error}`);
    }
    if (o.outcome === "shipped") shipped.add(d.gap.id);
    const rec: OutcomeRecord = {
      gapId: d.gap.id,
      outcome: o.outcome,
      durationS: o.durationS,
      prNumber: o.prNumber,
      reason: o.reason,
      kept,
    };
    result.outcomes.push(rec);
    deps.out(outcomeLine(rec));
  };

  const tick = async () => {
    tickNo++;
    const watched = [...inflight.values()].filter((f) => !f.ending);
    if (watched.length === 0) return;
    const siblings = inflight.size - 1;
    const polled = await deps.provider.poll(watched.map((f) => ({
      branch: f.dispatch.branch,
      startCommit: f.dispatch.startCommit,
      startedAt: f.dispatch.startedAt,
    })));
    if (!polled.ok) {
      deps.err(
        `warning: PR provider ${deps.provider.name} failed: ${
          oneLine(polled.error, 300)
        }; retrying next tick`,
      );
    }
    const t = now();
    for (const flight of watched) {
      if (stopped()) return;
      const proc = flight.dispatch.process;
      const exitCode = proc.exitCode;
      if (exitCode !== null && flight.exitSeenAtTick === undefined) flight.exitSeenAtTick = tickNo;
      const pr: PrState | undefined = polled.ok
        ? polled.value.get(flight.dispatch.branch) ?? { state: "none" }
        : undefined;
      const decision = decideTick({
        pr,
        exitCode,
        ticksSinceExit: exitCode === null ? 0 : tickNo - flight.exitSeenAtTick!,
        elapsedMs: t - flight.dispatch.startedAt,
        deadlineMs: flight.deadlineMs,
        maxWatchMs: flight.maxWatchMs,
        exitGraceTicks: config.exitGraceTicks,
        warned: flight.warned,
      });
      switch (decision.kind) {
        case "watch":
          break;
        case "warn": {
          flight.warned = true;
          const quiet = Math.round((t - proc.lastOutputAt) / 1000);
          deps.err(
            `warning: STALLED: ${flight.dispatch.gap.id} ${decision.message}; ` +
              `last output ${quiet}s ago (PID ${proc.pid})`,
          );
          break;
        }
        case "kill":
          deps.out(`KILLING: ${flight.dispatch.gap.id} (${decision.reason}): PID ${proc.pid}`);
          end(flight, "killed", decision.reason, undefined, siblings);
          break;
        case "terminal":
          end(flight, decision.outcome, decision.reason, decision.prNumber, siblings);
          break;
      }
    }
  };

  const interruptAll = async () => {
    const name = deps.interrupt?.signalName() ?? "SIGINT";
    result.interrupted = name;
    const live = [...inflight.values()].filter((f) => !f.ending);
    const siblings = inflight.size - 1;
    for (const flight of live) end(flight, "killed", `interrupted by ${name}`, undefined, siblings);
    await Promise.all([...endings]);
  };

  await fill();
  if (!config.watch) {
    // Unwatched agents keep running after we exit, unless the operator interrupted the dispatch.
    if (stopped()) await interruptAll();
    else result.detached = inflight.size;
    return result;
  }
  while (inflight.size > 0) {
    await sleep(config.tickMs, deps.interrupt?.stop);
    if (!stopped()) await tick();
    if (stopped()) {
      await interruptAll();
      break;
    }
    // Let finished kills record before refilling, so slots free up as soon as possible.
    await Promise.race([Promise.all([...endings]), sleep(0)]);
    await fill();
  }
  await Promise.all([...endings]);
  return result;
}

/**
 * One line per terminal outcome.
 *
 * @example
 * ```ts
 * outcomeLine({ gapId: "A-1", outcome: "shipped", durationS: 42, prNumber: 7, reason: "" });
 * // "OUTCOME: A-1 shipped duration_s=42 pr=#7"
 * ```
 */
export function outcomeLine(o: OutcomeRecord): string {
  const pr = o.prNumber === undefined ? "none" : `#${o.prNumber}`;
  const reason = o.reason ? ` -- ${oneLine(o.reason, 300)}` : "";
  const kept = o.kept ? ` [worktree kept: ${o.kept}]` : "";
  return `OUTCOME: ${
    oneLine(o.gapId)
  } ${o.outcome} duration_s=${o.durationS} pr=${pr}${reason}${kept}`;
}

/**
 * The end-of-run summary: one line per gap, then the totals line of the contract.
 *
 * @example
 * ```ts
 * summaryLines(result).at(-1); // "shipped=4  ci_failed=0  stalled=0  killed=0  spawn_failures=0"
 * ```
 */
export function summaryLines(result: RunResult): string[] {
  const lines = ["SUMMARY:"];
  for (const o of result.outcomes) lines.push(`  ${outcomeLine(o).slice("OUTCOME: ".length)}`);
  for (const f of result.failures) {
    lines.push(`  ${oneLine(f.gapId)} spawn_failed -- ${oneLine(f.reason, 300)}`);
  }
  const n = (o: Outcome) => result.outcomes.filter((x) => x.outcome === o).length;
  lines.push(
    `shipped=${n("shipped")}  ci_failed=${n("ci_failed")}  stalled=${n("stalled")}  ` +
      `killed=${n("killed")}  spawn_failures=${result.failures.length}`,
  );
  const kept = result.outcomes.filter((o) => o.kept);
  if (kept.length > 0) {
    lines.push(`worktrees kept (they hold work): ${kept.map((o) => o.kept).join("; ")}`);
  }
  return lines;
}

/**
 * Exit code of a run (CONTRACT §6): 130 interrupted, 1 a dispatch failed,
 * 3 a watched outcome other than shipped, else 0.
 *
 * @example
 * ```ts
 * runExitCode({ outcomes: [], failures: [], detached: 0 }, true); // 0
 * ```
 */
export function runExitCode(result: RunResult, watch: boolean): number {
  if (result.interrupted) return 130;
  if (result.failures.length > 0) return 1;
  if (watch && result.outcomes.some((o) => o.outcome !== "shipped")) return 3;
  return 0;
}

/** Resolve after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
