/**
 * The learning loop on the simulator (lib/sim/simulate.ts), on worlds
 * written for each case the policy must handle (examples/worlds/): a table
 * that is already right (also in one long run, and with only 50
 * dispatches), a cheap arm whose quota bites, a wrong table (also in one
 * long run), a specialist arm, arms that differ in speed, a best arm that
 * changes at once or degrades gradually. 20 seeds each; every ratio is of
 * two figures measured here on the same seeds (the same worlds, and the
 * same luck for a gap on an arm).
 *
 * Per world: the learned order (`thompson`) against the table's fixed order
 * and against the hindsight-best fixed order (the better of the table's and
 * the order written knowing the world's odds), in ships per agent-hour
 * (objective ships-per-hour) and, where the world has prices, in ships per
 * dollar (objective ships-per-dollar); and wasted agent-minutes with
 * adaptive deadlines and early ends against the configured deadlines.
 *
 * @module
 */
import { join } from "node:path";
import {
  loadWorld,
  type SimOptions,
  type SimResult,
  simulate,
  type World,
} from "../lib/sim/simulate.ts";
import { ROOT, type Row } from "./_util.ts";

const SEEDS = Array.from({ length: 20 }, (_, i) => i + 1);

/** A world, what kind of table it has, and the target of the learned order against `fixed`. */
const WORLDS: readonly { name: string; table: string; min: number }[] = [
  { name: "right", table: "right", min: 0.98 },
  { name: "right-long", table: "right, one run", min: 0.95 },
  { name: "right-short", table: "right, 50 dispatches", min: 0.95 },
  { name: "quota", table: "right, quota bites", min: 0.98 },
  { name: "chump", table: "wrong (Chump's v1)", min: 1.2 },
  { name: "wrong-long", table: "wrong, one run", min: 1.2 },
  { name: "specialist", table: "wrong for two classes", min: 1.2 },
  { name: "speed", table: "wrong per hour", min: 1.2 },
  { name: "shift", table: "right, then wrong at once", min: 1.2 },
  { name: "degrade", table: "right, then wrong gradually", min: 1.0 },
];

function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** mean(a) / mean(b) of a figure, with the per-seed ratios' min-max. */
function ratio(
  a: readonly SimResult[],
  b: readonly SimResult[],
  figure: (r: SimResult) => number,
): { value: number; spread: string } {
  const per = a.map((r, i) => figure(r) / figure(b[i]));
  return {
    value: mean(a.map(figure)) / mean(b.map(figure)),
    spread: `${Math.min(...per).toFixed(2)}-${Math.max(...per).toFixed(2)}`,
  };
}

const perHour = (r: SimResult) => r.ships_per_agent_hour;
const perDollar = (r: SimResult) => r.ships_per_dollar ?? 0;

/** The learning rows. */
export async function benchLearning(_tmp: string): Promise<Row[]> {
  const rows: Row[] = [];
  for (const { name, table, min } of WORLDS) {
    const loaded = await loadWorld(join(ROOT, "examples", "worlds", `${name}.yaml`));
    if (!loaded.ok) throw new Error(loaded.error);
    const world = loaded.value;
    const run = (o: Omit<SimOptions, "seed" | "dispatches">) => runAll(world, o);
    const fixed = run({ policy: "fixed" });
    const learned = run({ policy: "thompson" });
    const bestFixed = run({ policy: "best-fixed" });
    const hindsight = mean(bestFixed.map(perHour)) > mean(fixed.map(perHour)) ? bestFixed : fixed;
    const n = fixed[0].dispatches;
    const about = `${name} (${table}; ${SEEDS.length} seeds x ${n} dispatches)`;
    const vsFixed = ratio(learned, fixed, perHour);
    rows.push({
      section: "learning",
      measure: `${about}: ships/agent-hour, learned / the table's fixed order`,
      result: `${vsFixed.value.toFixed(3)}x (${mean(learned.map(perHour)).toFixed(2)} / ${
        mean(fixed.map(perHour)).toFixed(2)
      })`,
      spread: vsFixed.spread,
      target: `>= ${min}x`,
      met: vsFixed.value >= min,
    });
    const vsBest = ratio(learned, hindsight, perHour);
    rows.push({
      section: "learning",
      measure: `${about}: ships/agent-hour, learned / the hindsight-best fixed order (${
        hindsight === fixed ? "the table's" : "written knowing the odds"
      })`,
      result: `${vsBest.value.toFixed(3)}x`,
      spread: vsBest.spread,
      target: "",
    });
    if (fixed[0].ships_per_dollar !== null) {
      const frugal = run({ policy: "thompson", objective: "ships-per-dollar" });
      const d = ratio(frugal, fixed, perDollar);
      rows.push({
        section: "learning",
        measure: `${about}: ships/dollar, learned (--learn-objective ships-per-dollar) / fixed`,
        result: `${d.value.toFixed(3)}x (${mean(frugal.map(perDollar)).toFixed(3)} / ${
          mean(fixed.map(perDollar)).toFixed(3)
        })`,
        spread: d.spread,
        target: ">= 1.0x (never behind)",
        met: d.value >= 1,
      });
    }
    const configured = run({ policy: "thompson", adaptiveDeadlines: false });
    const waste = ratio(learned, configured, (r) => r.wasted_agent_minutes);
    rows.push({
      section: "learning",
      measure: `${name}: wasted agent-minutes, adaptive deadlines and early ends / configured`,
      result: `${waste.value.toFixed(2)}x (${
        mean(learned.map((r) => r.wasted_agent_minutes)).toFixed(0)
      } / ${mean(configured.map((r) => r.wasted_agent_minutes)).toFixed(0)} min; ${
        mean(learned.map((r) => r.early_ends)).toFixed(0)
      } ended early)`,
      spread: waste.spread,
      target: n >= 500 ? "<= 0.75x" : "",
      met: n >= 500 ? waste.value <= 0.75 : undefined,
    });
  }
  return rows;
}

/** One policy on every seed, at the world's own number of dispatches (default 500). */
function runAll(world: World, o: Omit<SimOptions, "seed" | "dispatches">): SimResult[] {
  return SEEDS.map((seed) => simulate(world, { ...o, seed, dispatches: world.dispatches ?? 500 }));
}
