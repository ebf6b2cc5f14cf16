/**
 * Every flag of the program, declared once (cli/flags.ts), in small option
 * sets that commands compose (cli/commands.ts lists each subcommand's). The
 * parser and the help text (cli/parse.ts) read this table; the options type
 * of each command is derived from its flags. Pure data.
 *
 * @module
 */
import { checkLedgerUrl } from "../util/db_url.ts";
import { BACKOFF_FLAGS, COST_FLAGS, PR_FLAGS } from "./catalog_limits.ts";
import { type Deadlines, parseDeadlines } from "../util/duration.ts";
import { fail, ok } from "../util/result.ts";
import {
  choiceFlag,
  countFlag,
  customFlag,
  durationFlag,
  type OptionsOf,
  readCount,
  switchFlag,
  textFlag,
} from "./flags.ts";

export {
  BACKOFF_FLAGS,
  BUDGET_GAP,
  COST_FLAGS,
  PR_FLAGS,
  PRICES,
  readUsd,
} from "./catalog_limits.ts";

/**
 * Longest duration a flag that feeds a timer takes (`--tick`, `--kill-grace`).
 * Timers hold at most 2^31-1 ms (~24.8 days); beyond that they fire at once,
 * every millisecond. A day is far past any sensible tick or grace.
 */
export const MAX_TIMER_MS = 24 * 3_600_000;

/** `--log-cap`'s default: each agent log file keeps at most 32 MiB (process/log_cap.ts's default). */
const DEFAULT_LOG_CAP_MB = 32;

export const HELP = switchFlag("help", "help", "show this help", { short: "h" });
export const DB = textFlag(
  "db",
  "db",
  "PATH",
  "reflection DB (default <repo>/sessions/chump_memory.db)",
);
const REPO_ROOT = textFlag(
  "repoRoot",
  "repo-root",
  "PATH",
  "repository to work in (default: the git top level of the cwd)",
);
export const JSON_LINES = switchFlag(
  "json",
  "json",
  "JSON (one object per line) instead of a table",
);
export const LEDGER = customFlag(
  "ledger",
  "ledger",
  "URL",
  "the shared ledger (postgres://USER@HOST:PORT/DB; default $CHUMP_LEDGER_URL for a run): " +
    "claims shared with other hosts' orchestrators, and the whole fleet's reflections and leases",
  undefined as string | undefined,
  (text) => checkLedgerUrl(text, "--ledger"),
);
export const HOST_ID = textFlag(
  "hostId",
  "host-id",
  "NAME",
  "this host's name in the shared ledger (default the host name)",
);
export const LIMIT = countFlag("limit", "limit", "N", "how many, newest first (default 20)", {
  min: 1,
  fallback: 20,
});

/** Where a command reads and writes: every subcommand takes these. */
export const PATH_FLAGS = [DB, REPO_ROOT, HELP] as const;

export const BACKLOG = textFlag(
  "backlog",
  "backlog",
  "PATH",
  "backlog file, or directory of *.yaml files (default: docs/gaps.yaml under the repo root)",
);

/** What the backlog is and how it is picked from. */
const PICK_FLAGS = [
  BACKLOG,
  countFlag("maxParallel", "max-parallel", "N", "agents at once / gaps picked (default 2)", {
    min: 1,
    fallback: 2,
  }),
  choiceFlag(
    "order",
    "order",
    ["priority", "file"],
    "'priority' or 'file'",
    "pick order (default priority: P0, P1, P2, ties in file order)",
    "priority",
  ),
  countFlag("maxTotal", "max-total", "N", "at most N dispatches in this run (default: no cap)", {
    min: 1,
  }),
  customFlag(
    "agentCmd",
    "agent-cmd",
    "CMD",
    "agent command; {prompt} is replaced by the prompt, else the prompt goes to stdin " +
      "(default: $CHUMP_AGENT_CMD, else the backend preset from $CHUMP_DISPATCH_BACKEND: " +
      "claude | chump-local)",
    undefined as string | undefined,
    (t) => t.trim() === "" ? fail("--agent-cmd is empty") : ok(t),
  ),
] as const;

export const BASE_REF = textFlag(
  "baseRef",
  "base-ref",
  "REF",
  "branch point for new worktrees (default origin/main)",
  "origin/main",
);
export const PR_PROVIDER = choiceFlag(
  "prProvider",
  "pr-provider",
  ["gh", "git"],
  "'gh' or 'git'",
  "where PR state comes from (default gh; git = local merges)",
  "gh",
);
export const KILL_GRACE = durationFlag(
  "killGraceMs",
  "kill-grace",
  "D",
  "SIGTERM -> SIGKILL grace (default 30s)",
  { min: 0, max: MAX_TIMER_MS, fallback: 30_000 },
);
export const NO_REFLECT = switchFlag("noReflect", "no-reflect", "do not write reflection rows");

/** How agents are watched to an outcome. */
export const MONITOR_FLAGS = [
  BASE_REF,
  PR_PROVIDER,
  durationFlag(
    "tickMs",
    "tick",
    "D",
    "monitor interval (default 30s; with --pr-provider gh at least --gh-min-tick); durations " +
      "take ms, s, m, h (at most 24h)",
    { min: 1, max: MAX_TIMER_MS, fallback: 30_000 },
  ),
  durationFlag(
    "ghMinTickMs",
    "gh-min-tick",
    "D",
    "the shortest tick with --pr-provider gh (default 5s: each tick is one GitHub request, and " +
      "GitHub allows 5,000 an hour, agents' own included)",
    { min: 1, max: MAX_TIMER_MS, fallback: 5_000 },
  ),
  KILL_GRACE,
  durationFlag(
    "maxWatchMs",
    "max-watch",
    "D",
    "give up on an open PR after this (default 4x the gap's deadline)",
    { min: 1 },
  ),
  durationFlag(
    "idleTimeoutMs",
    "idle-timeout",
    "D",
    "an agent silent (no output) for D gets one IDLE warning, for 2x D is killed like a " +
      "deadline kill (default off)",
    { min: 1, max: MAX_TIMER_MS },
  ),
  countFlag(
    "exitGraceTicks",
    "exit-grace",
    "N",
    "ticks to wait for a PR after an agent exits 0 (default 2)",
    { min: 0, fallback: 2 },
  ),
  customFlag(
    "logCapBytes",
    "log-cap",
    "MB",
    `each agent log file keeps its newest output, at most MB (default ${DEFAULT_LOG_CAP_MB})`,
    DEFAULT_LOG_CAP_MB * (1 << 20),
    (t) => {
      const mb = readCount("log-cap", t, 1);
      return mb.ok ? ok(mb.value * (1 << 20)) : mb;
    },
  ),
  textFlag(
    "events",
    "events",
    "FILE",
    "append one JSON object per line for every transition (see README); '-' writes them to " +
      "stdout instead of the plain lines",
  ),
  switchFlag("noLive", "no-live", "with --watch on a terminal: plain lines only, no live table"),
  NO_REFLECT,
] as const;

export const ROUTING = textFlag(
  "routing",
  "routing",
  "PATH",
  "routing table: a cascade of agent backends/models per kind of gap (default " +
    "docs/dispatch/routing.yaml under the repo root, when it exists; 'builtin': Chump's " +
    "built-in table; --agent-cmd and CHUMP_AGENT_CMD do without one)",
);
export const LEARN = choiceFlag(
  "learn",
  "learn",
  ["fixed", "thompson"],
  "fixed or thompson",
  // Thompson by default: on the simulator it is within 2 % of a right table and 15-120 % above a
  // wrong one (README, "The learning loop"; `deno task bench --only learning`).
  "cascade order: Thompson sampling over the reflections (the default), or the file's",
  "thompson",
);
export const LEARN_OBJECTIVE = choiceFlag(
  "learnObjective",
  "learn-objective",
  ["ships-per-hour", "ships-per-dollar"],
  "ships-per-hour or ships-per-dollar",
  // Per hour by default: a fleet's scarce thing is its slots, and --budget-* bound the dollars.
  "what --learn thompson maximises: ships per agent-hour (the default) or ships per dollar " +
    "(needs each arm's cost on record; else per hour)",
  "ships-per-hour",
);
export const SEED = countFlag(
  "seed",
  "seed",
  "N",
  "seed of --learn thompson (reproducible orders)",
  {
    min: 0,
    max: 0xffffffff,
    tooBig: `--seed must be at most ${0xffffffff}`,
  },
);
export const LEARN_WINDOW = durationFlag(
  "learnWindowMs",
  "learn-window",
  "D",
  "only reflections this recent count (e.g. 30d)",
  { min: 1, max: 3650 * 86_400_000 },
);
export const MAX_ATTEMPTS = countFlag(
  "maxAttempts",
  "max-attempts",
  "N",
  "attempts per gap per run when a rate limit or a transient error moves it to the next " +
    "arm of its cascade (default 3)",
  { min: 1, fallback: 3 },
);

/** The routing table, the learning loop and the deadlines it adapts. */
const LEARN_FLAGS = [
  ROUTING,
  LEARN,
  LEARN_OBJECTIVE,
  SEED,
  LEARN_WINDOW,
  MAX_ATTEMPTS,
  switchFlag(
    "noLessons",
    "no-lessons",
    "prompts get no block of lessons from earlier dispatches of their domain",
  ),
  customFlag(
    "deadlines",
    "deadline",
    "LIST",
    "soft deadlines by effort (default s=20m,m=60m,l=180m,xl=360m; without it an effort with " +
      "10+ shipped reflections gets 1.5x their p90)",
    undefined as Deadlines | undefined,
    (t) => parseDeadlines(t),
  ),
] as const;

export const LEASE_TTL = durationFlag(
  "leaseTtlMs",
  "lease-ttl",
  "D",
  "a shared lease whose orchestrator has not heartbeat for D is suspect: held, never " +
    "re-dispatched automatically (default 5m)",
  { min: 1000, max: MAX_TIMER_MS },
);

/** Several hosts on one shared ledger (`--ledger`). */
const FLEET_FLAGS = [
  LEDGER,
  HOST_ID,
  LEASE_TTL,
  durationFlag(
    "takeOverAfterMs",
    "take-over-after",
    "D",
    "another host may re-dispatch a gap suspect for D (default: never); the old owner, if it " +
      "returns, ends its agent and writes no reflection",
    { min: 0, max: MAX_TIMER_MS },
  ),
  countFlag(
    "fleetMax",
    "fleet-max",
    "N",
    "at most N live agents in the whole fleet (with --ledger)",
    { min: 1 },
  ),
] as const;

/** The main command's own: dry run or not, watch, explain, self-test, version. */
const MODE_FLAGS = [
  switchFlag("dryRun", "dry-run", "only print what would be dispatched (the default)"),
  switchFlag("explain", "explain", "with a dry run: one line per gap not picked, saying why"),
  switchFlag("noDryRun", "no-dry-run", "really create worktrees and start agents", {
    aliases: ["execute"],
  }),
  switchFlag(
    "watch",
    "watch",
    "with --no-dry-run: watch every agent to a terminal outcome, refilling from the backlog " +
      "as agents finish (without --no-dry-run it is still a dry run, and says so)",
  ),
  switchFlag("selfTest", "self-test", "run the whole pipeline on a built-in 4-gap backlog"),
  switchFlag("version", "version", "print the version"),
] as const;

/** The main command: a dry run, a real run (`--no-dry-run`), or the self-test. */
export const DISPATCH_FLAGS = [
  ...PICK_FLAGS,
  ...MODE_FLAGS,
  REPO_ROOT,
  DB,
  ...MONITOR_FLAGS,
  ...LEARN_FLAGS,
  ...COST_FLAGS,
  ...BACKOFF_FLAGS,
  ...PR_FLAGS,
  ...FLEET_FLAGS,
  HELP,
] as const;

/** The main command's options. */
export type DispatchOptions = OptionsOf<typeof DISPATCH_FLAGS>;
