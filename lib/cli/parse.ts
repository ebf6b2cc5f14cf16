/**
 * Command line -> a typed command (pure: no I/O), from the flag table of
 * cli/catalog.ts and cli/commands.ts: the parser, the defaults and the help text all come from
 * it. Every bad flag or value becomes one line that names it; the CLI edge
 * (commands/run.ts) prints it and exits 2. `demo-agent` is not parsed here:
 * main.ts starts it before anything else loads.
 *
 * @module
 */
import { fail, ok, type Result } from "../util/result.ts";
import { wrap } from "../util/text.ts";
import { DISPATCH_FLAGS, type DispatchOptions } from "./catalog.ts";
import {
  type DashboardOptions,
  type LessonsOptions,
  type LogsOptions,
  type ReapOptions,
  type ReflectionsOptions,
  type RouteOptions,
  type SimulateOptions,
  type StatusOptions,
  type StopOptions,
  type SubcommandName,
  SUBCOMMANDS,
  type UnparkOptions,
} from "./commands.ts";
import { defaultsOf, flagHelp, flagList, parseFlags } from "./flags.ts";
import { EXIT_CODES_TEXT, PROGRAM } from "./io.ts";

/** A parsed command line. */
export type Command =
  | { kind: "help"; text: string }
  | { kind: "version" }
  | { kind: "dispatch"; options: DispatchOptions }
  | { kind: "self-test"; options: DispatchOptions }
  /** Adopt and watch what gone orchestrators left; dispatch nothing (options as `--no-dry-run --watch`). */
  | { kind: "watch"; options: DispatchOptions }
  | { kind: "reflections"; options: ReflectionsOptions }
  | { kind: "status"; options: StatusOptions }
  | { kind: "reap"; options: ReapOptions }
  | { kind: "stop"; options: StopOptions }
  | { kind: "unpark"; options: UnparkOptions }
  | { kind: "serve"; options: DashboardOptions }
  | { kind: "logs"; options: LogsOptions }
  | { kind: "route"; options: RouteOptions }
  | { kind: "lessons"; options: LessonsOptions }
  | { kind: "simulate"; options: SimulateOptions };

/** The version printed by `--version`. */
export const VERSION = "0.1.0";

/**
 * Parse a command line (without the program name).
 *
 * @param argv arguments as given
 * @returns the command, or one line saying what is wrong
 * @example
 * ```ts
 * parseCli(["--max-parallel", "4"]);
 * ```
 */
export function parseCli(argv: readonly string[]): Result<Command> {
  const [first, ...rest] = argv;
  if (Object.hasOwn(SUBCOMMANDS, first ?? "")) return parseSub(first as SubcommandName, rest);
  const parsed = parseFlags(argv, DISPATCH_FLAGS);
  if (!parsed.ok) return parsed;
  const o = parsed.value.options;
  if (o.help) return ok({ kind: "help", text: usageText() });
  if (o.version) return ok({ kind: "version" });
  if (o.noDryRun && o.dryRun) return fail("--dry-run conflicts with --no-dry-run/--execute");
  if (o.noDryRun && o.explain) {
    return fail("--explain goes with a dry run, not --no-dry-run/--execute");
  }
  return ok({ kind: o.selfTest ? "self-test" : "dispatch", options: o });
}

function parseSub(name: SubcommandName, argv: readonly string[]): Result<Command> {
  const spec = SUBCOMMANDS[name];
  const parsed = parseFlags(argv, spec.flags, "positional" in spec);
  if (!parsed.ok) return parsed;
  const { options, given, positional } = parsed.value;
  if (options.help) return ok({ kind: "help", text: commandHelp(name) });
  if ("positional" in spec) {
    if (positional === undefined || positional.trim() === "") return fail(spec.positional.missing);
    (options as Record<string, unknown>)[spec.positional.key] = positional;
  }
  const problem = checkSub(name, options as Record<string, unknown>, given);
  if (problem) return fail(problem);
  if (name === "watch") {
    // The monitor's flags over the main command's defaults, as `--no-dry-run --watch`.
    const all = { ...defaultsOf(DISPATCH_FLAGS), ...options, noDryRun: true, watch: true };
    return ok({ kind: "watch", options: all as DispatchOptions });
  }
  return ok({ kind: name, options } as Command);
}

/** What a subcommand's flags say together that none says alone. */
function checkSub(
  name: SubcommandName,
  o: Record<string, unknown>,
  given: ReadonlySet<string>,
): string | undefined {
  if (name === "status" && given.has("intervalMs") && !o.watch) {
    return "--interval goes with --watch";
  }
  if (name === "simulate" && String(o.world ?? "").trim() === "") {
    return "simulate needs --world FILE (see --help)";
  }
  if (name === "serve") {
    const host = String(o.host);
    const token = o.token as string | undefined;
    if (token !== undefined && token.length < 8) return "--token must be at least 8 characters";
    if (host !== "127.0.0.1" && host !== "localhost" && token === undefined) {
      return `--host ${host} is not loopback: it needs --token T (checked on every request)`;
    }
    if (!/^[A-Za-z0-9.:-]+$/.test(host)) return `--host '${host}' is not an address`;
  }
  return undefined;
}

/** The main lines of the usage: what each way of running the program does. */
const MAIN_USAGE: readonly [string, string][] = [
  ["[flags]", "pick gaps and print what would be dispatched (dry run)"],
  ["--no-dry-run --watch", "dispatch, watch every agent to an outcome, write reflections"],
  ["--self-test", "run the whole pipeline on a built-in 4-gap backlog"],
];

/**
 * The `--help` page: how to run the program, the main command's flags, and
 * each subcommand's.
 */
function usageText(): string {
  const lines = [`${PROGRAM} - dispatch autonomous coding agents over a backlog of gaps`, ""];
  lines.push("Usage:");
  const usages = [
    ...MAIN_USAGE,
    ...Object.values(SUBCOMMANDS).map((c) => [c.usage, c.summary] as [string, string]),
  ];
  for (const [usage, summary] of usages) lines.push(usageLine(usage, summary));
  lines.push("", "Dispatch flags:", ...flagHelp(DISPATCH_FLAGS));
  lines.push("", `Subcommand flags ('${PROGRAM} COMMAND --help' says what each does):`);
  for (const c of Object.values(SUBCOMMANDS)) {
    const list = flagList(c.flags.filter((f) => f.name !== "help"), 100 - 15);
    list.forEach((l, i) => lines.push(`  ${(i === 0 ? c.name : "").padEnd(13)}${l}`));
  }
  lines.push("", EXIT_CODES_TEXT);
  return lines.join("\n");
}

/** One subcommand's `--help`: its usage line, what it does, its flags. */
function commandHelp(name: SubcommandName): string {
  const c = SUBCOMMANDS[name];
  return [
    `${PROGRAM} ${c.name} - ${c.summary}`,
    "",
    "Usage:",
    `  ${PROGRAM} ${c.usage}`,
    "",
    "Flags:",
    ...flagHelp(c.flags),
    "",
    EXIT_CODES_TEXT,
  ].join("\n");
}

/** Column of a usage line's summary. */
const SUMMARY_COLUMN = 45;

/** `  chump-orchestrator status [flags]   list ...`, the summary folded at its column. */
function usageLine(usage: string, summary: string): string {
  const left = `  ${PROGRAM} ${usage}`.padEnd(SUMMARY_COLUMN);
  const indent = " ".repeat(SUMMARY_COLUMN);
  return wrap(summary, 100 - SUMMARY_COLUMN).map((l, i) => (i === 0 ? left : indent) + l).join(
    "\n",
  );
}
