/**
 * The program behind the CLI: command -> work -> exit code. Output goes
 * through an injected {@linkcode Io} so tests can run it in-process.
 *
 * Each command's module is imported when it runs: a dry run (the default,
 * and what a cold start costs) loads neither the dispatcher nor the monitor.
 *
 * @module
 */
import { EXIT, type Io } from "../cli/io.ts";
import { type Command, parseCli, PROGRAM, VERSION } from "../cli/parse.ts";
import { dropWritesIfReadOnly } from "../cli/permissions.ts";

/**
 * Run a command line to completion.
 *
 * @param argv arguments without the program name
 * @param io output and environment
 * @returns the exit code
 * @example
 * ```ts
 * import { runCli } from "./run.ts";
 *
 * const io = { out: console.log, err: console.error, env: () => undefined };
 * const code = await runCli(["--help"], io); // 0, after printing the usage
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
      if (command.options.dryRun) {
        const { runDryRun } = await import("./dry_run.ts");
        return await runDryRun(command.options, io);
      } else {
        const { runExecute } = await import("./execute.ts");
        return await runExecute(command.options, io);
      }
    case "self-test": {
      const { runSelfTest } = await import("./self_test.ts");
      const { listenForInterrupts } = await import("../process/interrupt.ts");
      using interrupt = listenForInterrupts(io.err);
      // The self-test's repo is a temp dir removed at its end: nothing is left to adopt.
      const { stop, hurry, signalName } = interrupt;
      return await runSelfTest(io, {
        maxParallel: command.options.maxParallel,
        interrupt: { stop, hurry, signalName },
      });
    }
    case "reflections": {
      const { runReflections } = await import("./reflections.ts");
      return await runReflections(command.options, io);
    }
    case "status": {
      const { runStatus } = await import("./status.ts");
      return await runStatus(command.options, io);
    }
    case "reap": {
      const { runReap } = await import("./reap.ts");
      return await runReap(command.options, io);
    }
    case "logs": {
      const { runLogs } = await import("./logs.ts");
      return await runLogs(command.options, io);
    }
    case "simulate": {
      const { runSimulate } = await import("./simulate.ts");
      return await runSimulate(command.options, io);
    }
    case "lessons": {
      const { runLessons } = await import("./lessons.ts");
      return await runLessons(command.options, io);
    }
    case "route": {
      const { runRoute } = await import("./route.ts");
      return await runRoute(command.options, io);
    }
    case "serve": {
      const { runDashboard } = await import("./dashboard.ts");
      return await runDashboard(command.options, io);
    }
    case "watch": {
      const { runExecute } = await import("./execute.ts");
      return await runExecute(command.options, io, { adoptOnly: true });
    }
  }
}
