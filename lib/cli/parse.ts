/**
 * Command line -> a typed command (pure: no I/O). Every bad flag or value
 * becomes one line that names it; `runCli` (lib/commands/run.ts) prints it
 * and exits 2. `demo-agent` is not parsed here: main.ts starts it before
 * anything else loads.
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  type Deadlines,
  DEFAULT_DEADLINES,
  formatDuration,
  parseDeadlines,
  parseDuration,
} from "../util/duration.ts";
import type { PickOrder } from "../backlog/picker.ts";
import { DEFAULT_LOG_CAP_BYTES } from "../process/log_cap.ts";
import type { Policy } from "../learn/policy.ts";
import { fail, ok, type Result } from "../util/result.ts";

/** Which PR-state provider the monitor asks. */
export type ProviderName = "gh" | "git";

/** Everything the main dispatch command needs. */
export interface DispatchOptions {
  /** Backlog file or directory; default `<repo>/docs/gaps.yaml`. */
  backlog?: string;
  maxParallel: number;
  dryRun: boolean;
  watch: boolean;
  repoRoot?: string;
  baseRef: string;
  reflect: boolean;
  order: PickOrder;
  tickMs: number;
  deadlines: Deadlines;
  killGraceMs: number;
  /** Absolute cap on watching an open PR; default 4x the gap's deadline. */
  maxWatchMs?: number;
  /** Silent this long: one IDLE warning; twice this long: killed (default off). */
  idleTimeoutMs?: number;
  /** Each agent log file keeps at most this much, its newest half once over (default 32 MiB). */
  logCapBytes: number;
  /** Append JSON events here; `-`: to stdout, instead of the plain lines. */
  events?: string;
  /** Plain lines only, even on a terminal (no live table). */
  noLive?: boolean;
  /** Ticks to wait for a PR after an agent exits 0. */
  exitGraceTicks: number;
  /** Cap on dispatches per run (attempts, failures included). */
  maxTotal?: number;
  prProvider: ProviderName;
  agentCmd?: string;
  db?: string;
  /** Dry run: also say why each gap that was not picked was not. */
  explain: boolean;
  /** `--routing PATH` (default `<repo>/docs/dispatch/routing.yaml`, when it exists). */
  routing?: string;
  /** How a routing table's cascades are ordered (`--learn`). */
  learn: Policy;
  seed?: number;
  learnWindowMs?: number;
  /** Attempts per gap per run when its cascade moves on (`--max-attempts`, default 3). */
  maxAttempts: number;
  /** `--deadline` was given: no adaptive deadlines. */
  deadlinesExplicit?: boolean;
  /** `--no-lessons`: prompts get no lessons block (notes say `lessons=0`). */
  noLessons?: boolean;
  /** `--ledger postgres://...`: claims shared with the orchestrators of other hosts. */
  ledger?: string;
  /** `--host-id NAME`: this host's name in the shared ledger (default the host name). */
  hostId?: string;
  /** `--lease-ttl D`: a shared lease whose run is silent this long is suspect (default 5 min). */
  leaseTtlMs?: number;
  /** `--take-over-after D`: another host may take over a lease suspect this long (default never). */
  takeOverAfterMs?: number;
  /** `--fleet-max N`: at most N live leases in the whole fleet (default no cap). */
  fleetMax?: number;
}

/** Options of the `reflections` subcommand. */
export interface ReflectionsOptions {
  repoRoot?: string;
  db?: string;
  limit: number;
  outcome?: string;
  gap?: string;
  json: boolean;
  /** `--ledger URL`: the whole fleet's reflections, from the shared ledger. */
  ledger?: string;
}

/** Options of the `status` subcommand. */
export interface StatusOptions {
  repoRoot?: string;
  db?: string;
  limit: number;
  json: boolean;
  /** `--watch`: redraw every `intervalMs` until Ctrl-C. */
  watch?: boolean;
  intervalMs?: number;
  /** `--ledger URL`: the whole fleet's leases, from the shared ledger. */
  ledger?: string;
}

/** Options of the `reap` subcommand. */
export interface ReapOptions {
  repoRoot?: string;
  db?: string;
  killGraceMs: number;
  reflect: boolean;
  baseRef: string;
  /** Asked once whether reaped branches' PRs merged or closed meanwhile. */
  prProvider: ProviderName;
  /** `--ledger URL`: reaped outcomes end their shared leases and go to the fleet's tables too. */
  ledger?: string;
  /** `--host-id NAME`: this host's name in the shared ledger. */
  hostId?: string;
}

/**
 * The monitor's flags an adopting run needs beyond the loop's own: the base
 * ref (the git provider), the deadlines and watch limit of leases that
 * predate recorded ones, the kill grace.
 */
export type WatchFlags = Pick<
  DispatchOptions,
  "baseRef" | "deadlines" | "maxWatchMs" | "killGraceMs" | "logCapBytes"
>;

/** Options of the `simulate` subcommand. */
export interface SimulateOptions {
  world: string;
  policy: "fixed" | "thompson" | "oracle";
  dispatches: number;
  seed: number;
  json: boolean;
  /** `--fixed-deadlines`: the world's configured deadlines, never adapted. */
  fixedDeadlines: boolean;
  maxAttempts: number;
}

/** Options of the `lessons` subcommand. */
export interface LessonsOptions {
  repoRoot?: string;
  db?: string;
  json: boolean;
  /** `--ledger URL`: the whole fleet's reflections, from the shared ledger. */
  ledger?: string;
}

/** Options of the `route` subcommand. */
export interface RouteOptions {
  repoRoot?: string;
  db?: string;
  backlog?: string;
  /** `--routing PATH` (default `<repo>/docs/dispatch/routing.yaml`). */
  routing?: string;
  gapId: string;
  json: boolean;
  learn: Policy;
  seed?: number;
  /** Only reflections this recent count (`--learn-window 30d`). */
  learnWindowMs?: number;
  /** `--ledger URL`: the whole fleet's reflections, from the shared ledger. */
  ledger?: string;
}

/** Options of the `serve` subcommand (the web dashboard). */
export interface DashboardOptions {
  repoRoot?: string;
  db?: string;
  /** `127.0.0.1` or `localhost`; any other address only with a `token`. */
  host: string;
  /** Required on every request (`Authorization: Bearer T` or `?token=T`) when set. */
  token?: string;
  /** 0: any free port (printed). */
  port: number;
  /** How many of the newest leases the page shows. */
  limit: number;
  /** `--ledger URL`: outcomes and charts of the whole fleet, from the shared ledger. */
  ledger?: string;
}

/** Options of the `logs` subcommand. */
export interface LogsOptions {
  repoRoot?: string;
  db?: string;
  /** A gap id (its newest dispatch) or a lease id (digits). */
  target: string;
  /** Keep printing what the agent writes until it ends. */
  follow: boolean;
  /** How many of the last lines of each file to print first. */
  lines: number;
}

/** A parsed command line. */
export type Command =
  | { kind: "help"; text: string }
  | { kind: "version" }
  | { kind: "dispatch"; options: DispatchOptions }
  | { kind: "self-test"; options: DispatchOptions }
  | { kind: "reflections"; options: ReflectionsOptions }
  | { kind: "status"; options: StatusOptions }
  | { kind: "reap"; options: ReapOptions }
  /** Adopt and watch what gone orchestrators left; dispatch nothing (options as `--no-dry-run --watch`). */
  | { kind: "watch"; options: DispatchOptions }
  | { kind: "serve"; options: DashboardOptions }
  | { kind: "logs"; options: LogsOptions }
  | { kind: "route"; options: RouteOptions }
  | { kind: "lessons"; options: LessonsOptions }
  | { kind: "simulate"; options: SimulateOptions };

/** The program's name in messages. */
export const PROGRAM = "chump-orchestrator";

/** Usage text for `--help`. */
export const USAGE = `${PROGRAM} - dispatch autonomous coding agents over a backlog of gaps

Usage:
  ${PROGRAM} [flags]                 pick gaps and print what would be dispatched (dry run)
  ${PROGRAM} --no-dry-run --watch    dispatch, watch every agent to an outcome, write reflections
  ${PROGRAM} --self-test             run the whole pipeline on a built-in 4-gap backlog
  ${PROGRAM} reflections [flags]     list dispatch reflections, newest first
  ${PROGRAM} status [flags]          list live and recent dispatches from the lease ledger
  ${PROGRAM} watch [flags]           adopt the agents a stopped orchestrator left and watch
                                     them to an outcome (dispatches nothing new)
  ${PROGRAM} reap [flags]            end what a crashed orchestrator left (kills its agents)
  ${PROGRAM} serve [flags]           serve a local web dashboard of the fleet (and /metrics)
  ${PROGRAM} logs GAP|LEASE [flags]  print (-f: follow) an agent's output
  ${PROGRAM} route GAP [flags]       print the cascade of agent backends a gap would be tried with
  ${PROGRAM} lessons [flags]         what the reflections teach, per domain x effort x arm
  ${PROGRAM} simulate --world FILE   the learning loop on a simulated world (see README)

Dispatch flags:
  --backlog PATH        backlog file, or directory of *.yaml files (default: docs/gaps.yaml
                        under the repo root)
  --max-parallel N      agents at once / gaps picked (default 2)
  --dry-run             only print what would be dispatched (the default)
  --explain             with a dry run: one line per gap not picked, saying why
  --no-dry-run, --execute
                        really create worktrees and start agents
  --watch               with --no-dry-run: watch every agent to a terminal outcome,
                        refilling from the backlog as agents finish (without
                        --no-dry-run it is still a dry run, and says so)
  --repo-root PATH      repository to work in (default: the git top level of the cwd)
  --base-ref REF        branch point for new worktrees (default origin/main)
  --order priority|file pick order (default priority: P0, P1, P2, ties in file order)
  --max-total N         at most N dispatches in this run (default: no cap)
  --agent-cmd CMD       agent command; {prompt} is replaced by the prompt, else the prompt
                        goes to stdin (default: $CHUMP_AGENT_CMD, else the backend preset
                        from $CHUMP_DISPATCH_BACKEND: claude | chump-local)
  --pr-provider gh|git  where PR state comes from (default gh; git = local merges)
  --tick DURATION       monitor interval (default 30s); durations take ms, s, m, h
                        (at most 24h)
  --deadline LIST       soft deadlines by effort (default s=20m,m=60m,l=180m,xl=360m; without
                        it an effort with 10+ shipped reflections gets 1.5x their p90)
  --kill-grace DURATION SIGTERM -> SIGKILL grace (default 30s)
  --max-watch DURATION  give up on an open PR after this (default 4x the gap's deadline)
  --idle-timeout D      an agent silent (no output) for D gets one IDLE warning, for 2x D is
                        killed like a deadline kill (default off)
  --log-cap MB          each agent log file keeps its newest output, at most MB (default 32)
  --events FILE         append one JSON object per line for every transition (see README);
                        '-' writes them to stdout instead of the plain lines
  --no-live             with --watch on a terminal: plain lines only, no live table
  --exit-grace N        ticks to wait for a PR after an agent exits 0 (default 2)
  --db PATH             reflection DB (default <repo>/sessions/chump_memory.db)
  --no-reflect          do not write reflection rows
  --routing PATH        routing table: a cascade of agent backends/models per kind of gap
                        (default docs/dispatch/routing.yaml under the repo root, when it
                        exists; --agent-cmd and CHUMP_AGENT_CMD do without one)
  --learn fixed|thompson
                        cascade order: Thompson sampling over the reflections (the default),
                        or the file's
  --seed N              seed of --learn thompson (reproducible orders)
  --learn-window D      only reflections this recent count (e.g. 30d)
  --max-attempts N      attempts per gap per run when a rate limit or a transient error
                        moves it to the next arm of its cascade (default 3)
  --no-lessons          prompts get no block of lessons from earlier dispatches of their domain
  --ledger URL          claims shared with other hosts' orchestrators in PostgreSQL
                        (postgres://...; default $CHUMP_LEDGER_URL): a gap runs on one host only
  --host-id NAME        this host's name in the shared ledger (default the host name)
  --lease-ttl D         a shared lease whose orchestrator has not heartbeat for D is suspect:
                        held, never re-dispatched automatically (default 5m)
  --take-over-after D   another host may re-dispatch a gap suspect for D (default: never); the
                        old owner, if it returns, ends its agent and writes no reflection
  --fleet-max N         at most N live agents in the whole fleet (with --ledger)
  --self-test           run the built-in end-to-end self-test
  -h, --help            show this help
  --version             print the version

reflections flags: --db PATH  --repo-root PATH  --limit N (default 20)  --outcome O  --gap ID  --json
                   --ledger URL: the whole fleet's, from the shared ledger
status flags:      --db PATH  --repo-root PATH  --limit N (default 20)  --json
                   --watch [--interval D (default 2s)]: redraw until Ctrl-C
                   --ledger URL: the whole fleet's leases (host, state, generation, heartbeat)
reap flags:        --db PATH  --repo-root PATH  --kill-grace DURATION  --no-reflect
                   --pr-provider gh|git  --base-ref REF  --ledger URL  --host-id NAME
watch flags:       --db PATH  --repo-root PATH  --pr-provider gh|git  --base-ref REF  --tick D
                   --kill-grace D  --max-watch D  --exit-grace N  --idle-timeout D  --events F
                   --log-cap MB  --no-live
                   --no-reflect  --ledger URL  --host-id NAME  --lease-ttl D
                   (each agent keeps the deadline it was dispatched with)
logs flags:        --db PATH  --repo-root PATH  -f, --follow  --lines N (default 40)
serve flags:       --db PATH  --repo-root PATH  --port N (default 8377; 0: any free port)
                   --host H (default 127.0.0.1; another needs --token T)  --limit N (default 50)
                   --ledger URL (outcomes and charts of the whole fleet)
lessons flags:     --db PATH  --repo-root PATH  --json  --ledger URL (the whole fleet's)
simulate flags:    --world FILE  --policy fixed|thompson|oracle (default thompson)
                   --dispatches N (default 500)  --seed S (default 1)  --fixed-deadlines  --json
route flags:       --db PATH  --repo-root PATH  --backlog PATH  --routing PATH  --json
                   --learn fixed|thompson (default thompson)  --seed N  --learn-window D (e.g. 30d)
                   --ledger URL (learn from the whole fleet's reflections)

Exit codes: 0 success (with --watch: every outcome shipped), 1 runtime failure,
2 usage or input error, 3 --watch ended with an outcome other than shipped, 129 hung up
(SIGHUP: agents left running for 'watch' to adopt), 130 interrupted (SIGINT, SIGTERM).`;

/** The version printed by `--version`. */
export const VERSION = "0.1.0";

const DEFAULT_TICK_MS = 30_000;
const DEFAULT_KILL_GRACE_MS = 30_000;

/**
 * Longest duration a flag that feeds a timer takes (`--tick`, `--kill-grace`).
 * Timers hold at most 2^31-1 ms (~24.8 days); beyond that they fire at once,
 * every millisecond. A day is far past any sensible tick or grace.
 */
export const MAX_TIMER_MS = 24 * 3_600_000;

type Spec = Record<string, { type: "string" | "boolean"; short?: string }>;

const DISPATCH_SPEC: Spec = {
  backlog: { type: "string" },
  "max-parallel": { type: "string" },
  "dry-run": { type: "boolean" },
  explain: { type: "boolean" },
  "no-dry-run": { type: "boolean" },
  execute: { type: "boolean" },
  watch: { type: "boolean" },
  "repo-root": { type: "string" },
  "base-ref": { type: "string" },
  "no-reflect": { type: "boolean" },
  "self-test": { type: "boolean" },
  order: { type: "string" },
  tick: { type: "string" },
  deadline: { type: "string" },
  "kill-grace": { type: "string" },
  "max-watch": { type: "string" },
  "idle-timeout": { type: "string" },
  "log-cap": { type: "string" },
  events: { type: "string" },
  "no-live": { type: "boolean" },
  "exit-grace": { type: "string" },
  "max-total": { type: "string" },
  "pr-provider": { type: "string" },
  "agent-cmd": { type: "string" },
  db: { type: "string" },
  routing: { type: "string" },
  learn: { type: "string" },
  seed: { type: "string" },
  "learn-window": { type: "string" },
  "max-attempts": { type: "string" },
  "no-lessons": { type: "boolean" },
  ledger: { type: "string" },
  "host-id": { type: "string" },
  "lease-ttl": { type: "string" },
  "take-over-after": { type: "string" },
  "fleet-max": { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean" },
};

/** The flags every subcommand takes: where its DB is, and help. */
const SUBCOMMAND_FLAGS: Spec = {
  db: { type: "string" },
  "repo-root": { type: "string" },
  help: { type: "boolean", short: "h" },
};

const REFLECTIONS_SPEC: Spec = {
  ...SUBCOMMAND_FLAGS,
  ledger: { type: "string" },
  limit: { type: "string" },
  outcome: { type: "string" },
  gap: { type: "string" },
  json: { type: "boolean" },
};

const STATUS_SPEC: Spec = {
  ...SUBCOMMAND_FLAGS,
  ledger: { type: "string" },
  limit: { type: "string" },
  json: { type: "boolean" },
  watch: { type: "boolean" },
  interval: { type: "string" },
};

const REAP_SPEC: Spec = {
  ...SUBCOMMAND_FLAGS,
  ledger: { type: "string" },
  "host-id": { type: "string" },
  "kill-grace": { type: "string" },
  "base-ref": { type: "string" },
  "pr-provider": { type: "string" },
  "no-reflect": { type: "boolean" },
};

const WATCH_SPEC: Spec = {
  ...SUBCOMMAND_FLAGS,
  "base-ref": { type: "string" },
  "pr-provider": { type: "string" },
  tick: { type: "string" },
  "kill-grace": { type: "string" },
  "max-watch": { type: "string" },
  "idle-timeout": { type: "string" },
  "log-cap": { type: "string" },
  events: { type: "string" },
  "no-live": { type: "boolean" },
  "exit-grace": { type: "string" },
  "no-reflect": { type: "boolean" },
  ledger: { type: "string" },
  "host-id": { type: "string" },
  "lease-ttl": { type: "string" },
};

const LOGS_SPEC: Spec = {
  ...SUBCOMMAND_FLAGS,
  follow: { type: "boolean", short: "f" },
  lines: { type: "string" },
};

const SIMULATE_SPEC: Spec = {
  world: { type: "string" },
  policy: { type: "string" },
  dispatches: { type: "string" },
  seed: { type: "string" },
  json: { type: "boolean" },
  "fixed-deadlines": { type: "boolean" },
  "max-attempts": { type: "string" },
  help: { type: "boolean", short: "h" },
};

const LESSONS_SPEC: Spec = {
  ...SUBCOMMAND_FLAGS,
  ledger: { type: "string" },
  json: { type: "boolean" },
};

const ROUTE_SPEC: Spec = {
  ...SUBCOMMAND_FLAGS,
  ledger: { type: "string" },
  backlog: { type: "string" },
  routing: { type: "string" },
  json: { type: "boolean" },
  learn: { type: "string" },
  seed: { type: "string" },
  "learn-window": { type: "string" },
};

const DASHBOARD_SPEC: Spec = {
  ...SUBCOMMAND_FLAGS,
  ledger: { type: "string" },
  port: { type: "string" },
  host: { type: "string" },
  token: { type: "string" },
  limit: { type: "string" },
};

type Values = Record<string, string | boolean | undefined>;

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
  switch (first) {
    case "reflections":
      return parseSub(rest, REFLECTIONS_SPEC, "reflections", toReflections);
    case "status":
      return parseSub(rest, STATUS_SPEC, "status", toStatus);
    case "reap":
      return parseSub(rest, REAP_SPEC, "reap", toReap);
    case "serve":
      return parseSub(rest, DASHBOARD_SPEC, "serve", toDashboard);
    case "logs":
      return parseSub(rest, LOGS_SPEC, "logs", toLogs, true);
    case "route":
      return parseSub(rest, ROUTE_SPEC, "route", toRoute, true);
    case "simulate":
      return parseSub(rest, SIMULATE_SPEC, "simulate", toSimulate);
    case "lessons":
      return parseSub(
        rest,
        LESSONS_SPEC,
        "lessons",
        (v) =>
          ok({
            repoRoot: str(v, "repo-root"),
            db: str(v, "db"),
            json: Boolean(v.json),
            ledger: str(v, "ledger"),
          }),
      );
    case "watch":
      return parseSub(
        rest,
        WATCH_SPEC,
        "watch",
        (v) => toDispatch({ ...v, "no-dry-run": true, watch: true }),
      );
  }
  const parsed = parseFlags(argv, DISPATCH_SPEC);
  if (!parsed.ok) return parsed;
  const v = parsed.value;
  if (v.help) return ok({ kind: "help", text: USAGE });
  if (v.version) return ok({ kind: "version" });
  const options = toDispatch(v);
  if (!options.ok) return options;
  return ok(
    v["self-test"] ? { kind: "self-test", options: options.value } : {
      kind: "dispatch",
      options: options.value,
    },
  );
}

function parseSub<T>(
  argv: readonly string[],
  spec: Spec,
  name:
    | "reflections"
    | "status"
    | "reap"
    | "watch"
    | "serve"
    | "logs"
    | "route"
    | "lessons"
    | "simulate",
  build: (v: Values) => Result<T>,
  positional = false,
): Result<Command> {
  const parsed = parseFlags(argv, spec, positional);
  if (!parsed.ok) return parsed;
  if (parsed.value.help) return ok({ kind: "help", text: USAGE });
  const options = build(parsed.value);
  if (!options.ok) return options;
  return ok({ kind: name, options: options.value } as Command);
}

/** node:util parseArgs with one-line messages; `--flag -1` is read as a value. */
function parseFlags(argv: readonly string[], spec: Spec, positional = false): Result<Values> {
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const name = a.startsWith("--") ? a.slice(2) : "";
    const isString = Object.hasOwn(spec, name) && spec[name].type === "string";
    if (isString && i + 1 < argv.length && /^-\d/.test(argv[i + 1])) {
      args.push(`${a}=${argv[++i]}`);
    } else args.push(a);
  }
  try {
    const { values, positionals } = parseArgs({
      args,
      options: spec,
      strict: true,
      allowPositionals: true,
    });
    if (positionals.length > (positional ? 1 : 0)) {
      return fail(`unexpected argument '${positionals.at(-1)}' (see --help)`);
    }
    // The one positional argument a command may take (`logs ID`), under a key no flag has.
    return ok({ ...values, "": positionals[0] } as Values);
  } catch (e) {
    return fail(describeParseError(e));
  }
}

function describeParseError(e: unknown): string {
  const code = (e as { code?: string }).code;
  const message = e instanceof Error ? e.message : String(e);
  // Node names a flag with a short form as '-h, --help': say the long one, as typed.
  const flag = /'(?:-\w, )?(-[^' ]+)/.exec(message)?.[1] ?? "";
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") return `unknown flag ${flag} (see --help)`;
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
    if (/does not take an argument/.test(message)) {
      return `flag ${flag.replace(/=.*/, "")} takes no value (see --help)`;
    }
    return `flag ${flag} needs a value (see --help)`;
  }
  return `${message.split("\n")[0]} (see --help)`;
}

function str(v: Values, key: string): string | undefined {
  const x = v[key];
  return typeof x === "string" ? x : undefined;
}

function count(v: Values, key: string, min: number, fallback: number): Result<number> {
  const text = str(v, key);
  if (text === undefined) return ok(fallback);
  if (!/^\s*\d+\s*$/.test(text) || Number(text) < min) {
    return fail(`--${key} must be a whole number >= ${min}, got '${text}' (see --help)`);
  }
  return ok(Number(text));
}

function duration(
  v: Values,
  key: string,
  fallback: number,
  min = 0,
  max = Infinity,
): Result<number> {
  const text = str(v, key);
  if (text === undefined) return ok(fallback);
  const d = parseDuration(text);
  if (!d.ok) return fail(`--${key}: ${d.error}`);
  if (d.value < min) return fail(`--${key} must be at least ${formatDuration(min)}, got '${text}'`);
  if (d.value > max) return fail(`--${key} must be at most ${formatDuration(max)}, got '${text}'`);
  return ok(d.value);
}

function toDispatch(v: Values): Result<DispatchOptions> {
  const maxParallel = count(v, "max-parallel", 1, 2);
  if (!maxParallel.ok) return maxParallel;
  const noDry = Boolean(v["no-dry-run"] || v.execute);
  if (noDry && v["dry-run"]) return fail("--dry-run conflicts with --no-dry-run/--execute");
  if (noDry && v.explain) return fail("--explain goes with a dry run, not --no-dry-run/--execute");
  const order = str(v, "order") ?? "priority";
  if (order !== "priority" && order !== "file") {
    return fail(`--order must be 'priority' or 'file', got '${order}'`);
  }
  const provider = str(v, "pr-provider") ?? "gh";
  if (provider !== "gh" && provider !== "git") {
    return fail(`--pr-provider must be 'gh' or 'git', got '${provider}'`);
  }
  const tick = duration(v, "tick", DEFAULT_TICK_MS, 1, MAX_TIMER_MS);
  if (!tick.ok) return tick;
  const killGrace = duration(v, "kill-grace", DEFAULT_KILL_GRACE_MS, 0, MAX_TIMER_MS);
  if (!killGrace.ok) return killGrace;
  let maxWatchMs: number | undefined;
  if (str(v, "max-watch") !== undefined) {
    const mw = duration(v, "max-watch", 0, 1);
    if (!mw.ok) return mw;
    maxWatchMs = mw.value;
  }
  let idleTimeoutMs: number | undefined;
  if (str(v, "idle-timeout") !== undefined) {
    const it = duration(v, "idle-timeout", 0, 1, MAX_TIMER_MS);
    if (!it.ok) return it;
    idleTimeoutMs = it.value;
  }
  const learn = learnFlags(v);
  if (!learn.ok) return learn;
  const maxAttempts = count(v, "max-attempts", 1, 3);
  if (!maxAttempts.ok) return maxAttempts;
  const logCapMb = count(v, "log-cap", 1, DEFAULT_LOG_CAP_BYTES / (1 << 20));
  if (!logCapMb.ok) return logCapMb;
  const exitGrace = count(v, "exit-grace", 0, 2);
  if (!exitGrace.ok) return exitGrace;
  let maxTotal: number | undefined;
  if (str(v, "max-total") !== undefined) {
    const mt = count(v, "max-total", 1, 0);
    if (!mt.ok) return mt;
    maxTotal = mt.value;
  }
  let deadlines: Deadlines = DEFAULT_DEADLINES;
  const dl = str(v, "deadline");
  if (dl !== undefined) {
    const parsed = parseDeadlines(dl);
    if (!parsed.ok) return parsed;
    deadlines = parsed.value;
  }
  const agentCmd = str(v, "agent-cmd");
  if (agentCmd !== undefined && agentCmd.trim() === "") return fail("--agent-cmd is empty");
  const fleet = fleetFlags(v);
  if (!fleet.ok) return fleet;
  for (
    const key of [
      "backlog",
      "repo-root",
      "base-ref",
      "db",
      "events",
      "routing",
      "ledger",
      "host-id",
    ]
  ) {
    if (str(v, key) === "") return fail(`--${key} is empty`);
  }
  return ok({
    backlog: str(v, "backlog"),
    maxParallel: maxParallel.value,
    dryRun: !noDry,
    watch: Boolean(v.watch),
    repoRoot: str(v, "repo-root"),
    baseRef: str(v, "base-ref") ?? "origin/main",
    reflect: !v["no-reflect"],
    order,
    tickMs: tick.value,
    deadlines,
    deadlinesExplicit: dl !== undefined,
    killGraceMs: killGrace.value,
    maxWatchMs,
    idleTimeoutMs,
    logCapBytes: logCapMb.value * (1 << 20),
    events: str(v, "events"),
    noLive: Boolean(v["no-live"]),
    exitGraceTicks: exitGrace.value,
    maxTotal,
    prProvider: provider,
    agentCmd,
    db: str(v, "db"),
    explain: Boolean(v.explain),
    routing: str(v, "routing"),
    ...learn.value,
    maxAttempts: maxAttempts.value,
    noLessons: Boolean(v["no-lessons"]),
    ledger: str(v, "ledger"),
    hostId: str(v, "host-id"),
    ...fleet.value,
  });
}

/** `--lease-ttl`, `--take-over-after`, `--fleet-max` (the run says when there is no shared ledger). */
function fleetFlags(
  v: Values,
): Result<Pick<DispatchOptions, "leaseTtlMs" | "takeOverAfterMs" | "fleetMax">> {
  const out: Pick<DispatchOptions, "leaseTtlMs" | "takeOverAfterMs" | "fleetMax"> = {};
  if (str(v, "lease-ttl") !== undefined) {
    const d = duration(v, "lease-ttl", 0, 1000, MAX_TIMER_MS);
    if (!d.ok) return d;
    out.leaseTtlMs = d.value;
  }
  if (str(v, "take-over-after") !== undefined) {
    const d = duration(v, "take-over-after", 0, 0, MAX_TIMER_MS);
    if (!d.ok) return d;
    out.takeOverAfterMs = d.value;
  }
  if (str(v, "fleet-max") !== undefined) {
    const n = count(v, "fleet-max", 1, 0);
    if (!n.ok) return n;
    out.fleetMax = n.value;
  }
  return ok(out);
}

function toReflections(v: Values): Result<ReflectionsOptions> {
  const limit = count(v, "limit", 1, 20);
  if (!limit.ok) return limit;
  const outcome = str(v, "outcome");
  const outcomes = ["shipped", "ci_failed", "stalled", "killed"];
  if (outcome !== undefined && !outcomes.includes(outcome)) {
    return fail(`--outcome must be one of ${outcomes.join(", ")}, got '${outcome}'`);
  }
  return ok({
    repoRoot: str(v, "repo-root"),
    db: str(v, "db"),
    limit: limit.value,
    outcome,
    gap: str(v, "gap"),
    json: Boolean(v.json),
    ledger: str(v, "ledger"),
  });
}

function toStatus(v: Values): Result<StatusOptions> {
  const limit = count(v, "limit", 1, 20);
  if (!limit.ok) return limit;
  const interval = duration(v, "interval", 2000, 100, MAX_TIMER_MS);
  if (!interval.ok) return interval;
  if (v.interval !== undefined && !v.watch) return fail("--interval goes with --watch");
  return ok({
    repoRoot: str(v, "repo-root"),
    db: str(v, "db"),
    limit: limit.value,
    json: Boolean(v.json),
    watch: Boolean(v.watch),
    intervalMs: interval.value,
    ledger: str(v, "ledger"),
  });
}

function toLogs(v: Values): Result<LogsOptions> {
  const target = str(v, "");
  if (target === undefined || target.trim() === "") {
    return fail("logs needs a gap id or a lease id (see --help)");
  }
  const lines = count(v, "lines", 0, 40);
  if (!lines.ok) return lines;
  return ok({
    repoRoot: str(v, "repo-root"),
    db: str(v, "db"),
    target,
    follow: Boolean(v.follow),
    lines: lines.value,
  });
}

function toSimulate(v: Values): Result<SimulateOptions> {
  const world = str(v, "world");
  if (world === undefined || world.trim() === "") {
    return fail("simulate needs --world FILE (see --help)");
  }
  const policy = str(v, "policy") ?? "thompson";
  if (policy !== "fixed" && policy !== "thompson" && policy !== "oracle") {
    return fail(`--policy must be fixed, thompson or oracle, got '${policy}'`);
  }
  const dispatches = count(v, "dispatches", 1, 500);
  if (!dispatches.ok) return dispatches;
  const seed = count(v, "seed", 0, 1);
  if (!seed.ok) return seed;
  const maxAttempts = count(v, "max-attempts", 1, 3);
  if (!maxAttempts.ok) return maxAttempts;
  return ok({
    world,
    policy,
    dispatches: dispatches.value,
    seed: seed.value,
    json: Boolean(v.json),
    fixedDeadlines: Boolean(v["fixed-deadlines"]),
    maxAttempts: maxAttempts.value,
  });
}

function toRoute(v: Values): Result<RouteOptions> {
  const gapId = str(v, "");
  if (gapId === undefined || gapId.trim() === "") return fail("route needs a gap id (see --help)");
  const learn = learnFlags(v);
  if (!learn.ok) return learn;
  return ok({
    repoRoot: str(v, "repo-root"),
    db: str(v, "db"),
    backlog: str(v, "backlog"),
    routing: str(v, "routing"),
    gapId,
    json: Boolean(v.json),
    ledger: str(v, "ledger"),
    ...learn.value,
  });
}

/** `--learn fixed|thompson`, `--seed N`, `--learn-window D`. */
function learnFlags(v: Values): Result<{ learn: Policy; seed?: number; learnWindowMs?: number }> {
  // Thompson by default: on the simulator it beat the file's order on every shipped world (README).
  const learn = str(v, "learn") ?? "thompson";
  if (learn !== "fixed" && learn !== "thompson") {
    return fail(`--learn must be fixed or thompson, got '${learn}'`);
  }
  let seed: number | undefined;
  if (str(v, "seed") !== undefined) {
    const s = count(v, "seed", 0, 0);
    if (!s.ok) return s;
    if (s.value > 0xffffffff) return fail(`--seed must be at most ${0xffffffff}`);
    seed = s.value;
  }
  let learnWindowMs: number | undefined;
  if (str(v, "learn-window") !== undefined) {
    const w = duration(v, "learn-window", 0, 1, 3650 * 86_400_000);
    if (!w.ok) return w;
    learnWindowMs = w.value;
  }
  return ok({ learn, seed, learnWindowMs });
}

function toDashboard(v: Values): Result<DashboardOptions> {
  const limit = count(v, "limit", 1, 50);
  if (!limit.ok) return limit;
  const port = count(v, "port", 0, 8377);
  if (!port.ok) return port;
  if (port.value > 65535) return fail(`--port must be at most 65535, got '${port.value}'`);
  const host = str(v, "host") ?? "127.0.0.1";
  const token = str(v, "token");
  if (token !== undefined && token.length < 8) {
    return fail("--token must be at least 8 characters");
  }
  if (host !== "127.0.0.1" && host !== "localhost" && token === undefined) {
    return fail(
      `--host ${host} is not loopback: it needs --token T (checked on every request)`,
    );
  }
  if (!/^[A-Za-z0-9.:-]+$/.test(host)) return fail(`--host '${host}' is not an address`);
  return ok({
    repoRoot: str(v, "repo-root"),
    db: str(v, "db"),
    host,
    token,
    port: port.value,
    limit: limit.value,
    ledger: str(v, "ledger"),
  });
}

function toReap(v: Values): Result<ReapOptions> {
  const killGrace = duration(v, "kill-grace", DEFAULT_KILL_GRACE_MS, 0, MAX_TIMER_MS);
  if (!killGrace.ok) return killGrace;
  const provider = str(v, "pr-provider") ?? "gh";
  if (provider !== "gh" && provider !== "git") {
    return fail(`--pr-provider must be 'gh' or 'git', got '${provider}'`);
  }
  return ok({
    repoRoot: str(v, "repo-root"),
    db: str(v, "db"),
    killGraceMs: killGrace.value,
    reflect: !v["no-reflect"],
    baseRef: str(v, "base-ref") ?? "origin/main",
    prProvider: provider,
    ledger: str(v, "ledger"),
    hostId: str(v, "host-id"),
  });
}
