/**
 * `deno task compile`: build the standalone `chump-orchestrator` binary with
 * `deno compile`, embedding the program, the self-test backlog and the same
 * permissions the tasks grant (lib/commands/permissions.ts).
 *
 * ```
 * deno task compile                 # this machine's target -> dist/chump-orchestrator
 * deno task compile --all           # every target -> dist/chump-orchestrator-<target>[.exe]
 * deno task compile --target T      # one target
 * deno task compile --out DIR       # somewhere other than dist/
 * ```
 *
 * `deno compile` needs Deno's `denort` runtime for each target and downloads
 * it from dl.deno.land; without internet set `DENORT_BIN` to a denort binary
 * of the pinned Deno version. Every failure is one line and exit 1. A binary
 * built for this machine is run once (`--version`) before it is kept, so a
 * wrong DENORT_BIN (say, the full `deno` binary) never leaves a broken file.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { BINARY_NAME, compiledPermissionFlags, extraRunFrom } from "../lib/commands/permissions.ts";
import { VERSION } from "../lib/cli/parse.ts";
import { envVar } from "../lib/util/env.ts";
import { runnableDeno } from "../lib/commands/launch.ts";
import { errorMessage } from "../lib/util/result.ts";

/** Every target `deno compile --target` supports. */
export const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
];

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The output file of one target. */
export function outputFor(dir: string, target: string, many: boolean): string {
  const name = many ? `${BINARY_NAME}-${target}` : BINARY_NAME;
  return join(dir, target.includes("windows") ? `${name}.exe` : name);
}

/** Why `deno compile` failed, as one readable clause. */
export function compileFailure(plain: string, target: string, denort?: string): string {
  if (/Could not find denort/i.test(plain)) {
    return `DENORT_BIN=${denort} does not exist`;
  }
  if (/dl\.deno\.land|denort|error sending request|dns error|Download/i.test(plain)) {
    const cause = plain.split("Stack backtrace")[0].split("\n").map((l) => l.trim())
      .filter((l) => /^\d+: /.test(l)).at(-1)?.replace(/^\d+: /, "");
    return `deno compile needs Deno's denort runtime for ${target} and could not download it` +
      `${
        cause ? ` (${cause})` : ""
      }; set DENORT_BIN to the denort binary of Deno ${Deno.version.deno} ` +
      `for ${target} (from https://dl.deno.land/release/v${Deno.version.deno}/denort-${target}.zip)`;
  }
  const error = plain.split("\n").map((l) => l.trim()).find((l) => l.startsWith("error:"));
  return error ?? plain.trim().split("\n")[0] ?? "deno compile failed";
}

async function build(
  deno: string,
  target: string,
  output: string,
  denort?: string,
): Promise<string | undefined> {
  const args = [
    "compile",
    "--quiet",
    "--no-check",
    `--config=${join(ROOT, "deno.json")}`,
    `--target=${target}`,
    `--output=${output}`,
    ...compiledPermissionFlags(extraRunFrom(envVar("CHUMP_ALLOW_RUN"))),
    // Modules loaded by a computed specifier: the subcommands (lib/commands/run.ts) and the
    // shared ledger's (lib/commands/_sources.ts), the full backlog parser (lib/backlog/load.ts).
    `--include=${join(ROOT, "lib", "commands")}`,
    `--include=${join(ROOT, "lib", "store", "pg")}`,
    `--include=${join(ROOT, "lib", "backlog", "parse.ts")}`,
    join(ROOT, "main.ts"),
  ];
  const out = await new Deno.Command(deno, {
    args,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) return compileFailure(new TextDecoder().decode(out.stderr), target, denort);
  if (target !== Deno.build.target) return undefined;
  return await verify(deno, output, denort);
}

/**
 * Run a freshly built binary for this machine once; remove it when it is not
 * chump-orchestrator. Deno refuses to write a file that `--allow-run` names,
 * so a child Deno that may run only that file does the run.
 */
async function verify(
  deno: string,
  output: string,
  denort?: string,
): Promise<string | undefined> {
  const out = await new Deno.Command(deno, {
    args: [
      "run",
      "--quiet",
      "--no-prompt",
      "--no-config",
      `--allow-run=${output}`,
      fileURLToPath(import.meta.url),
      "--version-of",
      output,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const printed = new TextDecoder().decode(out.stdout).trim();
  if (printed === `${BINARY_NAME} ${VERSION}`) return undefined;
  await Deno.remove(output).catch(() => {});
  return `the built binary does not run as ${BINARY_NAME} (it printed '${printed.slice(0, 80)}')` +
    (denort ? `: DENORT_BIN=${denort} is not a denort runtime` : "") + "; removed it";
}

/** The first line `binary --version` prints (20 s at most), or why it could not run. */
async function versionOf(binary: string): Promise<string> {
  try {
    const child = new Deno.Command(binary, {
      args: ["--version"],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    const out = await child.output();
    clearTimeout(timer);
    return new TextDecoder().decode(out.stdout).trim().split("\n")[0] ?? "";
  } catch (e) {
    return (e instanceof Error ? e.message : String(e)).split("\n")[0];
  }
}

if (import.meta.main) {
  let parsed;
  try {
    parsed = parseArgs({
      args: Deno.args,
      options: {
        all: { type: "boolean" },
        target: { type: "string", multiple: true },
        out: { type: "string" },
        "version-of": { type: "string" },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (e) {
    console.error(`compile: ${e instanceof Error ? e.message : e}`);
    console.error("usage: deno task compile [--all | --target T ...] [--out DIR]");
    Deno.exit(2);
  }
  if (parsed.values["version-of"]) {
    console.log(await versionOf(parsed.values["version-of"]));
    Deno.exit(0);
  }
  const initCwd = envVar("INIT_CWD");
  if (initCwd) Deno.chdir(initCwd);
  const targets = parsed.values.all ? TARGETS : parsed.values.target ?? [Deno.build.target];
  const unknown = targets.find((t) => !TARGETS.includes(t));
  if (unknown) {
    console.error(`compile: unknown target '${unknown}' (one of: ${TARGETS.join(", ")})`);
    Deno.exit(2);
  }
  const denort = envVar("DENORT_BIN");
  if (denort && targets.length > 1) {
    console.error(
      `compile: DENORT_BIN is the runtime of one target; build one --target at a time with it`,
    );
    Deno.exit(2);
  }
  // `deno task` may not be able to start its own execPath (a symlinked or off-PATH Deno).
  const deno = runnableDeno();
  if (!deno.ok) {
    console.error(`compile: cannot run deno compile: ${deno.error}`);
    Deno.exit(1);
  }
  const dir = parsed.values.out ?? join(ROOT, "dist");
  try {
    await Deno.mkdir(dir, { recursive: true });
  } catch (e) {
    console.error(
      `compile: cannot create ${dir}: ${errorMessage(e).split("\n")[0]}` +
        (e instanceof Deno.errors.NotCapable
          ? " (the compile task may write only dist/; pass an --out under it)"
          : ""),
    );
    Deno.exit(1);
  }
  let failed = 0;
  for (const target of targets) {
    const output = outputFor(dir, target, targets.length > 1 || target !== Deno.build.target);
    const near = relative(Deno.cwd(), output);
    const shown = near === "" || near.startsWith("..") ? output : near;
    const problem = await build(deno.value, target, output, denort);
    if (problem) {
      console.error(`compile: cannot build ${shown}: ${problem}`);
      failed++;
    } else {
      const mb = ((await Deno.stat(output)).size / 1e6).toFixed(0);
      console.log(`built ${shown} (${target}, ${mb} MB)`);
    }
  }
  Deno.exit(failed > 0 ? 1 : 0);
}
