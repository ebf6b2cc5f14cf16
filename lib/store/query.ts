/**
 * Reading reflections back (`chump-orchestrator reflections`): dispatch
 * reflections newest first with their improvement targets, from a DB opened
 * read-only (db.ts `openReader`: creating nothing, and working where this
 * process cannot write).
 *
 * @module
 */
import { type CostFacts, decodeNotes } from "./notes.ts";
import type { DatabaseSync, SQLOutputValue } from "node:sqlite";
import { errorMessage, fail, ok, type Result } from "../util/result.ts";
import { controlsToSpaces as oneLine } from "../util/text.ts";
import { openReader } from "./reader.ts";
import { DISPATCH_ERROR_PATTERN, GOAL_PREFIX } from "./reflection.ts";

/** One row of `chump-orchestrator reflections`. */
export interface ReflectionRow {
  id: number;
  createdAt: string;
  gapId: string;
  outcome: string;
  durationS: number | null;
  prNumber: number | null;
  outcomeClass: string;
  directive: string;
  priority: string;
  scope: string | null;
  notes: string;
  /** From the directive (`effort=`, `domain=`); "" when it has none. */
  effort: string;
  domain: string;
  /** From the notes' `backend=<label>` line; "" when they have none. */
  backend: string;
  /** The model: the notes' `model=` (a routed arm's), else the session's; "" when neither says. */
  model: string;
  /** What the dispatch cost (the notes' cost facts); null without a structured session. */
  cost: CostFacts | null;
}

/**
 * Dispatch reflections (error_pattern = 'orchestrator_dispatch'), newest
 * first, each with its improvement target. `outcome` filters on the outcome
 * in `observed_outcome`, `gapId` on the exact id in `intended_goal`. The DB is
 * opened read-only; a missing DB (or one without the tables) has no rows and
 * is not created.
 *
 * @param source the DB file, or an open DB (see {@linkcode ReflectionSource})
 * @returns the rows, or one line `cannot read reflections from <db>: <why>`
 * @example
 * ```ts
 * const dir = Deno.makeTempDirSync();
 * queryReflections(`${dir}/none.db`, { limit: 10 }); // { ok: true, value: [] }
 * ```
 */
export function queryReflections(
  source: ReflectionSource,
  filter: { limit: number; outcome?: string; gapId?: string },
): Result<ReflectionRow[]> {
  if (!(filter.limit > 0)) return ok([]);
  if (typeof source !== "string") return ok(rowsOf(source.db, filter));
  let db: DatabaseSync | undefined;
  try {
    db = openReader(source);
    return ok(db === undefined ? [] : rowsOf(db, filter));
  } catch (e) {
    return fail(`cannot read reflections from ${source}: ${oneLine(errorMessage(e))}`);
  } finally {
    db?.close();
  }
}

/**
 * Where reflections are read from: a DB file (opened read-only, closed after
 * each query), or an open DB of the same schema (the fleet's reflections
 * from the shared ledger, store/pg/reflections.ts) with a name for messages.
 */
export type ReflectionSource = string | { db: DatabaseSync; name: string };

/**
 * The name of a source, for messages.
 *
 * @example
 * ```ts
 * sourceName("/repo/sessions/chump_memory.db"); // "/repo/sessions/chump_memory.db"
 * ```
 */
export function sourceName(source: ReflectionSource): string {
  return typeof source === "string" ? source : source.name;
}

function rowsOf(
  db: DatabaseSync,
  filter: { limit: number; outcome?: string; gapId?: string },
): ReflectionRow[] {
  const { limit, outcome, gapId } = filter;
  const tables = new Set(
    db.prepare(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('chump_reflections', 'chump_improvement_targets')",
    ).all().map((t) => String(t.name)),
  );
  if (!tables.has("chump_reflections")) return [];
  const target = tables.has("chump_improvement_targets")
    ? "t.directive AS directive, t.priority AS priority, t.scope AS scope"
    : "NULL AS directive, NULL AS priority, NULL AS scope";
  const join = tables.has("chump_improvement_targets")
    ? "LEFT JOIN chump_improvement_targets t ON t.reflection_id = r.id"
    : "";
  const params: string[] = [DISPATCH_ERROR_PATTERN];
  let where = "r.error_pattern = ?";
  if (gapId !== undefined) {
    where += " AND r.intended_goal = ?";
    params.push(GOAL_PREFIX + gapId);
  }
  const statement = db.prepare(
    `SELECT r.id AS id, r.created_at AS created_at, r.intended_goal AS goal,
            r.observed_outcome AS observed, r.outcome_class AS outcome_class,
            r.hypothesis AS notes, ${target}
       FROM chump_reflections r ${join}
      WHERE ${where}
      ORDER BY r.id DESC${join === "" ? "" : ", t.id ASC"}`,
  );
  const rows: ReflectionRow[] = [];
  let lastId: number | undefined;
  for (const raw of statement.iterate(...params)) {
    const id = Number(raw.id);
    if (id === lastId) continue; // a second target of the same reflection
    lastId = id;
    const observed = parseObserved(text(raw.observed));
    if (outcome !== undefined && observed.outcome !== outcome) continue;
    const goal = text(raw.goal);
    const directive = text(raw.directive);
    const notes = text(raw.notes);
    const facts = decodeNotes(notes);
    rows.push({
      id,
      createdAt: text(raw.created_at),
      gapId: goal.startsWith(GOAL_PREFIX) ? goal.slice(GOAL_PREFIX.length) : goal,
      ...observed,
      outcomeClass: text(raw.outcome_class),
      directive,
      priority: text(raw.priority),
      scope: raw.scope === null ? null : text(raw.scope),
      notes,
      effort: / effort=(\S+)/.exec(directive)?.[1] ?? "",
      domain: / domain=(\S+)/.exec(directive)?.[1] ?? "",
      backend: facts.backend ?? "",
      model: facts.model ?? facts.cost?.sessionModel ?? "",
      cost: facts.cost ?? null,
    });
    if (rows.length >= limit) break;
  }
  return rows;
}

/** The live runs' spending (none in a DB of a version before budgets). */
function spendingRuns(db: DatabaseSync): RunSpending[] {
  const columns = new Set(
    db.prepare("PRAGMA table_info(chump_runs)").all().map((c) => String(c.name)),
  );
  if (!columns.has("spent_usd")) return [];
  const n = (v: SQLOutputValue | undefined) => (v === null || v === undefined ? null : Number(v));
  return db.prepare(
    `SELECT run_id, host, spent_usd, budget_run_usd, budget_day_usd, budget_gap_usd FROM chump_runs
      WHERE ended_ms IS NULL AND (spent_usd IS NOT NULL OR budget_run_usd IS NOT NULL
        OR budget_day_usd IS NOT NULL OR budget_gap_usd IS NOT NULL)
      ORDER BY heartbeat_ms DESC LIMIT 20`,
  ).all().map((r) => ({
    runId: text(r.run_id),
    host: text(r.host),
    spentUsd: n(r.spent_usd),
    budgetRunUsd: n(r.budget_run_usd),
    budgetDayUsd: n(r.budget_day_usd),
    budgetGapUsd: n(r.budget_gap_usd),
  }));
}

function text(value: SQLOutputValue | undefined): string {
  if (value === null || value === undefined) return "";
  if (value instanceof Uint8Array) return new TextDecoder().decode(value);
  return String(value);
}

/** The outcome, duration and PR of an `observed_outcome`, field by field. */
function parseObserved(
  observed: string,
): { outcome: string; durationS: number | null; prNumber: number | null } {
  const fields = new Map<string, string>();
  for (const word of observed.split(" ")) {
    const eq = word.indexOf("=");
    if (eq > 0 && !fields.has(word.slice(0, eq))) fields.set(word.slice(0, eq), word.slice(eq + 1));
  }
  const duration = fields.get("duration_s") ?? "";
  const pr = /^Some\((\d+)\)$/.exec(fields.get("pr") ?? "");
  return {
    outcome: fields.get("outcome") ?? "",
    durationS: /^\d+$/.test(duration) ? Number(duration) : null,
    prNumber: pr ? Number(pr[1]) : null,
  };
}

/** The counters of the runs recorded in a DB (`chump_runs`, kept by each watching run's heartbeat). */
export interface RunTotals {
  runs: number;
  ticks: number;
  providerErrors: number;
  writeFailures: number;
  /** Agents in flight in runs that have not ended (as of their last heartbeat). */
  liveAgents: number;
  /** The runs that have not ended and spend or have a budget: what each spent, against its budgets. */
  spending?: RunSpending[];
}

/** What a run that has not ended spent, and its budgets (null: none), as its last heartbeat said. */
export interface RunSpending {
  runId: string;
  host: string;
  spentUsd: number | null;
  budgetRunUsd: number | null;
  budgetDayUsd: number | null;
  budgetGapUsd: number | null;
}

/**
 * Totals over every run of the DB at `dbPath` (zeros when it has none).
 *
 * @example
 * ```ts
 * const dir = Deno.makeTempDirSync();
 * queryRunTotals(`${dir}/none.db`); // { ok: true, value: { runs: 0, ticks: 0, ... } }
 * ```
 */
export function queryRunTotals(dbPath: string): Result<RunTotals> {
  const totals: RunTotals = {
    runs: 0,
    ticks: 0,
    providerErrors: 0,
    writeFailures: 0,
    liveAgents: 0,
  };
  let db: DatabaseSync | undefined;
  try {
    db = openReader(dbPath);
    const has = db?.prepare(
      "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'chump_runs'",
    ).get();
    if (db === undefined || has === undefined) return ok(totals);
    const r = db.prepare(
      `SELECT count(*) AS runs, total(ticks) AS ticks, total(provider_errors) AS pe,
              total(write_failures) AS wf,
              total(CASE WHEN ended_ms IS NULL THEN live_agents ELSE 0 END) AS live
         FROM chump_runs`,
    ).get()!;
    return ok({
      runs: Number(r.runs),
      ticks: Number(r.ticks),
      providerErrors: Number(r.pe),
      writeFailures: Number(r.wf),
      liveAgents: Number(r.live),
      spending: spendingRuns(db),
    });
  } catch (e) {
    return fail(`cannot read runs from ${dbPath}: ${oneLine(errorMessage(e))}`);
  } finally {
    db?.close();
  }
}
