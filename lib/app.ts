/**
 * The program behind the CLI: command -> work -> exit code. Output goes
 * through an injected {@linkcode Io} so tests can run it in-process.
 *
 * @module
 */
import { resolve } from "node:path";
import { type Backlog, loadBacklog } from "./backlog.ts";
import { type Command, type DispatchOptions, parseCli, PROGRAM, VERSION } from "./cli.ts";
import { gitTopLevel } from "./git.ts";
import { pickableGaps } from "./picker.ts";
import { renderPlan } from "./plan.ts";
import { assignSlugs, worktreeFor } from "./slug.ts";

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

/** Warnings printed per run before they are summarised (a 100k-gap backlog can have thousands). */
const MAX_WARNINGS_SHOWN = 50;

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
      return await runDispatch(command.options, io);
    default:
      io.err(`${PROGRAM}: error: '${command.kind}' is not available yet`);
      return EXIT.usage;
  }
}

/** Repo root (absolute) and backlog path (as given, or the default under the repo root). */
export async function resolvePaths(
  options: { repoRoot?: string; backlog?: string },
): Promise<{ repoRoot: string; backlog: string; defaultBacklog: boolean }> {
  const repoRoot = options.repoRoot !== undefined
    ? resolve(options.repoRoot)
    : (await gitTopLevel(Deno.cwd())) ?? Deno.cwd();
  const backlog = options.backlog ?? resolve(repoRoot, "docs", "gaps.yaml");
  return { repoRoot, backlog, defaultBacklog: options.backlog === undefined };
}

/**
 * Load a backlog and print its warnings; on failure print the one-line error.
 *
 * @returns the backlog, or undefined after printing why not
 */
export async function loadAndWarn(
  path: string,
  io: Io,
  isDefault = false,
): Promise<Backlog | undefined> {
  const loaded = await loadBacklog(path);
  if (!loaded.ok) {
    const hint = isDefault && loaded.error.startsWith("backlog not found")
      ? " (the default is docs/gaps.yaml under the repo root; pass --backlog PATH)"
      : "";
    io.err(`${PROGRAM}: error: ${loaded.error}${hint}`);
    return undefined;
  }
  const { warnings } = loaded.value;
  for (const w of warnings.slice(0, MAX_WARNINGS_SHOWN)) io.err(`warning: ${w}`);
  if (warnings.length > MAX_WARNINGS_SHOWN) {
    io.err(`warning: ... and ${warnings.length - MAX_WARNINGS_SHOWN} more warnings`);
  }
  return loaded.value;
}

async function runDispatch(options: DispatchOptions, io: Io): Promise<number> {
  const paths = await resolvePaths(options);
  const backlog = await loadAndWarn(paths.backlog, io, paths.defaultBacklog);
  if (!backlog) return EXIT.usage;
  if (!options.dryRun) {
    io.err(`${PROGRAM}: error: --no-dry-run is not available yet; only the dry run is`);
    return EXIT.usage;
  }
  const pickable = pickableGaps(backlog.gaps, { limit: Infinity, order: options.order });
  const picks = pickable.slice(0, options.maxParallel);
  const slugs = assignSlugs(backlog.gaps.map((g) => g.id));
  const lines = renderPlan({
    source: paths.backlog,
    gaps: backlog.gaps,
    pickable: pickable.length,
    picks,
    worktreeOf: (id) => worktreeFor(paths.repoRoot, slugs.get(id)!),
    maxParallel: options.maxParallel,
    order: options.order,
  });
  for (const line of lines) io.out(line);
  return EXIT.ok;
}
