/**
 * What every command prints through and how it reads its environment, the
 * exit codes of CONTRACT §6, and the one shape of a command's failure: a
 * {@linkcode Failure} carries its message and its exit code up to the CLI
 * edge, which alone prints it ({@linkcode errorLine}). Commands take an
 * {@linkcode Io} so tests can run them in-process.
 *
 * @module
 */
import { fail, type Result } from "../util/result.ts";

/** The program's name in messages. */
export const PROGRAM = "chump-orchestrator";

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
  hungUp: 129,
  interrupted: 130,
} as const;

/** One of {@linkcode EXIT}'s codes. */
type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** The exit codes, as `--help` says them. */
export const EXIT_CODES_TEXT =
  `Exit codes: 0 success (with --watch: every outcome shipped), 1 runtime failure,
2 usage or input error, 3 --watch ended with an outcome other than shipped, 129 hung up
(SIGHUP: agents left running for 'watch' to adopt), 130 interrupted (SIGINT, SIGTERM).`;

/** Why a command could not do its work: one line, and the exit code it means. */
export interface Failure {
  message: string;
  code: ExitCode;
}

/** What a command comes to: its exit code, or a failure for the CLI edge to print. */
export type Exit = Result<number, Failure>;

/**
 * A usage or input error (exit 2): a bad flag, a backlog that does not load.
 *
 * @example
 * ```ts
 * usageError("no gap 'X-1' in docs/gaps.yaml").error.code; // 2
 * ```
 */
export function usageError(message: string): { ok: false; error: Failure } {
  return fail({ message, code: EXIT.usage });
}

/**
 * A runtime failure (exit 1): a DB or a ledger that cannot be read.
 *
 * @example
 * ```ts
 * runtimeError("database disk image is malformed").error.code; // 1
 * ```
 */
export function runtimeError(message: string): { ok: false; error: Failure } {
  return fail({ message, code: EXIT.failure });
}

/**
 * The one line a failure is printed as, at the CLI edge and nowhere else.
 *
 * @example
 * ```ts
 * errorLine("--tick must be at least 1ms, got '0'").endsWith(": error: --tick must be at least 1ms, got '0'"); // true
 * ```
 */
export function errorLine(message: string): string {
  return `${PROGRAM}: error: ${message}`;
}
