/**
 * Errors as values. Library functions that can fail on input return a
 * `Result`; the CLI edge turns a failure into one line and an exit code.
 *
 * @module
 */

/** A success carrying `value`, or a failure carrying `error`. */
export type Result<T, E = string> = { ok: true; value: T } | { ok: false; error: E };

/**
 * Wrap a value as a success.
 *
 * @example
 * ```ts
 * const r = ok(3); // { ok: true, value: 3 }
 * ```
 */
export function ok<T>(value: T): { ok: true; value: T } {
  return { ok: true, value };
}

/**
 * Wrap an error as a failure.
 *
 * @example
 * ```ts
 * const r = fail("backlog not found: docs/gaps.yaml");
 * ```
 */
export function fail<E>(error: E): { ok: false; error: E } {
  return { ok: false, error };
}

/**
 * The message of anything thrown, without a stack.
 *
 * @example
 * ```ts
 * errorMessage(new Error("boom")); // "boom"
 * ```
 */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
