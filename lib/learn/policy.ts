/**
 * The order a gap's cascade is tried in: `fixed` (the routing file's order)
 * or `thompson` (Thompson sampling: each arm draws from Beta(successes + 1,
 * failures + 1) of its record for this task class, or of its whole record
 * when that cell has fewer than {@linkcode MIN_CELL_ROWS} rows, and the arms
 * go in the order of their draws). Pure: the scoreboard and the random
 * source are given; a seeded source (`--seed N`) makes an order reproducible.
 *
 * @module
 */
import type { Candidate } from "./routing.ts";
import { armOf } from "./routing.ts";

/** The policies `--learn` takes. */
export type Policy = "fixed" | "thompson";

/** Shipped and not-shipped dispatches of an arm (in a task class, or in all). */
export interface ArmRecord {
  successes: number;
  failures: number;
}

/** What the policy reads: records per arm x task class and per arm. */
export interface Scores {
  cell(arm: string, taskClass: string): ArmRecord;
  arm(arm: string): ArmRecord;
}

/** A cell with fewer rows than this falls back to the arm's whole record. */
const MIN_CELL_ROWS = 5;

/** A source of uniform numbers in [0, 1). */
export type Random = () => number;

/** One candidate in its place in the order, and what put it there. */
export interface Ranked {
  candidate: Candidate;
  arm: string;
  /** The record the draw used, and which one it was. */
  record: ArmRecord;
  basis: "task class" | "arm";
  /** The Beta draw (thompson only). */
  sample?: number;
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
): Ranked[] {
  const ranked = candidates.map((candidate): Ranked => {
    const arm = armOf(candidate);
    const cell = scores.cell(arm, taskClass);
    const useCell = cell.successes + cell.failures >= MIN_CELL_ROWS;
    return {
      candidate,
      arm,
      record: useCell ? cell : scores.arm(arm),
      basis: useCell ? "task class" : "arm",
    };
  });
  if (policy === "fixed") return ranked;
  for (const r of ranked) {
    r.sample = sampleBeta(r.record.successes + 1, r.record.failures + 1, random);
  }
  // Stable: equal draws keep the file's order.
  return ranked.map((r, i) => [r, i] as const)
    .sort(([a, i], [b, j]) => b.sample! - a.sample! || i - j)
    .map(([r]) => r);
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
