/**
 * chump-orchestrator's command line: flags -> command -> exit code. Any
 * error becomes one line on stderr; nothing here a test would want.
 *
 * @module
 */
import { runCli } from "./lib/app.ts";
import { PROGRAM } from "./lib/cli.ts";
import { errorMessage } from "./lib/result.ts";

if (import.meta.main) {
  let code: number;
  try {
    // `deno task` runs in the config's directory; INIT_CWD is where the user
    // was, so relative paths (and messages about them) mean what they typed.
    const initCwd = safeEnv("INIT_CWD");
    if (initCwd) Deno.chdir(initCwd);
    code = await runCli(Deno.args, {
      out: (line) => console.log(line),
      err: (line) => console.error(line),
      env: safeEnv,
    });
  } catch (e) {
    console.error(`${PROGRAM}: internal error: ${errorMessage(e).split("\n")[0]}`);
    code = 1;
  }
  Deno.exit(code);
}

/** An environment variable, or undefined when it is unset or not permitted. */
function safeEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}
