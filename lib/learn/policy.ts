/**
 * The order a gap's cascade is tried in: `fixed` (the routing file's order)
 * or `thompson` (Thompson sampling that starts from the file's order). Each
 * arm draws its chance of shipping from a Beta posterior: its record for the
 * gap's task class, shrunk toward its whole record (hierarchical: a class
 * with few rows leans on the arm's overall record smoothly), and that toward
 * a prior that is the table's order (the file's first arm starts
 * {@linkcode TOP_PRIOR} ships ahead, each later one {@linkcode RANK_PRIOR}
 * failures behind per place, so
 * exploring an arm the table ranks low is paid only where the evidence says
 * it may pay). The draw is then weighed by the arm's availability (a rate
 * limit is its own term, not a failure) and divided by what an attempt
 * costs in the run's objective (`--learn-objective`: agent-hours, or
 * dollars; drawn around its estimate, the wider the fewer attempts it
 * rests on), and the arms go in the order of those values. Pure: the
 * scoreboard and the random source are given; a seeded source (`--seed N`)
 * makes an order reproducible.
 *
 * @module
 */
import type { Candidate } from "./routing.ts";
import { armOf } from "./routing.ts";

/** The policies `--learn` takes. */
export type Policy = "fixed" | "thompson";

/** What a learned order maximises (`--learn-objective`). */
export type Objective = "ships-per-hour" | "ships-per-dollar";

/** The objectives `--learn-objective` takes. */
export const OBJECTIVES: readonly Objective[] = ["ships-per-hour", "ships-per-dollar"];

/** Shipped and not-shipped dispatches of an arm (in a task class, or in all); weighted. */
export interface ArmRecord {
  successes: number;
  failures: number;
}

/** What an arm's attempts at one effort cost and how often it was free to take one. */
export interface ArmUsage {
  /** Share of its attempts not turned away by a rate limit (1 with no record). */
  available: number;
  /** Mean agent-hours of its attempt at the effort (leaning on all arms'); undefined: none timed. */
  hours: number | undefined;
  /** Its dollars per agent-hour; undefined: none costed. */
  usdPerHour: number | undefined;
  /** Its own timed attempts at the effort (weighted): how sure its hours are. */
  timedRows?: number;
}

/** What the policy reads: records per arm x task class and per arm, and each arm's usage. */
export interface Scores {
  cell(arm: string, taskClass: string): ArmRecord;
  arm(arm: string): ArmRecord;
  usage?(arm: string, effort?: string): ArmUsage;
}

/** Each place down the table's order starts an arm this many failures behind. */
export const RANK_PRIOR = 6;

/** The table's first arm starts this many ships ahead. */
export const TOP_PRIOR = 3;

/** A task class's record is shrunk toward the arm's with this many pseudo-rows at most. */
const SHRINK_ROWS = 16;

/**
 * An attempt's cost is drawn too: log-normal around its estimate with this
 * spread over the square root of the arm's own timed attempts (+1), so an
 * arm seldom tried may turn out quicker (or cheaper) than all arms' mean says.
 */
const COST_SPREAD = 0.7;

/** A source of uniform numbers in [0, 1). */
export type Random = () => number;

/** One candidate in its place in the order, and what put it there. */
export interface Ranked {
  candidate: Candidate;
  arm: string;
  /** The record the draw leaned on most, and which one it was. */
  record: ArmRecord;
  basis: "task class" | "arm";
  /** The Beta draw of its chance of shipping (thompson only). */
  sample?: number;
  /** The draw x availability / cost of an attempt, in the objective's unit (thompson only). */
  value?: number;
}

/** How to order. */
export interface OrderOptions {
  objective?: Objective;
  /** The gap's effort: what an attempt costs depends on it. */
  effort?: string;
}

/**
 * Order `candidates` for a gap of `taskClass` by `policy`.
 *
 * @example
 * ```ts
 * const none = { successes: 0, failures: 0 };
 * const scores = { cell: () => none, arm: () => none };
 * orderCascade([{ backend: "claude" }], "", scores, "fixed", Math.random)[0].arm; // "claude"
 * ```
 */
export function orderCascade(
  candidates: readonly Candidate[],
  taskClass: string,
  scores: Scores,
  policy: Policy,
  random: Random,
  options: OrderOptions = {},
): Ranked[] {
  const ranked = candidates.map((candidate): Ranked => {
    const arm = armOf(candidate);
    const cell = scores.cell(arm, taskClass);
    const useCell = cell.successes + cell.failures >= 1;
    return {
      candidate,
      arm,
      record: useCell ? cell : scores.arm(arm),
      basis: useCell ? "task class" : "arm",
    };
  });
  if (policy === "fixed") return ranked;
  const usage = ranked.map((r) => scores.usage?.(r.arm, options.effort));
  // Costs are drawn once some arm's attempts were timed: with none, the table's order decides.
  const timed = usage.some((u) => (u?.timedRows ?? 0) > 0);
  const costs = attemptCosts(usage, options.objective).map((c, i) =>
    timed
      ? c * Math.exp(COST_SPREAD * normal(random) / Math.sqrt(1 + (usage[i]?.timedRows ?? 0)))
      : c
  );
  ranked.forEach((r, rank) => {
    const [a, b] = posterior(scores.arm(r.arm), scores.cell(r.arm, taskClass), rank);
    r.sample = sampleBeta(a, b, random);
    const available = usage[rank]?.available ?? 1;
    r.value = r.sample * available / costs[rank];
  });
  // Stable: equal values keep the file's order.
  return ranked.map((r, i) => [r, i] as const)
    .sort(([a, i], [b, j]) => b.value! - a.value! || i - j)
    .map(([r]) => r);
}

/**
 * The Beta(a, b) of an arm's chance of shipping a gap of its task class:
 * the table's prior for its place (`rank`, 0 = first), its whole record on
 * top, and the class's record shrunk toward that.
 *
 * @example
 * ```ts
 * posterior({ successes: 0, failures: 0 }, { successes: 0, failures: 0 }, 0); // [4, 1]
 * ```
 */
export function posterior(all: ArmRecord, cell: ArmRecord, rank: number): [number, number] {
  const a0 = 1 + (rank === 0 ? TOP_PRIOR : 0) + all.successes;
  const b0 = 1 + RANK_PRIOR * rank + all.failures;
  const mean = a0 / (a0 + b0);
  // Never more sure of the class than of the arm: at most SHRINK_ROWS, at most its evidence.
  const strength = Math.min(SHRINK_ROWS, a0 + b0);
  // The class's own rows replace the arm's other rows as they come.
  return [cell.successes + strength * mean, cell.failures + strength * (1 - mean)];
}

/**
 * What an attempt on each arm costs in the objective's unit: agent-hours
 * (each arm's mean at the gap's effort; an untimed arm at the others'
 * mean), or dollars (hours x the arm's dollars per hour, when every arm has
 * a costed attempt; else hours, as the objective cannot be compared). A
 * free arm costs a cent an attempt, not nothing.
 */
function attemptCosts(
  usage: readonly (ArmUsage | undefined)[],
  objective: Objective = "ships-per-hour",
): number[] {
  const timed = usage.flatMap((u) => u?.hours === undefined ? [] : [u.hours]);
  const mean = timed.length > 0 ? timed.reduce((x, y) => x + y, 0) / timed.length : 1;
  const hours = usage.map((u) => Math.max(1 / 3600, u?.hours ?? mean));
  if (objective === "ships-per-dollar" && usage.every((u) => u?.usdPerHour !== undefined)) {
    return usage.map((u, i) => Math.max(0.01, hours[i] * u!.usdPerHour!));
  }
  return hours;
}

/**
 * The seed of a run's (or `route`'s) draws: the one given (`--seed`), else a fresh random one.
 *
 * @example
 * ```ts
 * runSeed(7); // 7
 * ```
 */
export function runSeed(given?: number): number {
  return given ?? crypto.getRandomValues(new Uint32Array(1))[0];
}

/**
 * A seeded source of uniform numbers (mulberry32): the same seed, the same sequence.
 *
 * @example
 * ```ts
 * seededRandom(7)() === seededRandom(7)(); // true
 * ```
 */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A draw from Beta(a, b), a, b > 0: X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b).
 *
 * @example
 * ```ts
 * const x = sampleBeta(2, 5, seededRandom(1));
 * x > 0 && x < 1; // true
 * ```
 */
export function sampleBeta(a: number, b: number, random: Random): number {
  const x = sampleGamma(a, random);
  const y = sampleGamma(b, random);
  return x + y === 0 ? 0.5 : x / (x + y);
}

/** Gamma(shape, 1) by Marsaglia and Tsang (shape < 1 boosted by U^(1/shape)). */
function sampleGamma(shape: number, random: Random): number {
  if (shape < 1) return sampleGamma(shape + 1, random) * Math.pow(nonZero(random), 1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = normal(random);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = nonZero(random);
    if (u < 1 - 0.0331 * x ** 4 || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) {
      return d * v;
    }
  }
}

/** A standard normal draw (Box-Muller). */
export function normal(random: Random): number {
  return Math.sqrt(-2 * Math.log(nonZero(random))) * Math.cos(2 * Math.PI * random());
}

function nonZero(random: Random): number {
  let u = random();
  while (u === 0) u = random();
  return u;
}
