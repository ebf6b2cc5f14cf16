/**
 * Questions about the file system that the rest asks in one way.
 *
 * @module
 */

/**
 * Can `path` be stat'ed (it exists, symlinks followed)? Any error is a no.
 *
 * @example
 * ```ts
 * await statable("/"); // true
 * ```
 */
export function statable(path: string): Promise<boolean> {
  return Deno.stat(path).then(() => true, () => false);
}
