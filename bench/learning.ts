/**
 * The learning loop on the simulator (lib/sim/simulate.ts): the shipped
 * example worlds, 20 seeds each, 500 dispatches per simulation. Ships per
 * agent-hour of `thompson` against `fixed` (the routing file's order) and
 * against the oracle (which knows the arms' hidden odds); wasted
 * agent-minutes with adaptive deadlines against the configured ones. Every
 * ratio is of two figures measured here, on the same seeds (the same worlds
 * and the same luck per dispatch).
 *
 * @module
 */
import { join } from "node:path";
import { loadWorld, type SimPolicy, type SimResult, simulate } from "../lib/sim/simulate.ts";
import { ROOT, type Row } from "./_util.ts";

const SEEDS = Array.from({ length: 20 }, (_, i) => i + 1);
const DISPATCHES = 500;

function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function sd(xs: readonly number[]): number {
  const m = mean(xs);
  return Math.sqrt(mean(xs.map((x) => (x - m) ** 2)));
}

/** The learning rows. */
export async function benchLearning(_tmp: string): Promise<Row[]> {
  const rows: Row[] = [];
  for (const name of ["chump", "shift"]) {
    const world = await loadWorld(join(ROOT, "examples", "worlds", `${name}.yaml`));
    if (!world.ok) throw new Error(world.error);
    const run = (policy: SimPolicy, adaptive = true): SimResult[] =>
      SEEDS.map((seed) =>
        simulate(world.value, { policy, dispatches: DISPATCHES, seed, adaptiveDeadlines: adaptive })
      );
    const fixed = run("fixed");
    const thompson = run("thompson");
    const oracle = run("oracle");
    const thompsonFixedDl = run("thompson", false);
    const sph = (rs: SimResult[]) => rs.map((r) => r.ships_per_agent_hour);
    const ratio = (a: SimResult[], b: SimResult[], key: keyof SimResult) => {
      const per = a.map((r, i) => (r[key] as number) / (b[i][key] as number));
      return {
        value: mean(a.map((r) => r[key] as number)) / mean(b.map((r) => r[key] as number)),
        spread: `${Math.min(...per).toFixed(2)}-${Math.max(...per).toFixed(2)}`,
      };
    };
    for (
      const [policy, rs] of [["fixed", fixed], ["thompson", thompson], ["oracle", oracle]] as const
    ) {
      rows.push({
        section: "learning",
        measure: `${name}: ${policy}, ${SEEDS.length} seeds x ${DISPATCHES} dispatches`,
        result: `${mean(sph(rs)).toFixed(3)} ships/agent-hour (sd ${sd(sph(rs)).toFixed(3)}); ` +
          `${mean(rs.map((r) => r.ships)).toFixed(0)} ships, ` +
          `${mean(rs.map((r) => r.wasted_agent_minutes)).toFixed(0)} wasted agent-min, ` +
          `${mean(rs.map((r) => r.rate_limit_hits)).toFixed(1)} rate-limit hits, regret ${
            mean(rs.map((r) => r.regret)).toFixed(1)
          }`,
        target: "",
      });
    }
    /** A target on ships per agent-hour: `a` / `b` at least `min`. */
    const atLeast = (
      measure: string,
      a: SimResult[],
      b: SimResult[],
      min: number,
      target: string,
    ) => {
      const r = ratio(a, b, "ships_per_agent_hour");
      rows.push({
        section: "learning",
        measure: `${name}: ${measure}`,
        result: `${r.value.toFixed(2)}x`,
        spread: r.spread,
        target,
        met: r.value >= min,
      });
    };
    if (name === "chump") {
      atLeast("ships/agent-hour, thompson / fixed", thompson, fixed, 1.2, ">= 1.2x");
      atLeast(
        `ships/agent-hour after ${DISPATCHES} dispatches, thompson / oracle`,
        thompson,
        oracle,
        0.85,
        ">= 0.85x (within 15 %)",
      );
    } else {
      atLeast(
        "ships/agent-hour, thompson / fixed",
        thompson,
        fixed,
        0.95,
        ">= 0.95x (never 5 % below fixed)",
      );
    }
    const dl = ratio(thompson, thompsonFixedDl, "wasted_agent_minutes");
    rows.push({
      section: "learning",
      measure: `${name}: wasted agent-minutes, adaptive / configured deadlines (thompson)`,
      result: `${dl.value.toFixed(2)}x (${
        mean(thompson.map((r) => r.wasted_agent_minutes)).toFixed(0)
      } / ${mean(thompsonFixedDl.map((r) => r.wasted_agent_minutes)).toFixed(0)} min)`,
      spread: dl.spread,
      target: "<= 0.75x (a 25 % cut)",
      met: dl.value <= 0.75,
      fix: "deadlines that adapt below 1.5 x p90 (or per arm) would cut hung agents sooner",
    });
  }
  return rows;
}
