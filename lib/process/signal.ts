/**
 * Ending a process group (or one process: an agent's descendant that left
 * its group, process/escaped.ts): SIGTERM, a grace, SIGKILL, and a check
 * that it is really gone.
 *
 * Signalling a group uses `Deno.kill(-pgid)` when Deno allows it (an
 * unrestricted `--allow-run`), else the `kill` program. A group that is gone
 * already counts as terminated; the orchestrator's own group is never signalled.
 *
 * A failed attempt never ends the sequence: a `kill` that could not start,
 * was cut short or timed out is retried, a SIGTERM that could not be sent
 * goes straight on to SIGKILL, and a group is only reported as not gone
 * (with the reason) once SIGKILL was sent and waited for, or could not be
 * sent however often it was tried.
 *
 * @module
 */
import { errorMessage } from "../util/result.ts";
import { sleep } from "../util/sleep.ts";
import { oneLine } from "../util/text.ts";
import { runHelper } from "./helper.ts";
import { Processes } from "./table.ts";

/**
 * How {@linkcode terminateGroup} went.
 *
 * @example
 * ```ts
 * declare const agent: { pid: number; pgid: number };
 * const result: TerminateResult = await terminateGroup(agent.pgid, { graceMs: 30_000 });
 * if (!result.gone) console.error(`agent ${agent.pid} survived: ${result.reason ?? "still running"}`);
 * ```
 */
export interface TerminateResult {
  /** True when SIGKILL had to be sent after the grace. */
  escalated: boolean;
  /** True when no live (non-zombie) process of the group remains. */
  gone: boolean;
  /** Why the group is not gone (SIGKILL could not be sent, or it outlived it); absent when gone. */
  reason?: string;
}

/**
 * What one attempt to signal a group did: sent, the group is gone already,
 * or why it failed.
 *
 * @example
 * ```ts
 * const r: SignalSent = "sent";
 * ```
 */
export type SignalSent = "sent" | "gone" | { failed: string };

/**
 * Sends one signal to what is being ended (a whole process group, or one
 * process), once (see {@linkcode signalGroup}). Injected into
 * {@linkcode terminateGroup} so tests can make attempts fail.
 */
export type GroupSignaller = (id: number, signal: Deno.Signal) => Promise<SignalSent>;

/**
 * What is ended: every process of a group, or one process (with its
 * identity from process/table.ts, so that a pid reused during the grace is
 * never signalled).
 */
export type Target = { group: number } | { process: number; identity?: string };

/** What {@linkcode terminateGroup} takes. */
export interface TerminateOptions {
  /** How long SIGTERM is given before SIGKILL, in milliseconds. */
  graceMs: number;
  /** Aborting it cuts the grace short (SIGKILL at once). */
  skipGrace?: AbortSignal;
  /** How a signal is sent (default {@linkcode signalGroup}). */
  send?: GroupSignaller;
  /** The process table to poll (default a new one; a run passes its own so kills share listings). */
  processes?: Processes;
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
 * Tries per signal before giving up on sending it, and the pause after the
 * first failed one (doubling): a `kill` cut short by chance gets through on
 * the next try; one that cannot work (no `kill` program) costs under 2 s.
 */
const SEND_ATTEMPTS = 5;
const RETRY_PAUSE_MS = 100;

/**
 * SIGTERM the process group, wait up to `graceMs` for it to empty, then SIGKILL it
 * and wait (briefly) until it is gone. `skipGrace` aborting cuts the grace short.
 * An empty group is left alone (nothing to signal), whether its leader lives or
 * not: a group whose leader exited may still hold its background children.
 * Never throws: a group that is gone already counts as terminated; a failed
 * attempt is retried, and a SIGTERM that cannot be sent goes on to SIGKILL.
 *
 * @param pgid the group to end (an agent's pid); 0, 1, negative values and the
 *   orchestrator's own group are refused (`gone: false`)
 * @param options `graceMs` between SIGTERM and SIGKILL; `skipGrace` to cut it short
 * @returns whether SIGKILL was needed, whether the group is gone, and why not
 * @example
 * ```ts
 * declare const agent: { pid: number; pgid: number };
 * const { escalated, gone } = await terminateGroup(agent.pgid, { graceMs: 30_000 });
 * ```
 */
export function terminateGroup(
  pgid: number,
  options: TerminateOptions,
): Promise<TerminateResult> {
  return terminate({ group: pgid }, options);
}

/**
 * End `target` as {@linkcode terminateGroup} ends a group: SIGTERM, the
 * grace, SIGKILL, and a check it is gone. One process: pid 0, 1, negative
 * and the orchestrator's own pid are refused.
 *
 * @example
 * ```ts
 * declare const escaped: { pid: number };
 * const { gone } = await terminate({ process: escaped.pid }, { graceMs: 2_000 });
 * ```
 */
export async function terminate(
  target: Target,
  options: TerminateOptions,
): Promise<TerminateResult> {
  const { graceMs, skipGrace, processes = new Processes() } = options;
  const id = "group" in target ? target.group : target.process;
  const send = options.send ??
    ("group" in target ? signalGroup : (pid: number, sig: Deno.Signal) => sendSignal(pid, sig));
  const alive = "group" in target
    ? () => processes.groupAlive(id)
    : async () => (await processes.table()).alive(id, target.identity);
  if (!(await mayEnd(processes, target))) {
    return { escalated: false, gone: false, reason: `refusing to signal ${nameOf(target)}` };
  }
  if (!(await alive())) return { escalated: false, gone: true };

  const term = await sendPersistently(
    alive,
    () => send(id, "SIGTERM"),
    "SIGTERM",
    target,
    skipGrace,
  );
  if (term === "gone") return { escalated: false, gone: true };
  if (term === "sent") {
    const graceEnd = performance.now() + Math.max(0, graceMs);
    while ((await alive()) && !skipGrace?.aborted && performance.now() < graceEnd) {
      await sleep(Math.min(POLL_MS, Math.max(1, graceEnd - performance.now())), skipGrace);
    }
  }
  // SIGTERM sent and the grace over, or SIGTERM failed: nothing left to wait for.
  if (!(await alive())) return { escalated: false, gone: true };

  const kill = await sendPersistently(alive, () => send(id, "SIGKILL"), "SIGKILL", target);
  if (kill === "gone") return { escalated: true, gone: true };
  if (kill !== "sent") {
    if (!(await alive())) return { escalated: false, gone: true };
    return { escalated: false, gone: false, reason: kill.failed };
  }
  const killEnd = performance.now() + KILL_WAIT_MS;
  while ((await alive()) && performance.now() < killEnd) await sleep(POLL_MS);
  if (!(await alive())) return { escalated: true, gone: true };
  const table = await processes.table({ fresh: true });
  if (!("group" in target ? table.groupAlive(id) : table.alive(id, target.identity))) {
    return { escalated: true, gone: true };
  }
  return {
    escalated: true,
    gone: false,
    reason: table.unknown
      ? "the process table could not be read (ps failed) to see it go"
      : `still running ${KILL_WAIT_MS / 1000}s after SIGKILL`,
  };
}

/** `process group N` or `process N`, for messages. */
function nameOf(target: Target): string {
  return "group" in target ? `process group ${target.group}` : `process ${target.process}`;
}

/**
 * Send `signal` until it is sent or the target is gone, at most
 * {@linkcode SEND_ATTEMPTS} times; the last failure when every try failed.
 * `hurry` aborting stops retrying (the caller moves on to SIGKILL).
 */
async function sendPersistently(
  alive: () => Promise<boolean>,
  sendOnce: () => Promise<SignalSent>,
  signal: Deno.Signal,
  target: Target,
  hurry?: AbortSignal,
): Promise<SignalSent> {
  let tries = 0;
  for (;;) {
    tries++;
    const result: SignalSent = await sendOnce().catch((e) => ({
      failed: `cannot send ${signal} to ${nameOf(target)}: ${oneLine(errorMessage(e))}`,
    }));
    if (result === "sent" || result === "gone") return result;
    if (tries >= SEND_ATTEMPTS || hurry?.aborted) {
      return { failed: `${result.failed} (tried ${tries}x)` };
    }
    await sleep(RETRY_PAUSE_MS * 2 ** (tries - 1), hurry);
    if (!(await alive())) return "gone";
  }
}

/**
 * Send `signal` to every process of group `pgid`, once: sent, gone already,
 * or why not. `Deno.kill(-pgid)` needs an unrestricted `--allow-run`; under a
 * narrow one the `kill` program does it (in a session of its own, so a
 * Ctrl-C meant for the orchestrator cannot end it half-way).
 *
 * @param pgid the process group
 * @param signal e.g. `SIGTERM`
 * @returns what the attempt did
 * @example
 * ```ts
 * declare const agent: { pid: number; pgid: number };
 * const r = await signalGroup(agent.pgid, "SIGTERM");
 * if (typeof r === "object") console.error(r.failed);
 * ```
 */
export function signalGroup(pgid: number, signal: Deno.Signal): Promise<SignalSent> {
  return sendSignal(-pgid, signal);
}

/**
 * Send `signal` once to `signed`: a pid, or minus a process group's id
 * (as kill(2) takes it).
 */
async function sendSignal(signed: number, signal: Deno.Signal): Promise<SignalSent> {
  const what = signed < 0 ? `process group ${-signed}` : `process ${signed}`;
  try {
    Deno.kill(signed, signal);
    return "sent";
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return "gone";
    if (!(e instanceof Deno.errors.NotCapable)) {
      return { failed: `cannot send ${signal} to ${what}: ${oneLine(errorMessage(e))}` };
    }
  }
  const out = await runHelper("kill", ["-s", signal.replace(/^SIG/, ""), "--", String(signed)], {
    env: { LC_ALL: "C" },
    timeoutMs: KILL_HELPER_TIMEOUT_MS,
  });
  if (!out.started) {
    return {
      failed: `cannot send ${signal} to ${what}: ${oneLine(errorMessage(out.error))} ` +
        "(grant --allow-run=kill)",
    };
  }
  if (out.code === 0 && !out.stopped) return "sent";
  const why = new TextDecoder().decode(out.stderr).trim();
  if (/no such process/i.test(why)) return "gone";
  return {
    failed: `cannot send ${signal} to ${what}: ${
      oneLine(why || (out.stopped ? `kill ${out.stopped}` : `kill exited ${out.code}`))
    }`,
  };
}

/**
 * What we may signal: a real id, not the orchestrator itself and not the
 * group it runs in.
 */
async function mayEnd(processes: Processes, target: Target): Promise<boolean> {
  const id = "group" in target ? target.group : target.process;
  if (!Number.isInteger(id) || id <= 1 || id === Deno.pid) return false;
  if (!("group" in target)) return true;
  const own = (await processes.table()).ownGroup;
  return own === undefined || own !== id;
}
