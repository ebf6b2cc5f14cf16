/**
 * The program behind the CLI: command -> work -> exit code. Output goes
 * through an injected {@linkcode Io} so tests can run it in-process.
 *
 * @module
 */
import { EXIT, type Io } from "../cli/io.ts";
import { type Command, parseCli, PROGRAM, VERSION } from "../cli/parse.ts";
import { dropWritesIfReadOnly } from "../cli/permissions.ts";
import { listenForInterrupts } from "../cli/interrupt.ts";
import { runDryRun } from "./dry_run.ts";
import { runExecute } from "./execute.ts";
import { runReap } from "./reap.ts";
import { runReflections } from "./reflections.ts";
import { runSelfTest } from "./self_test.ts";
import { runStatus } from "./status.ts";

/**
 * Run a command line to completion.
 *
 * @param argv arguments without the program name
 * @param io output and environment
 * @returns the exit code
 * @example
 * ```ts
 * const code = await runCli(["--help"], io);
 * ```
 */
export async function runCli(argv: readonly string[], io: Io): Promise<number> {
  const parsed = parseCli(argv);
  if (!parsed.ok) {
    io.err(`${PROGRAM}: error: ${parsed.error}`);
    return EXIT.usage;
  }
  if (Deno.build.standalone) dropWritesIfReadOnly(parsed.value);
  return await runCommand(parsed.value, io);
}

async function runCommand(command: Command, io: Io): Promise<number> {
  switch (command.kind) {
    case "help":
      io.out(command.text);
      return EXIT.ok;
    case "version":
      io.out(`${PROGRAM} ${VERSION}`);
      return EXIT.ok;
    case "dispatch":
      return command.options.dryRun
        ? await runDryRun(command.options, io)
        : await runExecute(command.options, io);
    case "self-test": {
      using interrupt = listenForInterrupts(io.err);
      return await runSelfTest(io, { maxParallel: command.options.maxParallel, interrupt });
    }
    case "reflections":
      return await runReflections(command.options, io);
    case "status":
      return await runStatus(command.options, io);
    case "reap":
      return await runReap(command.options, io);
  }
}
