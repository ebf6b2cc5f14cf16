/**
 * The one check that parsed data (JSON, YAML) is a plain object: not null,
 * not an array.
 *
 * @module
 */

/**
 * Is `v` a plain object (a JSON or YAML mapping)?
 *
 * @example
 * ```ts
 * isRecord({ a: 1 }); // true
 * isRecord([1]); // false
 * isRecord(null); // false
 * ```
 */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}
