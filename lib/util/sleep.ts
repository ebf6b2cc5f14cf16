/**
 * The one way this program waits: a timer that an `AbortSignal` can cut
 * short, so every wait (a tick, a kill grace, a lock retry) stops at once
 * when the operator interrupts.
 *
 * @module
 */

/**
 * Resolve after `ms`, or at once when `signal` aborts (never rejects).
 *
 * @param ms how long to wait, in milliseconds
 * @param signal ends the wait early when it aborts
 * @example
 * ```ts
 * import { sleep } from "./sleep.ts";
 *
 * await sleep(10);
 * const stop = new AbortController();
 * stop.abort();
 * await sleep(60_000, stop.signal); // returns at once
 * ```
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    signal?.addEventListener("abort", done, { once: true });
  });
}
