/**
 * Monitor: 200 live agents (real processes with piped output) watched by the
 * real loop and the real `gh` provider (against the fake `gh` of the tests,
 * which answers real-shaped JSON): the orchestrator's CPU time per tick and
 * `gh` invocations per tick (target 1: one batched call, whatever the
 * number of branches), and the CPU per tick with the live
 * terminal view drawn against without (alternating rounds; target < 2x).
 *
 * @module
 */
import { join } from "node:path";
import type { Gap } from "../lib/backlog/gap.ts";
import type { Workspace } from "../lib/git/workspace.ts";
import { DEFAULT_DEADLINES } from "../lib/util/duration.ts";
import { realSpawner } from "../lib/process/spawn.ts";
import { terminateGroup } from "../lib/process/signal.ts";
import { Processes } from "../lib/process/table.ts";
import { createGhProvider } from "../lib/watch/providers/gh.ts";
import { createNoopWriter } from "../testkit/writers.ts";
import { ok } from "../lib/util/result.ts";
import type { Interrupt } from "../lib/process/interrupt.ts";
import { runDispatches } from "../lib/watch/run.ts";
import { alternate, cpuMs, ms, ratioRow, ROOT, type Row } from "./_util.ts";
import { createLiveView } from "../lib/watch/live.ts";

const AGENTS = 200;
const TICK_MS = 500;
const MEASURED_TICKS = 20;

/** A workspace without git: the monitor, not worktree creation, is measured here. */
function plainDirs(root: string): Workspace {
  return {
    repoRoot: root,
    addWorktree: async (_branch, path) => {
      await Deno.mkdir(path, { recursive: true });
      return ok(undefined);
    },
    removeWorktree: async (path) => {
      if (path !== undefined) await Deno.remove(path, { recursive: true }).catch(() => {});
      return ok(undefined);
    },
    workBeyond: () =>
      Promise.resolve({ gone: false, onBranch: 0, onHead: 0, onOwnRefs: 0, inReflog: 0 }),
    isDirty: () => Promise.resolve(false),
    claim: () => Promise.resolve(ok(false)),
  };
}

interface MonitorRun {
  cpuPerTick: number;
  wallPerTick: number;
  /** `gh` invocations (the fake gh's log) over the measured ticks, once every agent ran. */
  ghCalls: number;
  ticks: number;
  killed: number;
  outcomes: number;
}

/** One watched run of 200 agents; `live`: with the live terminal view drawn (to nowhere). */
async function monitorRun(tmp: string, live: boolean): Promise<MonitorRun> {
  const root = await Deno.makeTempDir({ dir: tmp, prefix: "monitor-" });
  const gaps: Gap[] = Array.from({ length: AGENTS }, (_, i) => ({
    id: `M-${i}`,
    title: `monitored ${i}`,
    priority: "P1",
    effort: "l",
    status: "open",
    dependsOn: [],
    file: "bench",
    line: i + 1,
  }));
  // Every fourth branch has an open PR: the answer is parsed, nothing ends.
  const state: Record<string, unknown[]> = {};
  const created = new Date().toISOString();
  for (let i = 0; i < AGENTS; i += 4) {
    state[`claude/m-${i}`] = [{
      number: 1000 + i,
      state: "OPEN",
      createdAt: created,
      updatedAt: created,
    }];
  }
  const stateFile = join(root, "gh-state.json");
  await Deno.writeTextFile(stateFile, JSON.stringify(state));
  // Each `gh` the provider starts appends a line here; a tick notes only the log's size (its
  // lines, each a 200-branch query, are counted after the run, outside the measured CPU).
  const ghLog = join(root, "gh-calls.log");
  const logSize = () => {
    try {
      return Deno.statSync(ghLog).size;
    } catch {
      return 0; // none yet
    }
  };
  const gh = createGhProvider({
    cwd: root,
    gh: join(ROOT, "tests", "fake_gh", "gh"),
    env: { FAKE_GH_STATE: stateFile, FAKE_GH_LOG: ghLog },
  });
  let ticks = 0;
  let dispatched = 0;
  const samples: { cpu: number; wall: number; logSize: number }[] = [];
  const stop = new AbortController();
  const hurry = new AbortController();
  const interrupt: Interrupt = {
    stop: stop.signal,
    hurry: hurry.signal,
    signalName: () => "SIGINT",
  };
  let frames = 0;
  const run = runDispatches(gaps, {
    repoRoot: root,
    baseRef: "origin/main",
    startCommit: "0".repeat(40),
    maxParallel: AGENTS,
    order: "priority",
    watch: true,
    tickMs: TICK_MS,
    deadlines: DEFAULT_DEADLINES,
    exitGraceTicks: 2,
    killGraceMs: 2000,
    agent: { words: ["sleep", "600"], label: "bench" },
  }, {
    workspace: plainDirs(root),
    spawner: realSpawner,
    provider: {
      name: "gh",
      poll: (branches) => {
        // One poll per tick: sampled once all agents run (none ends while measuring).
        if (dispatched === AGENTS && !stop.signal.aborted) {
          if (ticks === MEASURED_TICKS + 2) {
            // This tick only stops the run: it is not one of the measured ones.
            stop.abort();
            hurry.abort();
          } else {
            ticks++;
            // The size before this tick's poll: the calls of every tick before it.
            samples.push({ cpu: cpuMs(), wall: performance.now(), logSize: logSize() });
          }
        }
        return gh.poll(branches);
      },
    },
    writer: createNoopWriter(),
    terminate: terminateGroup,
    processes: new Processes(),
    out: (l) => {
      if (l.startsWith("DISPATCHED: ")) dispatched++;
    },
    err: () => {},
    interrupt,
    // The frames are built and "written" (counted): the view's own cost, not a terminal's.
    live: live ? createLiveView(() => frames++, () => 120) : undefined,
  });
  const result = await run;
  const log = await Deno.readFile(ghLog);
  await Deno.remove(root, { recursive: true }).catch(() => {});
  // From the second sampled tick to the last: whole tick periods, idle time included.
  const first = samples[1];
  const last = samples.at(-1)!;
  const periods = samples.length - 2;
  if (live && frames === 0) throw new Error("the live view drew nothing");
  return {
    cpuPerTick: (last.cpu - first.cpu) / periods,
    wallPerTick: (last.wall - first.wall) / periods,
    // The loop polls once per tick (lib/watch/tick.ts): the sampled polls are the ticks.
    ghCalls: linesIn(log.subarray(first.logSize, last.logSize)),
    ticks: periods,
    killed: result.outcomes.filter((o) => o.outcome === "killed").length,
    outcomes: result.outcomes.length,
  };
}

/** Complete lines in `bytes`. */
function linesIn(bytes: Uint8Array): number {
  let n = 0;
  for (const b of bytes) if (b === 0x0a) n++;
  return n;
}

/** The monitor rows. */
export async function benchMonitor(tmp: string): Promise<Row[]> {
  let plain: MonitorRun | undefined;
  const rounds = await alternate(2, async () => {
    plain = await monitorRun(tmp, false);
    return plain.cpuPerTick;
  }, async () => (await monitorRun(tmp, true)).cpuPerTick);
  const r = plain!;
  const cpuPerTick = r.cpuPerTick;
  const wallPerTick = r.wallPerTick;
  return [
    {
      section: "monitor",
      measure:
        `${AGENTS} live agents, gh provider (fake gh, real JSON): orchestrator CPU per tick (gh's own not counted)`,
      result: `${ms(cpuPerTick)} (${(100 * cpuPerTick / wallPerTick).toFixed(1)}% of one core at ` +
        `a ${TICK_MS} ms tick; ${(100 * cpuPerTick / 30_000).toFixed(2)}% at the default 30 s)`,
      target: "",
    },
    ratioRow(
      "monitor",
      `${AGENTS} live agents: CPU per tick with the live terminal view / without`,
      rounds,
      2,
      "draw only the lines that changed; build the frame once per tick",
    ),
    {
      section: "monitor",
      measure: `gh invocations per tick, ${AGENTS} branches watched ` +
        `(${r.ghCalls} in ${r.ticks} ticks)`,
      result: (r.ghCalls / r.ticks).toFixed(2),
      target: "1",
      met: r.ghCalls === r.ticks,
      fix: "one batched provider call per tick",
    },
    {
      section: "monitor",
      measure: `interrupt with ${AGENTS} live agents: killed reflections`,
      result: String(r.killed),
      target: String(AGENTS),
      met: r.outcomes === AGENTS,
      fix: "",
    },
  ];
}
