/**
 * The simulator: the real decision code (picker, the run's scheduling
 * (watch/schedule.ts), routing table, scoreboard, policy, adaptive
 * deadlines, cascade retries and cool-downs, the failure classifier, the
 * deadline kill's reason and the notes codec) against a simulated clock and
 * simulated agents whose hidden success probabilities the world file
 * declares; no processes, no git. Runs follow each other (`run_size`
 * dispatches each, like `--max-total`), and each run reads the scoreboard
 * and deadlines from the reflections of the runs before it, as a real run
 * reads its DB. Deterministic for a seed; each dispatch's luck comes from
 * its own stream, so two policies on one seed meet the same world.
 *
 * @module
 */
import type { Gap } from "../backlog/load.ts";
import { pickGaps } from "../backlog/picker.ts";
import { encodeNotes } from "../store/notes.ts";
import { gapDomain } from "../store/reflection.ts";
import { deadlineFor } from "../util/duration.ts";
import { Cascade } from "../learn/cascade.ts";
import { classify, Cooldowns } from "../learn/classify.ts";
import { adaptiveDeadlines } from "../learn/deadlines.ts";
import { normal, type Ranked, seededRandom } from "../learn/policy.ts";
import { scoreboardOf, type ScoredRow } from "../learn/scoreboard.ts";
import { deadlineReason } from "../watch/decide.ts";
import { fillStep, nextDue, type Waiting } from "../watch/schedule.ts";
import { type World, worldGaps } from "./world.ts";

export { loadWorld, type World, type WorldArm } from "./world.ts";

/** The policies the simulator compares: the two of `--learn`, and one that knows the world. */
export type SimPolicy = "fixed" | "thompson" | "oracle";

/** What a simulation measured. */
export interface SimResult {
  policy: SimPolicy;
  seed: number;
  adaptiveDeadlines: boolean;
  dispatches: number;
  runs: number;
  ships: number;
  agent_hours: number;
  ships_per_agent_hour: number;
  wasted_agent_minutes: number;
  rate_limit_hits: number;
  /** Expected ships lost against always taking the best arm of the cascade (hidden probabilities). */
  regret: number;
  /** Simulated wall-clock hours. */
  hours: number;
}

/** How to simulate. */
export interface SimOptions {
  policy: SimPolicy;
  dispatches: number;
  seed: number;
  adaptiveDeadlines?: boolean;
  maxAttempts?: number;
}

const MINUTE = 60_000;

/** An attempt in flight. */
interface SimAttempt {
  gap: Gap;
  pick: Ranked;
  attempt: number;
  startAt: number;
  endAt: number;
  outcome: "shipped" | "killed";
  reason: string;
  tail: string[];
}

type Row = ScoredRow & { effort: string; domain: string; durationS: number };

/** The whole simulation: the world, its clock, the reflections so far, what was measured. */
interface Sim {
  readonly world: World;
  readonly options: SimOptions;
  readonly gaps: Gap[];
  readonly rows: Row[];
  readonly shipped: Set<string>;
  /** Start times per arm, for rate limits. */
  readonly armStarts: Map<string, number[]>;
  now: number;
  dispatches: number;
  runs: number;
  ships: number;
  agentMs: number;
  wastedMs: number;
  rateLimitHits: number;
  regret: number;
}

/** One run of the simulation: its cascades and deadlines, what it picked, what waits and flies. */
interface SimRun {
  readonly cascade: Cascade;
  readonly deadlineOf: (gap: Gap) => number;
  readonly dispatched: Set<string>;
  readonly waiting: Map<string, Waiting>;
  readonly inflight: SimAttempt[];
  attempts: number;
}

/**
 * Simulate `dispatches` dispatches of `world` under `policy`.
 *
 * @example
 * ```ts ignore
 * const r = simulate(world, { policy: "thompson", dispatches: 500, seed: 1 });
 * console.log(r.ships_per_agent_hour);
 * ```
 */
export function simulate(world: World, options: SimOptions): SimResult {
  const sim: Sim = {
    world,
    options,
    gaps: worldGaps(world, options.seed),
    rows: [],
    shipped: new Set(),
    armStarts: new Map(),
    now: 0,
    dispatches: 0,
    runs: 0,
    ships: 0,
    agentMs: 0,
    wastedMs: 0,
    rateLimitHits: 0,
    regret: 0,
  };
  while (sim.dispatches < options.dispatches) {
    sim.runs++;
    const run = newRun(sim);
    fill(sim, run);
    if (run.inflight.length === 0 && run.waiting.size === 0) break; // all shipped or blocked
    while (run.inflight.length > 0 || run.waiting.size > 0) {
      const nextEnd = Math.min(...run.inflight.map((a) => a.endAt));
      // A waiting gap moves the clock only when it could start (a slot is free).
      const nextWait = run.inflight.length < world.maxParallel ? nextDue(run.waiting) : Infinity;
      sim.now = Math.max(sim.now, Math.min(nextEnd, nextWait));
      for (const a of run.inflight.filter((x) => x.endAt <= sim.now)) end(sim, run, a);
      fill(sim, run);
    }
  }
  return resultOf(sim);
}

/** A run reads the reflections of the runs before it, as a real run reads its DB. */
function newRun(sim: Sim): SimRun {
  const { world, options } = sim;
  const hidden = (ranked: Ranked[], taskClass: string) =>
    [...ranked].sort((a, b) =>
      hiddenOdds(sim, b.arm, taskClass, sim.dispatches) -
      hiddenOdds(sim, a.arm, taskClass, sim.dispatches)
    );
  const cascade = new Cascade({
    table: world.table,
    scores: scoreboardOf(sim.rows, { table: world.table }),
    policy: options.policy === "thompson" ? "thompson" : "fixed",
    random: seededRandom(options.seed * 7919 + sim.runs),
    maxAttempts: options.maxAttempts ?? 3,
    cooldowns: new Cooldowns(),
    order: options.policy === "oracle" ? hidden : undefined,
  });
  const adaptive = options.adaptiveDeadlines ?? true;
  const deadlines = adaptive ? adaptiveDeadlines(sim.rows, world.deadlines) : undefined;
  return {
    cascade,
    deadlineOf: (g) =>
      deadlines ? deadlines.of(g.effort, gapDomain(g.id)) : deadlineFor(g.effort, world.deadlines),
    dispatched: new Set(),
    waiting: new Map(),
    inflight: [],
    attempts: 0,
  };
}

/** Start attempts while the run's schedule allows (watch/schedule.ts, as the real run). */
function fill(sim: Sim, run: SimRun): void {
  for (;;) {
    const room = {
      free: sim.world.maxParallel - run.inflight.length,
      left: Math.min(sim.world.runSize - run.attempts, sim.options.dispatches - sim.dispatches),
    };
    const step = fillStep(room, run.waiting, sim.now, false);
    if (step.kind === "done") return;
    if (step.kind === "spent") return run.waiting.clear();
    if (step.kind === "retry") {
      run.waiting.delete(step.gap.id);
      start(sim, run, step.gap);
      continue;
    }
    const picks = pickGaps(sim.gaps, {
      limit: step.limit,
      dispatched: run.dispatched,
      shipped: sim.shipped,
    });
    if (picks.length === 0) return;
    for (const gap of picks) {
      run.dispatched.add(gap.id);
      start(sim, run, gap);
    }
  }
}

/** Start the gap's next attempt on its cascade's next arm (or make it wait for a cooling arm). */
function start(sim: Sim, run: SimRun, gap: Gap): void {
  const next = run.cascade.next(gap, sim.now);
  if (next.kind === "wait") {
    run.waiting.set(gap.id, { gap, at: next.until });
    return;
  }
  if (next.kind === "none") return;
  const { pick, attempt, taskClass } = next.attempt;
  const world = sim.world;
  const limit = world.arms[pick.arm]?.rateLimit;
  const starts = (sim.armStarts.get(pick.arm) ?? []).filter((t) =>
    t > sim.now - (limit?.windowMs ?? 0)
  );
  const at = { gap, pick, attempt, startAt: sim.now };
  const luck = seededRandom(sim.options.seed * 1_000_003 + sim.dispatches * 31 + attempt);
  let a: SimAttempt;
  if (limit && starts.length >= limit.requests) {
    sim.rateLimitHits++;
    a = ended(at, 20_000, "killed", "exit code 1", ["ERROR: API Error: 429 rate limit"]);
  } else if (luck() < world.transient) {
    a = ended(at, 10_000 + 50_000 * luck(), "killed", "exit code 1", ["ERROR: read ECONNRESET"]);
  } else {
    const p = hiddenOdds(sim, pick.arm, taskClass, sim.dispatches);
    const best = Math.max(
      ...run.cascade.candidatesOf(gap.id).map((r) =>
        hiddenOdds(sim, r.arm, taskClass, sim.dispatches)
      ),
    );
    sim.regret += best - p;
    a = drawn(sim, at, luck, p, run.deadlineOf(gap));
  }
  sim.armStarts.set(pick.arm, [...starts, sim.now]);
  run.inflight.push(a);
  sim.dispatches++;
  run.attempts++;
}

/** An attempt that ships or fails by its arm's odds `p`, killed at twice its deadline if it runs on. */
function drawn(
  sim: Sim,
  at: Omit<SimAttempt, "endAt" | "outcome" | "reason" | "tail">,
  luck: () => number,
  p: number,
  deadline: number,
): SimAttempt {
  const succeeds = luck() < p;
  const hangs = !succeeds && luck() < sim.world.hang;
  const effort = sim.world.durations[at.gap.effort.toLowerCase()] ??
    Object.values(sim.world.durations)[0];
  const [median, sigma] = succeeds ? effort.shipped : effort.failed;
  const took = hangs ? Infinity : Math.exp(Math.log(median) + sigma * normal(luck));
  if (took > 2 * deadline) return ended(at, 2 * deadline, "killed", deadlineReason(deadline), []);
  return succeeds
    ? ended(at, took, "shipped", "", [])
    : ended(at, took, "killed", "exit code 1", ["ERROR: tests failed"]);
}

function ended(
  at: Omit<SimAttempt, "endAt" | "outcome" | "reason" | "tail">,
  tookMs: number,
  outcome: SimAttempt["outcome"],
  reason: string,
  tail: string[],
): SimAttempt {
  return { ...at, endAt: at.startAt + tookMs, outcome, reason, tail };
}

/** An attempt ended: its reflection row, and what its cascade does next. */
function end(sim: Sim, run: SimRun, a: SimAttempt): void {
  run.inflight.splice(run.inflight.indexOf(a), 1);
  const took = a.endAt - a.startAt;
  sim.agentMs += took;
  const cls = classify(a.outcome, a.reason, a.tail);
  if (a.outcome === "shipped") {
    sim.ships++;
    sim.shipped.add(a.gap.id);
  } else sim.wastedMs += took;
  const c = a.pick.candidate;
  sim.rows.push({
    gapId: a.gap.id,
    outcome: a.outcome,
    notes: encodeNotes({
      reason: a.reason,
      backend: c.backend,
      model: c.model,
      provider: c.providerPfx,
      attempt: a.attempt,
      class: cls,
      tail: a.tail,
    }),
    createdAt: "",
    effort: a.gap.effort,
    domain: gapDomain(a.gap.id),
    durationS: Math.round(took / 1000),
  });
  const after = run.cascade.outcome(a.gap.id, a.pick.arm, cls, a.outcome === "shipped", sim.now);
  if (after.retryAt !== undefined) run.waiting.set(a.gap.id, { gap: a.gap, at: after.retryAt });
}

/** An arm's hidden odds of shipping a gap of `taskClass`, at the `at`-th dispatch. */
function hiddenOdds(sim: Sim, arm: string, taskClass: string, at: number): number {
  const w = sim.world;
  const a = (w.shift && at >= w.shift.after ? w.shift.arms[arm] : undefined) ?? w.arms[arm];
  if (!a) return 0;
  return a.success[taskClass] ?? a.success.default ?? 0;
}

function resultOf(sim: Sim): SimResult {
  const hours = sim.agentMs / 3_600_000;
  return {
    policy: sim.options.policy,
    seed: sim.options.seed,
    adaptiveDeadlines: sim.options.adaptiveDeadlines ?? true,
    dispatches: sim.dispatches,
    runs: sim.runs,
    ships: sim.ships,
    agent_hours: round(hours, 3),
    ships_per_agent_hour: round(hours > 0 ? sim.ships / hours : 0, 4),
    wasted_agent_minutes: round(sim.wastedMs / MINUTE, 1),
    rate_limit_hits: sim.rateLimitHits,
    regret: round(sim.regret, 2),
    hours: round(sim.now / 3_600_000, 2),
  };
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
