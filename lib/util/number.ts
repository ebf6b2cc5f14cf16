/**
 * Numbers as reports show them.
 *
 * @module
 */

/**
 * `x` rounded to `digits` decimals (whole counts stay whole).
 *
 * @example
 * ```ts
 * roundTo(2.345678, 2); // 2.35
 * ```
 */
export function roundTo(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
