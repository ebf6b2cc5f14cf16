/**
 * How the program starts itself (for the demo agent): the compiled binary is
 * its own command; under `deno run` it is Deno running main.ts with the
 * project's config and only the permissions the demo agent needs.
 *
 * @module
 */
import { fileUrlPath } from "../util/path.ts";
import { tempDir } from "../util/env.ts";

/** Environment variables the demo agent reads. */
export const DEMO_AGENT_ENV = [
  "CHUMP_GAP_ID",
  "CHUMP_BRANCH",
  "CHUMP_WORKTREE",
  "CHUMP_BASE_REF",
  "CHUMP_DEMO_PLAN",
  "CHUMP_DEMO_READY_DIR",
  "CHUMP_DEMO_TOKENS",
  "CHUMP_DEMO_COST_USD",
  "CHUMP_FIX_ROUND",
];

/**
 * argv that runs this program's `demo-agent` subcommand.
 *
 * @example
 * ```ts
 * const argv = selfCommand("demo-agent");
 * ```
 */
export function selfCommand(...args: string[]): string[] {
  if (Deno.build.standalone) return [Deno.execPath(), ...args];
  const main = fileUrlPath(new URL("../../main.ts", import.meta.url));
  const config = fileUrlPath(new URL("../../deno.json", import.meta.url));
  return [
    Deno.execPath(),
    "run",
    "--quiet",
    "--no-prompt",
    `--config=${config}`,
    "--allow-run=git,sleep",
    `--allow-read=.,${tempDir()}`,
    // The worktree, and the temp dir for the readiness and gate files tests use.
    `--allow-write=.,${tempDir()}`,
    `--allow-env=${DEMO_AGENT_ENV.join(",")}`,
    main,
    ...args,
  ];
}
