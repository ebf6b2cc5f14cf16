/**
 * The simulator: the real decision code (picker, the run's scheduling
 * (watch/schedule.ts), routing table, scoreboard, policy, adaptive
 * deadlines, cascade retries and cool-downs, the failure classifier, the
 * deadline kill's reason and the notes codec) against a simulated clock and
 * simulated agents whose hidden success probabilities the world file
 * declares; no processes, no git. Runs follow each other (`run_size`
 * dispatches each, like `--max-total`); the learning (learn/learner.ts) is
 * the real run's, so every outcome counts for the next dispatch, within a
 * run and across runs. Deterministic for a seed; a gap's luck on an arm at
 * an attempt comes from its own stream, so two policies on one seed meet the
 * same world, and one that sends a gap where another did meets its outcome.
 *
 * The policies: `fixed` (the table as given), `thompson` (the learned
 * order), and `best-fixed`: the fixed order an operator who knew the
 * world's hidden odds (averaged over the simulation) would write, by the
 * objective. It ignores quotas and drift, so it is a baseline, not a bound.
 *
 * @module
 */
import type { Gap } from "../backlog/gap.ts";
import { pickGaps } from "../backlog/picker.ts";
import { encodeNotes } from "../store/notes.ts";
import { gapDomain } from "../store/reflection.ts";
import { deadlineFor } from "../util/duration.ts";
import { roundTo } from "../util/number.ts";
import { Cascade } from "../learn/cascade.ts";
import { classify, Cooldowns } from "../learn/classify.ts";
import { Learned } from "../learn/learner.ts";
import { normal, type Objective, type Ranked, seededRandom } from "../learn/policy.ts";
import { fillStep, nextDue, type Waiting } from "../watch/schedule.ts";
import { type World, worldGaps } from "./world.ts";
import { bestValue, drawn, ended, gapOdds, hash, type SimAttempt } from "./odds.ts";

export { loadWorld, type World, type WorldArm } from "./world.ts";

/** The policies the simulator compares: the two of `--learn`, and one that knows the world. */
export type SimPolicy = "fixed" | "thompson" | "best-fixed";

/** The policies, in the order they are reported. */
export const SIM_POLICIES: readonly SimPolicy[] = ["fixed", "thompson", "best-fixed"];

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
  /** What the attempts cost (arms with `cost_per_hour`); null: the world has no prices. */
  cost_usd: number | null;
  ships_per_dollar: number | null;
  wasted_agent_minutes: number;
  /** Hopeless agents ended early (idle past 1.2 x p90). */
  early_ends: number;
  rate_limit_hits: number;
  /** Attempts per arm, and its ships. */
  arms: Record<string, { attempts: number; ships: number }>;
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
  /** What `thompson` and `best-fixed` maximise (default ships per agent-hour). */
  objective?: Objective;
}

const MINUTE = 60_000;

/** The whole simulation: the world, its clock, the reflections so far, what was measured. */
interface Sim {
  readonly world: World;
  readonly options: SimOptions;
  readonly gaps: Gap[];
  /** Each gap's difficulty (logit offset) within its task class. */
  readonly difficulty: Map<string, number>;
  readonly learned: Learned;
  readonly shipped: Set<string>;
  /** Start times per arm, for rate limits. */
  readonly armStarts: Map<string, number[]>;
  /** The simulated time (ms), shared with the learning. */
  readonly clock: { now: number };
  dispatches: number;
  runs: number;
  ships: number;
  agentMs: number;
  wastedMs: number;
  costUsd: number;
  priced: boolean;
  earlyEnds: number;
  rateLimitHits: number;
  readonly arms: SimResult["arms"];
  /** Times each gap went to each arm. */
  readonly tries: Map<string, number>;
  regret: number;
}

/** One run of the simulation: its cascades and deadlines, what it picked, what waits and flies. */
interface SimRun {
  readonly cascade: Cascade;
  readonly deadlineOf: (gap: Gap, arm: string) => { ms: number; earlyEndMs?: number };
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
  const gaps = worldGaps(world, options.seed);
  const hard = seededRandom(options.seed ^ 0x2545f491);
  const clock = { now: 0 };
  const sim: Sim = {
    world,
    options,
    gaps,
    difficulty: new Map(gaps.map((g) => [g.id, world.spread * normal(hard)])),
    learned: new Learned({
      rows: [],
      table: world.table,
      configured: world.deadlines,
      now: () => clock.now,
    }),
    shipped: new Set(),
    armStarts: new Map(),
    dispatches: 0,
    runs: 0,
    ships: 0,
    agentMs: 0,
    wastedMs: 0,
    costUsd: 0,
    priced: Object.values(world.arms).some((a) => a.costPerHour !== undefined),
    earlyEnds: 0,
    rateLimitHits: 0,
    arms: {},
    tries: new Map(),
    regret: 0,
    clock,
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
      sim.clock.now = Math.max(sim.clock.now, Math.min(nextEnd, nextWait));
      for (const a of run.inflight.filter((x) => x.endAt <= sim.clock.now)) end(sim, run, a);
      fill(sim, run);
    }
  }
  return resultOf(sim);
}

/** A run: its cascades (on the one learning of the whole simulation) and deadlines. */
function newRun(sim: Sim): SimRun {
  const { world, options } = sim;
  const value = (arm: string, taskClass: string) =>
    bestValue(
      world,
      { dispatches: options.dispatches, objective: options.objective },
      arm,
      taskClass,
    );
  const best = (ranked: Ranked[], taskClass: string) =>
    [...ranked].sort((a, b) => value(b.arm, taskClass) - value(a.arm, taskClass));
  const cascade = new Cascade({
    table: world.table,
    scores: sim.learned.scores,
    policy: options.policy === "thompson" ? "thompson" : "fixed",
    objective: options.objective,
    random: seededRandom(options.seed * 7919 + sim.runs),
    maxAttempts: options.maxAttempts ?? 3,
    cooldowns: new Cooldowns(),
    order: options.policy === "best-fixed" ? best : undefined,
  });
  const adaptive = options.adaptiveDeadlines ?? true;
  return {
    cascade,
    deadlineOf: (g, arm) => {
      if (!adaptive) return { ms: deadlineFor(g.effort, world.deadlines) };
      const d = sim.learned.deadlines();
      const domain = gapDomain(g.id);
      return { ms: d.of(g.effort, domain, arm), earlyEndMs: d.earlyEnd(g.effort, domain, arm) };
    },
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
    const step = fillStep(room, run.waiting, sim.clock.now, false);
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
  const next = run.cascade.next(gap, sim.clock.now);
  if (next.kind === "wait") {
    run.waiting.set(gap.id, { gap, at: next.until });
    return;
  }
  if (next.kind === "none") return;
  const { pick, attempt, taskClass } = next.attempt;
  const world = sim.world;
  const limit = world.arms[pick.arm]?.rateLimit;
  const starts = (sim.armStarts.get(pick.arm) ?? []).filter((t) =>
    t > sim.clock.now - (limit?.windowMs ?? 0)
  );
  const at = { gap, pick, attempt, startAt: sim.clock.now };
  // The gap's luck on this arm, its n-th time there: the same whichever policy sent it.
  const tries = `${gap.id}|${pick.arm}`;
  const n = (sim.tries.get(tries) ?? 0) + 1;
  sim.tries.set(tries, n);
  const luck = seededRandom(hash(`${sim.options.seed}|${tries}|${n}`));
  let a: SimAttempt;
  if (limit && starts.length >= limit.requests) {
    sim.rateLimitHits++;
    a = ended(at, 20_000, "killed", "exit code 1", ["ERROR: API Error: 429 rate limit"]);
  } else if (luck() < world.transient) {
    a = ended(at, 10_000 + 50_000 * luck(), "killed", "exit code 1", ["ERROR: read ECONNRESET"]);
  } else {
    const difficulty = sim.difficulty.get(gap.id) ?? 0;
    const odds = (arm: string) => gapOdds(world, difficulty, arm, taskClass, sim.dispatches);
    const p = odds(pick.arm);
    sim.regret += Math.max(...run.cascade.candidatesOf(gap.id).map((r) => odds(r.arm))) - p;
    const deadline = run.deadlineOf(gap, pick.arm);
    a = drawn(world, at, { luck, p, ...deadline });
    if (a.early) sim.earlyEnds++;
  }
  sim.armStarts.set(pick.arm, [...starts, sim.clock.now]);
  run.inflight.push(a);
  sim.dispatches++;
  run.attempts++;
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
  const price = sim.world.arms[a.pick.arm]?.costPerHour;
  const usd = price === undefined ? undefined : price * took / 3_600_000;
  sim.costUsd += usd ?? 0;
  sim.learned.record({
    gapId: a.gap.id,
    outcome: a.outcome,
    notes: encodeNotes({
      reason: a.reason,
      backend: c.backend,
      model: c.model,
      provider: c.providerPfx,
      attempt: a.attempt,
      class: cls,
      cost: usd === undefined ? undefined : { ...NO_TOKENS, usd },
      tail: a.tail,
    }),
    createdAt: "",
    effort: a.gap.effort,
    domain: gapDomain(a.gap.id),
    durationS: Math.round(took / 1000),
  });
  const tally = sim.arms[a.pick.arm] ??= { attempts: 0, ships: 0 };
  tally.attempts++;
  if (a.outcome === "shipped") tally.ships++;
  const after = run.cascade.outcome(
    a.gap.id,
    a.pick.arm,
    cls,
    a.outcome === "shipped",
    sim.clock.now,
  );
  if (after.retryAt !== undefined) run.waiting.set(a.gap.id, { gap: a.gap, at: after.retryAt });
}

const NO_TOKENS = { tokensIn: 0, tokensOut: 0, cacheRead: 0, cacheWrite: 0, turns: 0 };

function resultOf(sim: Sim): SimResult {
  const hours = sim.agentMs / 3_600_000;
  return {
    policy: sim.options.policy,
    seed: sim.options.seed,
    adaptiveDeadlines: sim.options.adaptiveDeadlines ?? true,
    dispatches: sim.dispatches,
    runs: sim.runs,
    ships: sim.ships,
    agent_hours: roundTo(hours, 3),
    ships_per_agent_hour: roundTo(hours > 0 ? sim.ships / hours : 0, 4),
    cost_usd: sim.priced ? roundTo(sim.costUsd, 2) : null,
    ships_per_dollar: sim.priced && sim.costUsd > 0 ? roundTo(sim.ships / sim.costUsd, 4) : null,
    wasted_agent_minutes: roundTo(sim.wastedMs / MINUTE, 1),
    early_ends: sim.earlyEnds,
    rate_limit_hits: sim.rateLimitHits,
    arms: sim.arms,
    regret: roundTo(sim.regret, 2),
    hours: roundTo(sim.clock.now / 3_600_000, 2),
  };
}
