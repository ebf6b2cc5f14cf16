/**
 * Questions about the file system that the rest asks in one way.
 *
 * @module
 */

/**
 * Can `path` be stat'ed (it exists, symlinks followed)? Any error is a no.
 * Asked synchronously: one stat at a command's start costs less than a
 * trip through the runtime's thread pool (the first one starts the pool).
 *
 * @example
 * ```ts
 * statable("/"); // true
 * ```
 */
export function statable(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}
