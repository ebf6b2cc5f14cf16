/**
 * The program behind the CLI: command line -> command -> exit code. Output
 * goes through an injected {@linkcode Io} so tests can run it in-process. A
 * command returns its exit code or a {@linkcode Failure}; this is the one
 * place a failure is printed (cli/io.ts `errorLine`).
 *
 * Each command's module is imported when it runs: a dry run (the default,
 * and what a cold start costs) loads neither the dispatcher nor the monitor.
 *
 * @module
 */
import { errorLine, EXIT, type Exit, type Io, PROGRAM } from "../cli/io.ts";
import { type Command, parseCli, VERSION } from "../cli/parse.ts";
import { ok } from "../util/result.ts";

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
    io.err(errorLine(parsed.error));
    return EXIT.usage;
  }
  const done = await runCommand(parsed.value, io);
  if (done.ok) return done.value;
  io.err(errorLine(done.error.message));
  return done.error.code;
}

/**
 * A command's module, loaded when it runs. The specifier is computed, not a
 * literal, so Deno does not read every command's module graph at start
 * (it follows literal `import()`s); `deno compile` includes them by name.
 */
function load<T>(name: string): Promise<T> {
  return import(new URL(`./${name}.ts`, import.meta.url).href);
}

async function runCommand(command: Command, io: Io): Promise<Exit> {
  switch (command.kind) {
    case "help":
      io.out(command.text);
      return ok(EXIT.ok);
    case "version":
      io.out(`${PROGRAM} ${VERSION}`);
      return ok(EXIT.ok);
    case "dispatch":
      return command.options.noDryRun
        ? await (await load<typeof import("./execute.ts")>("execute")).runExecute(
          command.options,
          io,
        )
        : await (await load<typeof import("./dry_run.ts")>("dry_run")).runDryRun(
          command.options,
          io,
        );
    case "watch":
      return await (await load<typeof import("./execute.ts")>("execute")).runExecute(
        command.options,
        io,
        {
          adoptOnly: true,
        },
      );
    case "self-test":
      return await (await load<typeof import("./self_test.ts")>("self_test")).runSelfTestCommand(
        command.options,
        io,
      );
    case "reflections":
      return await (await load<typeof import("./reflections.ts")>("reflections")).runReflections(
        command.options,
        io,
      );
    case "status":
      return await (await load<typeof import("./status.ts")>("status")).runStatus(
        command.options,
        io,
      );
    case "reap":
      return await (await load<typeof import("./reap.ts")>("reap")).runReap(command.options, io);
    case "stop":
      return await (await load<typeof import("./stop.ts")>("stop")).runStop(command.options, io);
    case "unpark":
      return await (await load<typeof import("./unpark.ts")>("unpark")).runUnpark(
        command.options,
        io,
      );
    case "logs":
      return await (await load<typeof import("./logs.ts")>("logs")).runLogs(command.options, io);
    case "simulate":
      return await (await load<typeof import("./simulate.ts")>("simulate")).runSimulate(
        command.options,
        io,
      );
    case "lessons":
      return await (await load<typeof import("./lessons.ts")>("lessons")).runLessons(
        command.options,
        io,
      );
    case "route":
      return await (await load<typeof import("./route.ts")>("route")).runRoute(command.options, io);
    case "serve":
      return await (await load<typeof import("./dashboard.ts")>("dashboard")).runDashboard(
        command.options,
        io,
      );
  }
}
