/**
 * Machine-readable events (`--events FILE`, or `-` for stdout): one JSON
 * object per line for every transition of a run, so scripts and dashboards
 * need not parse the plain lines. Every event has `event` (its name), `v`
 * (the schema version), `ts` (ISO 8601), `run_id`, `gap_id` and `lease_id`
 * (null where they do not apply), then its own fields: {@linkcode EVENT_FIELDS}
 * is the schema, the README's table is rendered from the same names, and a
 * test checks every event an end-to-end run emits against it.
 *
 * @module
 */

/** The schema version every event carries as `v`. */
const EVENTS_VERSION = 1;

/** A field's JSON type; `?` suffix: may be null. */
type FieldType = "string" | "number" | "boolean" | "string?" | "number?";

/** The fields every event has. */
const COMMON_FIELDS: Readonly<Record<string, FieldType>> = {
  event: "string",
  v: "number",
  ts: "string",
  run_id: "string",
  gap_id: "string?",
  lease_id: "number?",
};

/** Each event's own fields, beyond {@linkcode COMMON_FIELDS}. */
export const EVENT_FIELDS = {
  run_started: { pid: "number", watch: "boolean", max_parallel: "number", adopt_only: "boolean" },
  adopted: { pid: "number", running_ms: "number", deadline_ms: "number", ended: "boolean" },
  dispatched: {
    pid: "number",
    worktree: "string",
    branch: "string",
    backend: "string",
    deadline_ms: "number",
    arm: "string?",
    attempt: "number",
  },
  output_idle: { pid: "number", idle_ms: "number", idle_timeout_ms: "number" },
  deadline_warning: { pid: "number", elapsed_ms: "number", deadline_ms: "number" },
  pr_seen: { pr_number: "number?", state: "string" },
  retry: { provider: "string", reason: "string", failed_polls: "number" },
  requeued: { attempt: "number", class: "string", arm: "string", wait_ms: "number" },
  outcome: {
    outcome: "string",
    duration_s: "number",
    pr_number: "number?",
    reason: "string",
    worktree_kept: "string?",
    cost_usd: "number?",
    tokens_in: "number?",
    tokens_out: "number?",
    tokens_cache_read: "number?",
    tokens_cache_write: "number?",
    turns: "number?",
    session: "string?",
  },
  usage: {
    cost_usd: "number?",
    tokens_in: "number",
    tokens_out: "number",
    tokens_cache_read: "number",
    tokens_cache_write: "number",
    turns: "number",
    session: "string?",
    model: "string?",
  },
  budget: { budget: "string", spent_usd: "number", day_usd: "number", running: "number" },
  fix_round: {
    round: "number",
    rounds: "number",
    reasons: "string",
    pr_number: "number?",
    pid: "number",
    resumed: "boolean",
  },
  held_back: {
    failures: "number",
    parked: "boolean",
    retry_in_ms: "number?",
    reason: "string",
  },
  interrupted: { signal: "string", left_running: "boolean" },
  suspect: { host: "string", suspect_ms: "number" },
  taken_over: { from_host: "string", generation: "number" },
  lost: { taken_by: "string?", pid: "number" },
  escaped: { pid: "number", ended: "boolean" },
  run_finished: {
    exit_code: "number",
    shipped: "number",
    ci_failed: "number",
    stalled: "number",
    killed: "number",
    spawn_failures: "number",
    spent_usd: "number?",
  },
} as const satisfies Readonly<Record<string, Readonly<Record<string, FieldType>>>>;

/** An event's name. */
export type EventName = keyof typeof EVENT_FIELDS;

/** The TypeScript type of a {@linkcode FieldType}. */
type ValueOf<T extends FieldType> = T extends "string" ? string
  : T extends "number" ? number
  : T extends "boolean" ? boolean
  : T extends "string?" ? string | null
  : number | null;

/** The own fields of event `N`, typed by the schema. */
export type EventFields<N extends EventName> = {
  -readonly [K in keyof (typeof EVENT_FIELDS)[N]]: (typeof EVENT_FIELDS)[N][K] extends FieldType
    ? ValueOf<(typeof EVENT_FIELDS)[N][K]>
    : never;
};

/** The ids an event names (null where they do not apply). */
export interface EventIds {
  gapId?: string;
  leaseId?: number | null;
}

/** Where a run's events go. */
export interface Events {
  /** Emit one event; never throws (a sink that fails goes quiet after one warning). */
  emit<N extends EventName>(event: N, ids: EventIds, fields: EventFields<N>): void;
}

/** Events nobody listens to. */
export const NO_EVENTS: Events = { emit() {} };

/**
 * Events written as JSON lines by `write` (a file appended to, or stdout).
 *
 * @param runId this run's id (in every event)
 * @param write takes one line (without its newline); a throw silences the sink after `warn`
 * @param warn says once that events could not be written
 * @example
 * ```ts
 * const lines: string[] = [];
 * const events = jsonLineEvents("run-1", (l) => lines.push(l), console.error);
 * events.emit("retry", {}, { provider: "gh", reason: "timeout", failed_polls: 1 });
 * JSON.parse(lines[0]).event; // "retry"
 * ```
 */
export function jsonLineEvents(
  runId: string,
  write: (line: string) => void,
  warn: (line: string) => void,
): Events {
  let broken = false;
  return {
    emit(event, ids, fields) {
      if (broken) return;
      const line = JSON.stringify({
        event,
        v: EVENTS_VERSION,
        ts: new Date().toISOString(),
        run_id: runId,
        gap_id: ids.gapId ?? null,
        lease_id: ids.leaseId ?? null,
        ...fields,
      });
      try {
        write(line);
      } catch (e) {
        broken = true;
        warn(`warning: events could not be written, no more will be: ${String(e).split("\n")[0]}`);
      }
    },
  };
}

/**
 * Events appended to `path` (created if missing), one line per write.
 *
 * @example
 * ```ts ignore
 * const events = fileEvents("/tmp/run.jsonl", "run-1", console.error);
 * ```
 */
export function fileEvents(path: string, runId: string, warn: (line: string) => void): Events {
  const encoder = new TextEncoder();
  return jsonLineEvents(runId, (line) => {
    Deno.writeFileSync(path, encoder.encode(line + "\n"), { append: true, create: true });
  }, warn);
}

/**
 * Check one parsed event against the schema; the problems, one line each
 * (empty: it conforms).
 *
 * @example
 * ```ts
 * checkEvent({ event: "nope" }); // ["unknown event 'nope'"]
 * ```
 */
export function checkEvent(e: Record<string, unknown>): string[] {
  const name = String(e.event);
  if (!Object.hasOwn(EVENT_FIELDS, name)) return [`unknown event '${name}'`];
  const own: Readonly<Record<string, FieldType>> = EVENT_FIELDS[name as EventName];
  const schema = { ...COMMON_FIELDS, ...own };
  const problems: string[] = [];
  for (const [key, type] of Object.entries(schema)) {
    const value = e[key];
    const nullable = type.endsWith("?");
    if (value === null && nullable) continue;
    if (!Object.hasOwn(e, key)) problems.push(`${e.event}: missing ${key}`);
    else if (!hasType(value, type.replace("?", ""))) {
      problems.push(`${e.event}: ${key} is ${typeof value}, not ${type}`);
    }
  }
  for (const key of Object.keys(e)) {
    if (!Object.hasOwn(schema, key)) problems.push(`${e.event}: unknown field ${key}`);
  }
  return problems;
}

/** Is `value` of JSON type `type` (`string`, `number`, `boolean`)? */
function hasType(value: unknown, type: string): boolean {
  const actual = typeof value;
  return actual === type;
}
