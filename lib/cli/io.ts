/**
 * What every command prints through and how it reads its environment, and
 * the exit codes of CONTRACT §6. Commands take an {@linkcode Io} so tests can
 * run them in-process.
 *
 * @module
 */

/** Where output goes and how the environment is read. Relative paths are relative to the cwd. */
export interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
  env: (name: string) => string | undefined;
}

/** Exit codes of CONTRACT §6. */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  notShipped: 3,
  interrupted: 130,
} as const;
