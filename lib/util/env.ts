/**
 * Reading the environment under narrow permissions: a variable this process
 * may not read counts as unset, never as an error.
 *
 * @module
 */

/**
 * An environment variable, or undefined when it is unset, empty or not permitted.
 *
 * @param name the variable
 * @example
 * ```ts
 * import { envVar } from "./env.ts";
 *
 * envVar("CHUMP_AGENT_CMD"); // undefined unless set
 * ```
 */
export function envVar(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined;
  }
}

/**
 * The temp directory: `$TMPDIR`, else `/tmp`. (node:os `tmpdir()` also reads
 * TMP and TEMP, which would widen `--allow-env` for nothing on Unix.)
 *
 * @example
 * ```ts
 * import { tempDir } from "./env.ts";
 *
 * tempDir(); // "/tmp" unless TMPDIR is set
 * ```
 */
export function tempDir(): string {
  return envVar("TMPDIR") ?? "/tmp";
}

/**
 * This host's name, or "" when it may not be read (without `--allow-sys=hostname`).
 *
 * @example
 * ```ts
 * import { hostName } from "./env.ts";
 *
 * typeof hostName(); // "string"
 * ```
 */
export function hostName(): string {
  try {
    return Deno.hostname();
  } catch {
    return "";
  }
}
