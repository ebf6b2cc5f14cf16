/**
 * The subcommands: each one's line in the usage (its name, what it does),
 * the flags it takes (composed from cli/catalog.ts's option sets, each flag
 * declared there once) and its positional argument; and the options type
 * each derives from its flags. Pure data.
 *
 * @module
 */
import {
  BACKLOG,
  BACKOFF_FLAGS,
  BASE_REF,
  BUDGET_GAP,
  HELP,
  HOST_ID,
  JSON_LINES,
  KILL_GRACE,
  LEARN,
  LEARN_OBJECTIVE,
  LEARN_WINDOW,
  LEASE_TTL,
  LEDGER,
  LIMIT,
  MAX_ATTEMPTS,
  MAX_TIMER_MS,
  MONITOR_FLAGS,
  NO_REFLECT,
  PATH_FLAGS,
  PR_FLAGS,
  PR_PROVIDER,
  PRICES,
  ROUTING,
  SEED,
} from "./catalog.ts";
import {
  choiceFlag,
  countFlag,
  durationFlag,
  type Flag,
  freeTextFlag,
  type OptionsOf,
  switchFlag,
  withFallback,
} from "./flags.ts";

/** `watch`: adopt and watch what stopped orchestrators left; the monitor's flags. */
const WATCH_FLAGS = [
  ...PATH_FLAGS,
  ...MONITOR_FLAGS,
  PRICES,
  BUDGET_GAP,
  ...BACKOFF_FLAGS,
  ...PR_FLAGS,
  LEDGER,
  HOST_ID,
  LEASE_TTL,
] as const;

const REFLECTIONS_FLAGS = [
  ...PATH_FLAGS,
  LIMIT,
  choiceFlag(
    "outcome",
    "outcome",
    ["shipped", "ci_failed", "stalled", "killed"],
    "one of shipped, ci_failed, stalled, killed",
    "only this outcome",
    undefined,
  ),
  freeTextFlag("gap", "gap", "ID", "only this gap's"),
  JSON_LINES,
  LEDGER,
] as const;

const STATUS_FLAGS = [
  ...PATH_FLAGS,
  LIMIT,
  JSON_LINES,
  switchFlag("watch", "watch", "redraw every --interval until Ctrl-C"),
  durationFlag("intervalMs", "interval", "D", "with --watch: how often (default 2s)", {
    min: 100,
    max: MAX_TIMER_MS,
    fallback: 2000,
  }),
  LEDGER,
] as const;

const REAP_FLAGS = [
  ...PATH_FLAGS,
  KILL_GRACE,
  NO_REFLECT,
  PR_PROVIDER,
  BASE_REF,
  LEDGER,
  HOST_ID,
] as const;

const STOP_FLAGS = [...PATH_FLAGS, KILL_GRACE, NO_REFLECT, LEDGER, HOST_ID] as const;

const UNPARK_FLAGS = [...PATH_FLAGS, LEDGER] as const;

const LOGS_FLAGS = [
  ...PATH_FLAGS,
  switchFlag("follow", "follow", "keep printing what the agent writes until it ends", {
    short: "f",
  }),
  countFlag("lines", "lines", "N", "last lines of each file printed first (default 40)", {
    min: 0,
    fallback: 40,
  }),
] as const;

const SERVE_FLAGS = [
  ...PATH_FLAGS,
  countFlag("port", "port", "N", "port (default 8377; 0: any free port, printed)", {
    min: 0,
    max: 65535,
    fallback: 8377,
  }),
  freeTextFlag(
    "host",
    "host",
    "H",
    "address to listen on (default 127.0.0.1; another than loopback needs --token)",
    "127.0.0.1",
  ),
  freeTextFlag(
    "token",
    "token",
    "T",
    "required on every request (Authorization: Bearer T or ?token=T)",
  ),
  withFallback(LIMIT, 50, "how many of the newest leases the page shows (default 50)"),
  countFlag(
    "maxStreams",
    "max-streams",
    "N",
    "at most N live pages (event streams) at once; past it 503 (default 100)",
    { min: 1, max: 100_000, fallback: 100 },
  ),
  LEDGER,
] as const;

const LESSONS_FLAGS = [...PATH_FLAGS, JSON_LINES, LEDGER] as const;

const ROUTE_FLAGS = [
  ...PATH_FLAGS,
  BACKLOG,
  ROUTING,
  LEARN,
  LEARN_OBJECTIVE,
  SEED,
  LEARN_WINDOW,
  JSON_LINES,
  LEDGER,
] as const;

const SIMULATE_FLAGS = [
  freeTextFlag("world", "world", "FILE", "the world to simulate (see README)"),
  choiceFlag(
    "policy",
    "policy",
    ["fixed", "thompson", "best-fixed"],
    "fixed, thompson or best-fixed",
    "cascade order (default thompson; best-fixed: the fixed order written knowing the " +
      "world's odds)",
    "thompson",
  ),
  LEARN_OBJECTIVE,
  countFlag(
    "dispatches",
    "dispatches",
    "N",
    "how many dispatches (default the world's, else 500)",
    {
      min: 1,
    },
  ),
  countFlag("seed", "seed", "N", "the world's and the policy's seed (default 1)", {
    min: 0,
    fallback: 1,
  }),
  JSON_LINES,
  switchFlag(
    "fixedDeadlines",
    "fixed-deadlines",
    "the world's configured deadlines, never adapted",
  ),
  MAX_ATTEMPTS,
  HELP,
] as const;

type WatchOptions = OptionsOf<typeof WATCH_FLAGS>;
export type ReflectionsOptions = OptionsOf<typeof REFLECTIONS_FLAGS>;
export type StatusOptions = OptionsOf<typeof STATUS_FLAGS>;
export type ReapOptions = OptionsOf<typeof REAP_FLAGS>;
export type LogsOptions = OptionsOf<typeof LOGS_FLAGS> & { target: string };
export type StopOptions = OptionsOf<typeof STOP_FLAGS> & { target: string };
export type UnparkOptions = OptionsOf<typeof UNPARK_FLAGS> & { gapId: string };
export type DashboardOptions = OptionsOf<typeof SERVE_FLAGS>;
export type LessonsOptions = OptionsOf<typeof LESSONS_FLAGS>;
export type RouteOptions = OptionsOf<typeof ROUTE_FLAGS> & { gapId: string };
export type SimulateOptions = OptionsOf<typeof SIMULATE_FLAGS> & { world: string };

/** A subcommand's line in the usage, its flags, its positional argument. */
export interface CommandSpec {
  /** `status`; the main command is the program's name alone. */
  readonly name: string;
  /** What follows the program's name in the usage (`logs GAP|LEASE [flags]`). */
  readonly usage: string;
  readonly summary: string;
  // deno-lint-ignore no-explicit-any
  readonly flags: readonly Flag<string, any>[];
  /** Its one positional argument: the line said when it is missing. */
  readonly positional?: { key: string; missing: string };
}

/** The subcommands, in the usage's order. */
export const SUBCOMMANDS = {
  reflections: {
    name: "reflections",
    usage: "reflections [flags]",
    summary: "list dispatch reflections, newest first",
    flags: REFLECTIONS_FLAGS,
  },
  status: {
    name: "status",
    usage: "status [flags]",
    summary: "list live and recent dispatches from the lease ledger",
    flags: STATUS_FLAGS,
  },
  watch: {
    name: "watch",
    usage: "watch [flags]",
    summary: "adopt the agents a stopped orchestrator left and watch them to an outcome " +
      "(dispatches nothing new; each agent keeps the deadline it was dispatched with)",
    flags: WATCH_FLAGS,
  },
  reap: {
    name: "reap",
    usage: "reap [flags]",
    summary: "end what a crashed orchestrator left (kills its agents)",
    flags: REAP_FLAGS,
  },
  stop: {
    name: "stop",
    usage: "stop GAP|LEASE [flags]",
    summary: "end one dispatch's agent and record it killed, 'stopped by the operator'",
    flags: STOP_FLAGS,
    positional: { key: "target", missing: "stop needs a gap id or a lease id (see --help)" },
  },
  unpark: {
    name: "unpark",
    usage: "unpark GAP [flags]",
    summary: "forget a gap's failures in a row: a parked or backing-off gap may be dispatched " +
      "again (with --ledger: for the whole fleet)",
    flags: UNPARK_FLAGS,
    positional: { key: "gapId", missing: "unpark needs a gap id (see --help)" },
  },
  serve: {
    name: "serve",
    usage: "serve [flags]",
    summary: "serve a local web dashboard of the fleet (and /metrics)",
    flags: SERVE_FLAGS,
  },
  logs: {
    name: "logs",
    usage: "logs GAP|LEASE [flags]",
    summary: "print (-f: follow) an agent's output",
    flags: LOGS_FLAGS,
    positional: { key: "target", missing: "logs needs a gap id or a lease id (see --help)" },
  },
  route: {
    name: "route",
    usage: "route GAP [flags]",
    summary: "print the cascade of agent backends a gap would be tried with",
    flags: ROUTE_FLAGS,
    positional: { key: "gapId", missing: "route needs a gap id (see --help)" },
  },
  lessons: {
    name: "lessons",
    usage: "lessons [flags]",
    summary: "what the reflections teach, per domain x effort x arm",
    flags: LESSONS_FLAGS,
  },
  simulate: {
    name: "simulate",
    usage: "simulate --world FILE",
    summary: "the learning loop on a simulated world (see README)",
    flags: SIMULATE_FLAGS,
  },
} as const satisfies Record<string, CommandSpec>;

/** A subcommand's name. */
export type SubcommandName = keyof typeof SUBCOMMANDS;
