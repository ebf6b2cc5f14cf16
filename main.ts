/**
 * chump-orchestrator's command line: flags -> command -> exit code. Any
 * error becomes one line on stderr; nothing here a test would want.
 *
 * Under `deno task` this process has no write access: a command that writes
 * starts main.ts once more with exactly its write paths (lib/commands/launch.ts);
 * the rest runs here. The demo agent (`demo-agent`, what the self-test
 * dispatches) loads only its own module, so each agent starts fast and
 * without the YAML parser.
 *
 * @module
 */

import { envVar } from "./lib/util/env.ts";
import type { LinesOut } from "./lib/cli/lines_out.ts";

/** The launch's module, by a computed specifier: Deno does not read it for `--help`. */
const LAUNCH = new URL("./lib/commands/launch.ts", import.meta.url).href;

/** The buffered stdout of a command (flushed before the exit). */
let stdout: LinesOut | undefined;

if (import.meta.main) {
  let code: number;
  try {
    if (Deno.args[0] === "demo-agent") {
      // An agent works where it was started: its worktree.
      // A literal specifier: the agent may read only its worktree, and a module in the graph at
      // start needs no read permission (one loaded by a computed specifier would).
      const { runDemoAgent } = await import("./lib/commands/demo_agent.ts");
      code = await runDemoAgent(Deno.args.slice(1));
    } else {
      // `deno task` runs in the config's directory; INIT_CWD is where the user
      // was, so relative paths (and messages about them) mean what they typed.
      const initCwd = envVar("INIT_CWD");
      if (initCwd) Deno.chdir(initCwd);
      const { runCli } = await import("./lib/commands/run.ts");
      const { linesOut } = await import("./lib/cli/lines_out.ts");
      // Stdout in large writes (a big dry run is thousands of lines); stderr as it comes, after
      // what stdout had waiting, so the two stay in order on a terminal.
      stdout = linesOut(Deno.stdout);
      const out = stdout;
      const io = {
        out: (line: string) => out.line(line),
        err: (line: string) => {
          out.flush();
          print(console.error, line);
        },
        env: envVar,
      };
      // `--help` and `--version` write nothing: no relaunch to weigh, its modules not loaded.
      const answers = Deno.args.some((a) => a === "--help" || a === "-h" || a === "--version");
      code = answers
        ? await runCli(Deno.args, io)
        : await (await import(LAUNCH)).launch(Deno.args, (argv: string[]) =>
          runCli(argv, io), io.err);
    }
  } catch (e) {
    stdout?.flush();
    const message = e instanceof Error ? e.message : String(e);
    console.error(`chump-orchestrator: internal error: ${message.split("\n")[0]}`);
    code = 1;
  }
  stdout?.flush();
  Deno.exit(code);
}

/**
 * Print a line; a terminal that is gone (EIO after a hangup) is not an error:
 * the run still ends its agents and writes their reflections.
 */
function print(write: (line: string) => void, line: string): void {
  try {
    write(line);
  } catch {
    // nowhere to print to
  }
}
