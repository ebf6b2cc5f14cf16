/**
 * Filling free slots: the steps of watch/schedule.ts applied (due retries
 * first, then new picks, the `--max-total` budget), and starting one gap:
 * choose its agent (watch/routing.ts), claim it in the shared ledger when
 * there is one (watch/fleet_gate.ts), dispatch it (dispatch/dispatch.ts) and
 * watch it from then on. A gap is picked once per run, whatever happens; a
 * gap another orchestrator took first is not ours to retry and costs no
 * `--max-total` slot.
 *
 * @module
 */
import type { Gap } from "../backlog/gap.ts";
import { pickGaps } from "../backlog/picker.ts";
import { type Dispatch, dispatchGap } from "../dispatch/dispatch.ts";
import { branchFor, worktreeFor } from "../git/slug.ts";
import { deadlineFor } from "../util/duration.ts";
import { chooseAgent } from "./routing.ts";
import { budgetAllows } from "./spend.ts";
import { fillStep } from "./schedule.ts";
import {
  type Flight,
  pollTimeoutFor,
  prLabel,
  type RunState,
  slotsInUse,
  stopped,
} from "./state.ts";
import { noAgent } from "../process/spawn.ts";
import type { TakenOver } from "../store/pg/claims.ts";
import type { GapBackoff } from "../store/backoff.ts";

/**
 * Pick and dispatch until the slots (or the `--max-total` budget) are used up.
 *
 * @example
 * ```ts ignore
 * await fill(run);
 * ```
 */
export async function fill(run: RunState): Promise<void> {
  const { config, queue } = run;
  while (!stopped(run)) {
    if (!budgetAllows(run) || !baseAllows(run)) return;
    const room = {
      free: config.maxParallel - slotsInUse(run),
      left: config.maxTotal === undefined ? undefined : config.maxTotal - queue.attempts,
    };
    const step = fillStep(room, queue.waiting, run.now(), run.fleet?.holds ?? false);
    switch (step.kind) {
      case "done":
        return;
      case "spent":
        for (const { gap } of queue.waiting.values()) {
          run.report.report({ kind: "no_retry", gapId: gap.id });
        }
        queue.waiting.clear();
        return;
      case "retry":
        queue.waiting.delete(step.gap.id);
        if (await start(run, step.gap)) queue.attempts++;
        if (run.fleet?.holds) return;
        continue;
      case "pick":
        if (!await pickAndStart(run, step.limit)) return;
    }
  }
}

/**
 * `--pause-when-base-red`: nothing new while the base branch's head commit
 * has failing checks (as the last poll saw them), said once (`PAUSED:`), and
 * once more when it is green again (`RESUMED:`).
 */
function baseAllows(run: RunState): boolean {
  if (!run.config.pauseWhenBaseRed) return true;
  const base = run.deps.provider.base?.();
  if (base?.red) {
    if (run.paused === undefined) {
      run.paused =
        `${run.config.baseRef} is red (${base.failing.join(", ") || "checks"} failing); ` +
        "nothing new is dispatched until it is green, running agents go on";
      run.report.report({ kind: "paused", message: run.paused });
    }
    return false;
  }
  if (run.paused !== undefined) {
    run.paused = undefined;
    run.report.report({ kind: "resumed" });
  }
  return true;
}

/** Pick up to `limit` new gaps and start them; false when there was nothing to pick (or the fleet holds). */
async function pickAndStart(run: RunState, limit: number): Promise<boolean> {
  const { config, queue } = run;
  const options = {
    limit,
    order: config.order,
    dispatched: queue.dispatched,
    shipped: queue.shipped,
  };
  // Leases cost a process listing: only look when there is something to pick.
  if (pickGaps(queue.gaps, options).length === 0) return false;
  const leased = await leasedGaps(run);
  const picks = pickGaps(queue.gaps, { ...options, leased });
  if (picks.length === 0) return false;
  for (const gap of picks) {
    if (stopped(run)) return false;
    queue.dispatched.add(gap.id);
    if (await start(run, gap)) queue.attempts++;
    if (run.fleet?.holds) return false;
  }
  return true;
}

/**
 * Gaps held by live leases, this host's and (with a shared ledger) the
 * fleet's. A ledger that cannot be read is said, and the pick goes on as if
 * nothing were leased: the lease itself still refuses a held gap.
 */
async function leasedGaps(run: RunState): Promise<Set<string>> {
  const local = await run.deps.ledger?.liveGapIds();
  // Said once while it lasts, as the shared ledger's silence is.
  if (local && !local.ok && !run.queue.leasesUnread) {
    run.report.report({ kind: "leases_unread", error: local.error });
  }
  run.queue.leasesUnread = local !== undefined && !local.ok;
  const leased = local?.ok ? local.value : new Set<string>();
  for (const id of await run.fleet?.liveGapIds() ?? []) leased.add(id);
  for (const id of await heldBackGaps(run)) leased.add(id);
  return leased;
}

/**
 * Gaps held back after failures in a row (store/backoff.ts), this host's
 * ledger's and the fleet's; each that the backlog would offer now is said
 * once per run (`PARKED:` / `BACKOFF:`). Unknown (a ledger that cannot be
 * read) is none: the shared claim still refuses a held-back gap.
 */
async function heldBackGaps(run: RunState): Promise<Set<string>> {
  const { ledger, shared } = run.deps;
  const held = new Map<string, GapBackoff>();
  for (const read of [await ledger?.heldBack(), await shared?.heldBack?.()]) {
    if (read?.ok) { for (const b of read.value) held.set(b.gapId, b); }
  }
  if (held.size === 0) return new Set();
  const { queue, config } = run;
  const offered = pickGaps(queue.gaps, {
    limit: Infinity,
    order: config.order,
    dispatched: queue.dispatched,
    shipped: queue.shipped,
  });
  queue.heldSaid ??= new Set();
  for (const gap of offered) {
    const b = held.get(gap.id);
    if (!b || queue.heldSaid.has(gap.id)) continue;
    queue.heldSaid.add(gap.id);
    run.report.report({ kind: "held_back", backoff: b, now: run.now() });
  }
  return new Set(held.keys());
}

/**
 * Start one gap; a failure is reported and counted, a success starts its
 * flight. Returns whether this was an attempt (false: it waits, or another
 * orchestrator holds it).
 */
async function start(run: RunState, gap: Gap): Promise<boolean> {
  const { config, deps } = run;
  const slug = run.queue.slugs.get(gap.id)!;
  const worktree = worktreeFor(config.repoRoot, slug);
  const choice = chooseAgent(config, gap, run.now());
  if (choice.kind === "wait") {
    run.queue.waiting.set(gap.id, { gap, at: choice.until });
    run.report.report({ kind: "cooling_wait", gapId: gap.id, inMs: choice.until - run.now() });
    return false;
  }
  if (choice.kind === "error") return failed(run, gap, choice.error);
  // What the run has learned so far, for this gap on this arm.
  const arm = choice.arm?.arm;
  const deadlineMs = config.deadlineOf?.(gap, arm) ?? deadlineFor(gap.effort, config.deadlines);
  const earlyEndMs = config.earlyEndOf?.(gap, arm);
  const maxWatchMs = config.maxWatchMs ?? 4 * deadlineMs;
  let sharedLeaseId: number | undefined;
  if (run.fleet) {
    const claim = await run.fleet.claim(gap.id, config.tickMs);
    if (claim.kind === "give_up") return failed(run, gap, claim.error);
    if (claim.kind === "wait") run.queue.waiting.set(gap.id, { gap, at: claim.at });
    if (claim.kind !== "won") return false;
    sharedLeaseId = claim.leaseId;
    const request = { gap, slug, deadlineMs, maxWatchMs, sharedLeaseId };
    if (claim.tookOver && await watchTheirPr(run, request, claim.tookOver)) return true;
  }
  const r = await dispatchGap({
    gap,
    slug,
    branch: branchFor(slug),
    worktree,
    startCommit: config.startCommit,
    baseRef: config.baseRef,
    agent: choice.agent,
    detached: !config.watch,
    deadlineMs,
    maxWatchMs,
    sharedLeaseId,
  }, deps);
  if (!r.ok || r.value.kind === "taken") {
    if (sharedLeaseId !== undefined) await run.fleet?.release(sharedLeaseId);
  }
  if (!r.ok) return failed(run, gap, r.error);
  if (r.value.kind === "taken") {
    const holder = r.value.holder;
    run.report.report({
      kind: "taken_locally",
      gapId: gap.id,
      leaseId: holder.id,
      orchestratorPid: holder.orchestratorPid,
    });
    return false;
  }
  const d = r.value.dispatch;
  watch(run, d, {
    gap,
    deadlineMs,
    earlyEndMs,
    maxWatchMs,
    arm: choice.arm,
    lessons: choice.lessons,
  });
  run.report.report({
    kind: "dispatched",
    gapId: gap.id,
    leaseId: d.leaseId,
    fields: {
      pid: d.process.pid,
      worktree,
      branch: d.branch,
      backend: d.agent.label,
      deadline_ms: deadlineMs,
      arm: choice.arm?.arm ?? null,
      attempt: choice.arm?.attempt ?? 1,
    },
  });
  return true;
}

/**
 * A gap taken over from a host that stopped heartbeating: that host's agent
 * may have shipped (or opened a PR) before it went silent. Ask the PR
 * provider first: a PR (merged, open or closed) is watched to its outcome
 * with no agent of ours, and so is the gap when the provider cannot tell;
 * only a branch without a PR is dispatched again (false).
 */
async function watchTheirPr(
  run: RunState,
  r: { gap: Gap; slug: string; deadlineMs: number; maxWatchMs: number; sharedLeaseId: number },
  from: TakenOver,
): Promise<boolean> {
  const { config, deps } = run;
  const branch = branchFor(r.slug);
  const polled = await deps.provider.poll(
    [{ branch, startCommit: config.startCommit, startedAt: from.startedMs }],
    {
      timeoutMs: config.pollTimeoutMs ?? pollTimeoutFor(config.tickMs),
      signal: deps.interrupt?.stop,
    },
  );
  const pr = polled.ok ? polled.value.get(branch) : undefined;
  if (polled.ok && (pr === undefined || pr.state === "none")) return false;
  const dispatch: Dispatch = {
    gap: r.gap,
    slug: r.slug,
    branch,
    worktree: worktreeFor(config.repoRoot, r.slug),
    startCommit: config.startCommit,
    baseRef: config.baseRef,
    agent: { argv: [], label: "unknown" },
    detached: false,
    sharedLeaseId: r.sharedLeaseId,
    leaseId: null,
    leaseGeneration: 0,
    process: noAgent(from.startedMs),
    startedAt: from.startedMs,
  };
  watch(run, dispatch, { gap: r.gap, deadlineMs: r.deadlineMs, maxWatchMs: r.maxWatchMs });
  run.report.report({
    kind: "watching_pr",
    gapId: r.gap.id,
    from: from.host,
    ...(polled.ok ? { pr: prLabel(pr) } : { error: `the PR provider failed: ${polled.error}` }),
  });
  return true;
}

/** A dispatch failed: counted, reported; it was an attempt. */
function failed(run: RunState, gap: Gap, reason: string): boolean {
  run.result.failures.push({ gapId: gap.id, reason });
  run.report.report({ kind: "dispatch_failed", gapId: gap.id, reason });
  return true;
}

/**
 * Watch `dispatch` from now on (dispatched by this run, or adopted).
 *
 * @example
 * ```ts ignore
 * watch(run, dispatch, { deadlineMs, maxWatchMs });
 * ```
 */
export function watch(
  run: RunState,
  dispatch: Dispatch,
  f: Pick<Flight, "gap" | "deadlineMs" | "earlyEndMs" | "maxWatchMs" | "arm" | "lessons">,
): void {
  run.flights.set(dispatch.gap.id, { dispatch, ...f, warned: false, ending: false });
}
