/**
 * Fault injection (`CHUMP_FAULT_INJECT=spawn_fail,exit_1,exit_0_no_pr,monitor_timeout`):
 * drives the failure paths end to end without a real agent misbehaving.
 *
 * - `spawn_fail`: every spawn fails (DISPATCH-FAILED, exit 1)
 * - `exit_1`: the agent is the demo agent failing at once (killed, `exit code 1`)
 * - `exit_0_no_pr`: the demo agent exits 0 without work (stalled, `exited 0 without a PR`)
 * - `monitor_timeout`: the demo agent hangs and every soft deadline is 1s, so
 *   the monitor's kill path runs (killed, `soft-deadline exceeded (1s x 2)`)
 *
 * @module
 */
import type { AgentTemplate } from "./agent.ts";
import type { Deadlines } from "../util/duration.ts";
import type { Spawner } from "../process/spawn.ts";
import { fail, ok, type Result } from "../util/result.ts";
import { selfCommand } from "../process/self_command.ts";

/** The faults that can be injected. */
const FAULTS = ["spawn_fail", "exit_1", "exit_0_no_pr", "monitor_timeout"] as const;

/** One injectable fault. */
export type Fault = typeof FAULTS[number];

/**
 * Parse the comma list of `CHUMP_FAULT_INJECT` (empty = none).
 *
 * @example
 * ```ts
 * parseFaults("exit_1, spawn_fail"); // ok(Set {"exit_1", "spawn_fail"})
 * ```
 */
export function parseFaults(text: string | undefined): Result<Set<Fault>> {
  const faults = new Set<Fault>();
  for (const part of (text ?? "").split(",")) {
    const f = part.trim();
    if (f === "") continue;
    if (!(FAULTS as readonly string[]).includes(f)) {
      return fail(`CHUMP_FAULT_INJECT: unknown fault '${f}' (known: ${FAULTS.join(", ")})`);
    }
    faults.add(f as Fault);
  }
  return ok(faults);
}

/** The run settings with the faults applied. */
interface Faulted {
  agent: AgentTemplate;
  deadlines: Deadlines;
  spawner: Spawner;
}

/**
 * Apply faults to a run's agent, deadlines and spawner.
 *
 * @example
 * ```ts
 * import { resolveAgentTemplate } from "./agent.ts";
 * import { DEFAULT_DEADLINES } from "../util/duration.ts";
 * import { realSpawner } from "../process/spawn.ts";
 *
 * const agent = resolveAgentTemplate({});
 * if (agent.ok) {
 *   const run = { agent: agent.value, deadlines: DEFAULT_DEADLINES, spawner: realSpawner };
 *   const f = applyFaults(new Set(["exit_1"] as const), run);
 * }
 * ```
 */
export function applyFaults(faults: ReadonlySet<Fault>, run: Faulted): Faulted {
  let { agent, deadlines, spawner } = run;
  const demo = (behaviour: string): AgentTemplate => ({
    words: selfCommand("demo-agent", "--behaviour", behaviour),
    label: `fault:${behaviour}`,
  });
  if (faults.has("exit_1")) agent = demo("fail");
  else if (faults.has("exit_0_no_pr")) agent = demo("noop");
  else if (faults.has("monitor_timeout")) agent = demo("hang");
  if (faults.has("monitor_timeout")) {
    deadlines = { xs: 1000, s: 1000, m: 1000, l: 1000, xl: 1000 };
  }
  if (faults.has("spawn_fail")) {
    spawner = { spawn: () => fail("fault injected: spawn_fail") };
  }
  return { agent, deadlines, spawner };
}
