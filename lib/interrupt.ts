/**
 * SIGINT / SIGTERM while dispatching or watching: the first one stops the
 * run (stop picking, end every agent, write their reflections), a second
 * one skips the rest of the kill grace. The reflections are written either way.
 *
 * @module
 */
import type { Interrupt } from "./run.ts";

const SIGNALS: Deno.Signal[] = ["SIGINT", "SIGTERM"];

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
  let name: string | undefined;
  const handlers = new Map<Deno.Signal, () => void>();
  for (const signal of SIGNALS) {
    const handler = () => {
      if (!stop.signal.aborted) {
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
    signalName: () => name,
    [Symbol.dispose]() {
      for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
      handlers.clear();
    },
  };
}
