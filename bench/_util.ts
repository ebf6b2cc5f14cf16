/**
 * Benchmark plumbing: timing, medians, CPU time, a process's peak memory,
 * one table row, and running the real CLI as a subprocess.
 *
 * @module
 */
import { cpuUsage } from "node:process";
import { join } from "node:path";
import { permissionFlags } from "../lib/cli/permissions.ts";
import { FIXTURE, ROOT, runProcess } from "../tests/_helpers.ts";

export { FIXTURE, ROOT };

/** One line of the results table. */
export interface Row {
  section: string;
  measure: string;
  result: string;
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

/** This process's CPU time (user + system), ms. */
export function cpuMs(): number {
  const u = cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Run a command to completion (the tests' helper). */
export const output = runProcess;

/**
 * `deno run` arguments that start main.ts exactly as the `dispatch` task's
 * launcher would for a run writing `writes`.
 */
export function mainArgs(writes: string[], extraRun: string[] = []): string[] {
  return [
    "run",
    "--quiet",
    `--config=${join(ROOT, "deno.json")}`,
    ...permissionFlags(writes, extraRun),
    join(ROOT, "main.ts"),
  ];
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
      const out = await output("cat", [`/proc/${pid}/status`]).catch(() => undefined);
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
