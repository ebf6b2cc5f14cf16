/**
 * The least-privilege entry point behind `deno task dispatch` (and the
 * self-test, reflections, status and reap tasks): it works out which repo
 * and DB this run touches and starts main.ts with exactly the permissions
 * that run needs (see lib/permissions.ts): writes only to the repo's
 * `.claude`, the DB's directory and the temp dir (none at all for a dry
 * run), no network, a fixed list of programs plus `CHUMP_ALLOW_RUN`.
 *
 * The launcher itself may read, run `git` (to find the repo) and `deno`, and
 * nothing else. Signals: the terminal's Ctrl-C reaches main.ts directly (same
 * process group), so the launcher only stays alive for it; a SIGTERM or SIGHUP
 * sent to the launcher alone is passed on. The exit code is main.ts's.
 *
 * @module
 */
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseCli } from "./lib/cli/parse.ts";
import { resolvePaths } from "./lib/cli/paths.ts";
import { extraRunFrom, permissionFlags, writePaths } from "./lib/cli/permissions.ts";

if (import.meta.main) {
  const env = (name: string) => {
    try {
      return Deno.env.get(name);
    } catch {
      return undefined;
    }
  };
  const initCwd = env("INIT_CWD");
  if (initCwd) Deno.chdir(initCwd);

  let writes: string[] = [];
  const parsed = parseCli(Deno.args);
  if (parsed.ok && "options" in parsed.value) {
    const command = parsed.value;
    const { repoRoot, db } = await resolvePaths(
      command.options as { repoRoot?: string; db?: string },
    );
    writes = writePaths(command, { repoRoot, db: resolve(db) });
  }
  // A bad command line gets no write permission: main.ts only prints the error.

  const main = fileURLToPath(new URL("./main.ts", import.meta.url));
  const config = fileURLToPath(new URL("./deno.json", import.meta.url));
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      `--config=${config}`,
      ...permissionFlags(writes, extraRunFrom(env("CHUMP_ALLOW_RUN"))),
      main,
      ...Deno.args,
    ],
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  Deno.addSignalListener("SIGINT", () => {});
  for (const signal of ["SIGTERM", "SIGHUP"] as const) {
    Deno.addSignalListener(signal, () => {
      try {
        child.kill(signal);
      } catch {
        // already gone
      }
    });
  }
  const status = await child.status;
  Deno.exit(status.code);
}
