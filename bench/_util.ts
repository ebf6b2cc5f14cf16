/**
 * Benchmark plumbing: alternating rounds and their ratios, timing, CPU time,
 * a process's peak memory, one table row, scratch repos and running the real
 * CLI as a subprocess. It shares testkit/ with tests/ and imports nothing
 * from tests/.
 *
 * Why ratios in alternating rounds: this machine is shared and noisy, so an
 * absolute figure swings 2-5x from one run to the next. A baseline measured
 * in the same run, interleaved with the candidate (baseline, candidate,
 * baseline, candidate, ...), sees the same noise; the median of the
 * per-round ratios holds, and the spread (min-max) shows how much it moved.
 *
 * @module
 */
import { cpuUsage } from "node:process";
import { join } from "node:path";
import { permissionFlags, taskPermissionFlags } from "../lib/commands/permissions.ts";

import { ROOT, runProcess } from "../testkit/process.ts";

export { FIXTURE, pidsWithEnv, type Ran, ROOT, runProcess } from "../testkit/process.ts";
export { GIT_ID, type ScratchRepo, scratchRepo } from "../testkit/repo.ts";

/** One line of the results table. */
export interface Row {
  section: string;
  measure: string;
  result: string;
  /** Min-max of the per-round ratios, when the result is one. */
  spread?: string;
  target: string;
  /** true met, false missed, undefined: no target. */
  met?: boolean;
  /** What would fix a miss. */
  fix?: string;
}

/** The median of some numbers. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Milliseconds, readable. */
export function ms(x: number): string {
  if (x >= 1000) return `${(x / 1000).toFixed(2)} s`;
  if (x >= 10) return `${x.toFixed(0)} ms`;
  return `${x.toFixed(2)} ms`;
}

/** Wall time of `f`, ms. */
export async function timed(f: () => unknown): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

/**
 * A run of `deno <args>` from the project root, timed to its end (ms); it
 * must succeed (else it throws with the first line of its stderr).
 */
export function timedDeno(args: string[]): () => Promise<number> {
  return () =>
    timed(async () => {
      const r = await runProcess(Deno.execPath(), args, { cwd: ROOT, env: { NO_COLOR: "1" } });
      if (r.code !== 0) throw new Error(`deno ${args.join(" ")}: ${r.stderr.split("\n")[0]}`);
    });
}

/** This process's CPU time (user + system), ms. */
export function cpuMs(): number {
  const u = cpuUsage();
  return (u.user + u.system) / 1000;
}

/**
 * A full GC between measurements (the bench task runs with `--expose-gc`),
 * so no measurement pays for the garbage the one before it left.
 */
function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** Baseline and candidate measurements of alternating rounds, and their ratios. */
export interface Rounds {
  baseline: number[];
  candidate: number[];
  /** candidate / baseline, per round. */
  ratios: number[];
}

/**
 * Measure `baseline` and `candidate` in alternating rounds: baseline,
 * candidate, baseline, candidate, ... Each returns its measurement (a time
 * in ms, a size, ...); the ratio of a round is candidate / baseline.
 */
export async function alternate(
  rounds: number,
  baseline: () => Promise<number>,
  candidate: () => Promise<number>,
): Promise<Rounds> {
  const out: Rounds = { baseline: [], candidate: [], ratios: [] };
  for (let i = 0; i < rounds; i++) {
    collectGarbage();
    const b = await baseline();
    collectGarbage();
    const c = await candidate();
    out.baseline.push(b);
    out.candidate.push(c);
    out.ratios.push(c / b);
  }
  return out;
}

/** The min-max of the per-round ratios, for the table's spread column. */
export function spread(r: Rounds): string {
  return `${Math.min(...r.ratios).toFixed(2)}-${Math.max(...r.ratios).toFixed(2)}`;
}

/**
 * A table row for a ratio target: the median of the per-round ratios must
 * be at most `max`.
 */
export function ratioRow(
  section: string,
  measure: string,
  r: Rounds,
  max: number,
  fix: string,
  unit: (x: number) => string = ms,
): Row {
  const ratio = median(r.ratios);
  return {
    section,
    measure: `${measure} (${r.ratios.length} rounds)`,
    result: `${ratio.toFixed(2)}x (${unit(median(r.candidate))} / ${unit(median(r.baseline))})`,
    spread: spread(r),
    target: `<= ${max}x`,
    met: ratio <= max,
    fix,
  };
}

/** A ratio row reported without a target (what explains another row). */
export function reported(row: Row): Row {
  return { ...row, target: "", met: undefined, fix: undefined };
}

/**
 * `deno run` arguments that start main.ts as a run writing `writes` is
 * started after the relaunch (lib/commands/launch.ts): `permissionFlags`, this
 * Deno allowed to run itself.
 */
export function mainArgs(writes: string[], extraRun: string[] = []): string[] {
  return [
    "run",
    "--quiet",
    `--config=${join(ROOT, "deno.json")}`,
    ...permissionFlags(writes, [...extraRun, Deno.execPath()]),
    join(ROOT, "main.ts"),
  ];
}

/** `deno run` arguments of the `dispatch` task itself: main.ts with no write. */
export function taskMainArgs(): string[] {
  return ["run", "--quiet", ...taskPermissionFlags(), join(ROOT, "main.ts")];
}

/**
 * The peak resident memory (VmHWM) of a running process, read with `cat`
 * (Deno reads /proc only under --allow-all) until it exits; MB.
 */
export function watchPeakRss(pid: number, everyMs = 50): { stop(): Promise<number> } {
  let peakKb = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const out = await runProcess("cat", [`/proc/${pid}/status`]).catch(() => undefined);
      const m = out && /VmHWM:\s+(\d+) kB/.exec(out.stdout);
      if (m) peakKb = Math.max(peakKb, Number(m[1]));
      else if (out && out.code !== 0) break;
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return peakKb / 1024;
    },
  };
}

/** Kill every process of the groups given (best effort). */
export function killGroups(pgids: readonly number[]): void {
  for (const pgid of pgids) {
    try {
      Deno.kill(-pgid, "SIGKILL");
    } catch {
      // gone
    }
  }
}

/** A backlog of open P1 gaps of effort `s`. */
export function backlogOf(ids: readonly string[]): string {
  const lines = ["gaps:"];
  for (const id of ids) {
    lines.push(`  - id: ${id}`, `    title: bench ${id}`, "    priority: P1", "    effort: s");
    lines.push("    status: open");
  }
  return lines.join("\n") + "\n";
}
