/**
 * What a simulated world hides from the policies, and how an attempt turns
 * out: an arm's odds of shipping a gap of a task class at the n-th dispatch
 * (its `success`, the last `shift` before it, a `drift` under way), a gap's
 * own odds (its difficulty within its class, `success_spread`), the value
 * an operator who knew them would rank an arm by (the best fixed order), the
 * seed of a gap's luck on an arm, and an attempt drawn from that luck. Pure.
 *
 * @module
 */
import type { Gap } from "../backlog/gap.ts";
import { normal, type Objective, type Ranked } from "../learn/policy.ts";
import { deadlineReason, EARLY_END_IDLE_MS, earlyEndReason } from "../watch/decide.ts";
import type { World, WorldArm } from "./world.ts";

/** The real run's tick, the granularity of a kill. */
const TICK_MS = 30_000;

/** An attempt in flight. */
export interface SimAttempt {
  gap: Gap;
  pick: Ranked;
  attempt: number;
  startAt: number;
  endAt: number;
  outcome: "shipped" | "killed";
  reason: string;
  tail: string[];
  /** Ended early (an idle agent past its early end). */
  early?: boolean;
}

/**
 * An arm's hidden odds of shipping a gap of `taskClass`, at the `at`-th
 * dispatch: its odds, replaced by the last shift before `at`, moved along
 * a drift.
 *
 * @example
 * ```ts ignore
 * hiddenOdds(world, "claude", "research", 120); // 0.8
 * ```
 */
export function hiddenOdds(world: World, arm: string, taskClass: string, at: number): number {
  let a: WorldArm | undefined = world.arms[arm];
  for (const sh of world.shifts) if (at >= sh.after && sh.arms[arm]) a = sh.arms[arm];
  if (!a) return 0;
  const p = odds(a, taskClass);
  const to = world.drift?.arms[arm];
  if (!world.drift || !to || at <= world.drift.from) return p;
  const f = Math.min(1, (at - world.drift.from) / (world.drift.to - world.drift.from));
  return p + f * (odds(to, taskClass) - p);
}

function odds(a: WorldArm, taskClass: string): number {
  return a.success[taskClass] ?? a.success.default ?? 0;
}

/**
 * The odds for one gap: its class's, moved by the gap's own difficulty
 * (a logit offset; 0: the class's odds).
 *
 * @example
 * ```ts ignore
 * gapOdds(world, 0, "claude", "", 0) === hiddenOdds(world, "claude", "", 0); // true
 * ```
 */
export function gapOdds(
  world: World,
  difficulty: number,
  arm: string,
  taskClass: string,
  at: number,
): number {
  const p = hiddenOdds(world, arm, taskClass, at);
  if (difficulty === 0 || p <= 0 || p >= 1) return p;
  return 1 / (1 + Math.exp(-(Math.log(p / (1 - p)) - difficulty)));
}

/**
 * What an operator who knew the world would rank an arm by: its odds for
 * the class averaged over the simulation, per hour (its duration scale) or
 * per dollar (its price per hour too).
 *
 * @example
 * ```ts ignore
 * bestValue(world, { dispatches: 500 }, "claude", "research");
 * ```
 */
export function bestValue(
  world: World,
  run: { dispatches: number; objective?: Objective },
  arm: string,
  taskClass: string,
): number {
  let p = 0;
  for (let i = 0; i <= 10; i++) {
    p += hiddenOdds(world, arm, taskClass, (i * run.dispatches) / 10) / 11;
  }
  const a = world.arms[arm];
  const hours = a?.durationScale ?? 1;
  const perDollar = run.objective === "ships-per-dollar" && a?.costPerHour !== undefined;
  return p / (hours * (perDollar ? Math.max(0.01, a!.costPerHour!) : 1));
}

/**
 * FNV-1a of a string: the seed of a gap's luck on an arm.
 *
 * @example
 * ```ts
 * hash("a") === hash("a") && hash("a") !== hash("b"); // true
 * ```
 */
export function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * An attempt that ships or fails by its arm's odds `p`, killed at twice its
 * deadline if it runs on; one that hangs goes silent, and ends early past
 * its early end (the real tick's rule) where the deadline adapted.
 *
 * @example
 * ```ts ignore
 * const a = drawn(world, at, { luck: seededRandom(1), p: 0.7, ms: 20 * 60_000 });
 * ```
 */
export function drawn(
  world: World,
  at: Omit<SimAttempt, "endAt" | "outcome" | "reason" | "tail">,
  d: { luck: () => number; p: number; ms: number; earlyEndMs?: number },
): SimAttempt {
  const { luck, ms, earlyEndMs } = d;
  const succeeds = luck() < d.p;
  const hangs = !succeeds && luck() < world.hang;
  const effort = world.durations[at.gap.effort.toLowerCase()] ??
    Object.values(world.durations)[0];
  const [median, sigma] = succeeds ? effort.shipped : effort.failed;
  const scale = world.arms[at.pick.arm]?.durationScale ?? 1;
  const took = hangs ? Infinity : scale * Math.exp(Math.log(median) + sigma * normal(luck));
  if (hangs && earlyEndMs !== undefined) {
    // Silent from the start: the first tick past both the early end and the idle wait.
    const t = Math.max(earlyEndMs, EARLY_END_IDLE_MS) + TICK_MS;
    const reason = earlyEndReason({ elapsedMs: t, idleMs: t, earlyEnd: { afterMs: earlyEndMs } });
    if (reason !== undefined && t < 2 * ms) {
      return { ...ended(at, t, "killed", reason, []), early: true };
    }
  }
  if (took > 2 * ms) return ended(at, 2 * ms, "killed", deadlineReason(ms), []);
  return succeeds
    ? ended(at, took, "shipped", "", [])
    : ended(at, took, "killed", "exit code 1", ["ERROR: tests failed"]);
}

/** An attempt that ends `tookMs` after its start. */
export function ended(
  at: Omit<SimAttempt, "endAt" | "outcome" | "reason" | "tail">,
  tookMs: number,
  outcome: SimAttempt["outcome"],
  reason: string,
  tail: string[],
): SimAttempt {
  return { ...at, endAt: at.startAt + tookMs, outcome, reason, tail };
}
