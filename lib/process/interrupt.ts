/**
 * SIGINT / SIGTERM while dispatching or watching: the first one stops the
 * run (stop picking, end every agent, write their reflections), a second one
 * skips the rest of the kill grace. The reflections are written either way.
 *
 * SIGHUP (the terminal closed, the SSH connection dropped, the laptop lid
 * shut) is not a request to throw work away: the run stops picking and exits
 * (129), leaving every agent running under its waiter with its lease, for
 * the next `watch` or `--no-dry-run --watch` to adopt. It says so first.
 *
 * @module
 */

/**
 * Asks a run to stop: `stop` first (stop picking, end agents), `hurry` to
 * skip the kill grace; with `leave` (a hangup) the agents are not ended but
 * left running for the next watching run to adopt.
 */
export interface Interrupt {
  readonly stop: AbortSignal;
  readonly hurry: AbortSignal;
  readonly leave?: AbortSignal;
  /** `SIGINT` or `SIGTERM` once stopped. */
  readonly signalName: () => string | undefined;
}

const SIGNALS: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/** Signals the task's first process passes on to the relaunched run (it ignores SIGINT: a Ctrl-C reaches us directly; see launch.ts). */
const PASSED_ON: readonly Deno.Signal[] = ["SIGTERM", "SIGHUP"];

/**
 * A repeat of the same signal this soon is the same request delivered twice
 * (a SIGTERM or SIGHUP to the whole process group reaches us directly and
 * through the task's first process, see launch.ts), not an operator pressing Ctrl-C again.
 */
const SAME_PRESS_MS = 200;

/**
 * Listen for interrupts until disposed.
 *
 * @param say where to tell the operator what happens
 * @example
 * ```ts
 * using interrupt = listenForInterrupts(console.error);
 * ```
 */
export function listenForInterrupts(say: (line: string) => void): Interrupt & Disposable {
  const stop = new AbortController();
  const hurry = new AbortController();
  const leave = new AbortController();
  let name: string | undefined;
  let last = { signal: "", at: -Infinity };
  const handlers = new Map<Deno.Signal, () => void>();
  for (const signal of SIGNALS) {
    const handler = () => {
      const now = performance.now();
      // Every SIGINT is a key press; SIGTERM and SIGHUP may arrive twice for one send.
      const repeat = PASSED_ON.includes(signal) && last.signal === signal &&
        now - last.at < SAME_PRESS_MS;
      last = { signal, at: now };
      if (repeat) return;
      if (!stop.signal.aborted && signal === "SIGHUP") {
        name = signal;
        say(
          "SIGHUP: the terminal is gone: no new dispatches; leaving every agent running for " +
            "the next 'watch' (or --no-dry-run --watch) to adopt",
        );
        leave.abort();
        stop.abort();
      } else if (!stop.signal.aborted) {
        name = signal;
        say(
          `${signal}: stopping: no new dispatches; ending every agent and writing its reflection ` +
            `(send it again to skip the kill grace)`,
        );
        stop.abort();
      } else if (!hurry.signal.aborted) {
        say(`${signal} again: skipping the kill grace; reflections are still written`);
        hurry.abort();
      }
    };
    try {
      Deno.addSignalListener(signal, handler);
      handlers.set(signal, handler);
    } catch {
      // Not every platform has every signal (Windows has no SIGTERM listener).
    }
  }
  return {
    stop: stop.signal,
    hurry: hurry.signal,
    leave: leave.signal,
    signalName: () => name,
    [Symbol.dispose]() {
      for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
      handlers.clear();
    },
  };
}

/**
 * For commands that run until the operator stops them (`serve`, `logs -f`,
 * `status --watch`): an abort signal that SIGINT or SIGTERM aborts, quietly,
 * with the listeners removed when disposed. Stopping that way is the normal
 * end of such a command, not an interrupted run.
 *
 * @example
 * ```ts
 * using stop = stopOnSignals();
 * while (!stop.signal.aborted) break;
 * ```
 */
export function stopOnSignals(): { signal: AbortSignal } & Disposable {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, onSignal);
  return {
    signal: stop.signal,
    [Symbol.dispose]() {
      for (const s of signals) Deno.removeSignalListener(s, onSignal);
    },
  };
}
