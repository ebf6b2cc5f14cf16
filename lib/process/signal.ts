/**
 * Ending a process group: SIGTERM, a grace, SIGKILL, and a check that the
 * group is really gone.
 *
 * Signalling a group uses `Deno.kill(-pgid)` when Deno allows it (an
 * unrestricted `--allow-run`), else the `kill` program. A group that is gone
 * already counts as terminated; the orchestrator's own group is never signalled.
 *
 * @module
 */
import { errorMessage } from "../util/result.ts";
import { sleep } from "../util/sleep.ts";
import { oneLine } from "../util/text.ts";
import { runHelper } from "./helper.ts";
import { groupAlive, processTable } from "./table.ts";

/**
 * How {@linkcode terminateGroup} went.
 *
 * @example
 * ```ts
 * const result: TerminateResult = await terminateGroup(agent.pgid, { graceMs: 30_000 });
 * if (!result.gone) console.error(`agent ${agent.pid} survived: ${result.reason ?? "still running"}`);
 * ```
 */
export interface TerminateResult {
  /** True when SIGKILL had to be sent after the grace. */
  escalated: boolean;
  /** True when no live (non-zombie) process of the group remains. */
  gone: boolean;
  /** Why the group could not be signalled (e.g. Deno lacks an unrestricted `--allow-run`); absent when it could. */
  reason?: string;
}

/**
 * How often a dying group is checked: fast enough that a prompt exit is
 * noticed at once; concurrent checks share one `ps` run.
 */
const POLL_MS = 25;

/**
 * How long to wait for a group to vanish after SIGKILL, which cannot be
 * ignored; only a process stuck in the kernel (D state) takes longer.
 */
const KILL_WAIT_MS = 5_000;

/** `kill` returns at once; one that does not within this is treated as failed. */
const KILL_HELPER_TIMEOUT_MS = 5_000;

/**
 * SIGTERM the process group, wait up to `graceMs` for it to empty, then SIGKILL it
 * and wait (briefly) until it is gone. `skipGrace` aborting cuts the grace short.
 * Never throws: a group that is gone already counts as terminated, and a group
 * that cannot be signalled (no permission, a refused id) comes back with a `reason`.
 *
 * @param pgid the group to end (an agent's pid); 0, 1, negative values and the
 *   orchestrator's own group are refused (`gone: false`)
 * @param options `graceMs` between SIGTERM and SIGKILL; `skipGrace` to cut it short
 * @returns whether SIGKILL was needed, whether the group is gone, and why not when it could not be signalled
 * @example
 * ```ts
 * const { escalated, gone } = await terminateGroup(agent.pgid, { graceMs: 30_000 });
 * ```
 */
export async function terminateGroup(
  pgid: number,
  options: { graceMs: number; skipGrace?: AbortSignal },
): Promise<TerminateResult> {
  const { graceMs, skipGrace } = options;
  if (!(await isForeignGroup(pgid))) {
    return { escalated: false, gone: false, reason: `refusing to signal process group ${pgid}` };
  }

  const term = await signalGroup(pgid, "SIGTERM");
  if (term === "gone") return { escalated: false, gone: true };
  if (term !== "sent") {
    return { escalated: false, gone: !(await groupAlive(pgid)), reason: term.denied };
  }

  const graceEnd = performance.now() + Math.max(0, graceMs);
  while ((await groupAlive(pgid)) && !skipGrace?.aborted && performance.now() < graceEnd) {
    await sleep(Math.min(POLL_MS, Math.max(1, graceEnd - performance.now())), skipGrace);
  }
  if (!(await groupAlive(pgid))) return { escalated: false, gone: true };

  const kill = await signalGroup(pgid, "SIGKILL");
  if (kill === "gone") return { escalated: true, gone: true };
  if (kill !== "sent") {
    return { escalated: true, gone: !(await groupAlive(pgid)), reason: kill.denied };
  }
  const killEnd = performance.now() + KILL_WAIT_MS;
  while ((await groupAlive(pgid)) && performance.now() < killEnd) await sleep(POLL_MS);
  return { escalated: true, gone: !(await groupAlive(pgid)) };
}

/**
 * Send `signal` to every process of group `pgid`: sent, gone already, or why
 * not. `Deno.kill(-pgid)` needs an unrestricted `--allow-run`; under a narrow
 * one the `kill` program does it.
 */
async function signalGroup(
  pgid: number,
  signal: Deno.Signal,
): Promise<"sent" | "gone" | { denied: string }> {
  try {
    Deno.kill(-pgid, signal);
    return "sent";
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return "gone";
    if (!(e instanceof Deno.errors.NotCapable)) {
      return {
        denied: `cannot send ${signal} to process group ${pgid}: ${oneLine(errorMessage(e))}`,
      };
    }
  }
  const out = await runHelper("kill", ["-s", signal.replace(/^SIG/, ""), "--", `-${pgid}`], {
    env: { LC_ALL: "C" },
    timeoutMs: KILL_HELPER_TIMEOUT_MS,
  });
  if (!out.started) {
    return {
      denied:
        `cannot send ${signal} to process group ${pgid}: ${oneLine(errorMessage(out.error))} ` +
        "(grant --allow-run=kill)",
    };
  }
  if (out.code === 0 && !out.stopped) return "sent";
  const why = new TextDecoder().decode(out.stderr).trim();
  if (/no such process/i.test(why)) return "gone";
  return {
    denied: `cannot send ${signal} to process group ${pgid}: ${
      oneLine(why || (out.stopped ? `kill ${out.stopped}` : `kill exited ${out.code}`))
    }`,
  };
}

/** A group we may signal: a real id, and not the one the orchestrator itself runs in. */
async function isForeignGroup(pgid: number): Promise<boolean> {
  if (!Number.isInteger(pgid) || pgid <= 1 || pgid === Deno.pid) return false;
  const own = (await processTable()).ownGroup;
  return own === undefined || own !== pgid;
}
