/**
 * `simulate --world FILE`: the learning loop's decisions on a simulated
 * world (sim/simulate.ts): ships, agent-hours, ships per agent-hour, what
 * it spent and ships per dollar (a world with prices), wasted agent-minutes,
 * rate-limit hits and regret against the arms' hidden odds. No processes, no git, nothing written.
 *
 * @module
 */
import { EXIT, type Exit, type Io, usageError } from "../cli/io.ts";
import type { SimulateOptions } from "../cli/commands.ts";
import { ok } from "../util/result.ts";
import { loadWorld, simulate } from "../sim/simulate.ts";

/**
 * Run one simulation and print what it measured; returns the exit code.
 *
 * @example
 * ```ts ignore
 * await runSimulate({ world: "examples/worlds/chump.yaml", policy: "thompson", dispatches: 500, seed: 1, json: false }, io);
 * ```
 */
export async function runSimulate(options: SimulateOptions, io: Io): Promise<Exit> {
  const world = await loadWorld(options.world);
  if (!world.ok) return usageError(world.error);
  const r = simulate(world.value, {
    policy: options.policy,
    dispatches: options.dispatches ?? world.value.dispatches ?? 500,
    seed: options.seed,
    adaptiveDeadlines: !options.fixedDeadlines,
    maxAttempts: options.maxAttempts,
    objective: options.learnObjective,
  });
  if (options.json) {
    io.out(JSON.stringify(r));
    return ok(EXIT.ok);
  }
  io.out(
    `${options.world}: policy ${r.policy}, seed ${r.seed}, ${
      r.adaptiveDeadlines ? "adaptive" : "fixed"
    } deadlines; ${r.dispatches} dispatches in ${r.runs} run(s), ${r.hours} h simulated`,
  );
  const spent = r.cost_usd === null
    ? ""
    : `  spent $${r.cost_usd}  ships/dollar ${r.ships_per_dollar ?? "-"}`;
  io.out(
    `ships ${r.ships}  agent-hours ${r.agent_hours}  ships/agent-hour ${r.ships_per_agent_hour}` +
      `${spent}  wasted agent-minutes ${r.wasted_agent_minutes} (${r.early_ends} ended early)  ` +
      `rate-limit hits ${r.rate_limit_hits}  regret ${r.regret}`,
  );
  return ok(EXIT.ok);
}
