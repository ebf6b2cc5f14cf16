/**
 * One reflection per terminal dispatch outcome, in the learning loop's tables
 * (CONTRACT §5): `chump_reflections` + `chump_improvement_targets`, schema
 * byte-compatible with the seed, both rows in ONE transaction.
 *
 * Writers never throw and never lose a row: a locked DB is waited on (in
 * short slices, so the event loop keeps draining agents' pipes), then the row
 * goes to a spool file next to the DB (or in the temp dir when that is not
 * writable, or as a last resort to stderr), and the next run imports it.
 *
 * Choices the contract leaves open:
 * - The directive is one line whatever the caller passes: control characters
 *   (newline, CR, tab, ...) and U+2028/U+2029 in its field values become a
 *   space; everything else, ids included, is kept as written. Durations and
 *   sibling counts are written as whole non-negative numbers (the seed's u64).
 * - `node:sqlite` is synchronous, so a lock is waited on in blocking slices of
 *   at most {@linkcode BUSY_SLICE_MS} with an `await`ed sleep between them. No
 *   transaction spans an `await`, so concurrent `write` calls cannot interleave
 *   inside one.
 * - Spool appends hold an advisory lock (flock) on the spool file, and the
 *   importer replaces the file atomically under that lock, so rows appended
 *   while an import runs are never lost. Importing is idempotent: a row that
 *   is already in the DB (same goal, outcome, notes and time) is not inserted
 *   twice, so a crash between an insert and the spool rewrite costs nothing.
 *
 * @module
 */
import { DatabaseSync, type SQLOutputValue, type StatementSync } from "node:sqlite";
import { createHash } from "node:crypto";
import { tempDir } from "../cli/permissions.ts";
import { dirname, join, resolve } from "node:path";
import { errorMessage } from "../util/result.ts";

/** Stable outcome strings; the synthesis layer matches on them. */
export type Outcome = "shipped" | "ci_failed" | "stalled" | "killed";

/**
 * Every {@linkcode Outcome}, in the order the contract lists them.
 *
 * @example
 * ```ts
 * OUTCOMES.includes("stalled"); // true
 * ```
 */
export const OUTCOMES: readonly Outcome[] = ["shipped", "ci_failed", "stalled", "killed"];

/** One dispatch outcome, ready to be written. */
export interface DispatchReflection {
  gapId: string;
  /** The gap's effort as written (`s`, `m`, ...), `unknown` when missing. */
  effort: string;
  /** {@linkcode gapDomain} of the id. */
  domain: string;
  outcome: Outcome;
  durationS: number;
  /** Other dispatches still in flight at that tick. */
  parallelSiblings: number;
  prNumber?: number;
  /** Reason line (if any), then `backend=<label>`, then the stderr tail lines. */
  notes: string;
  /**
   * The lease this outcome ends. Not a DB column: it travels with a spooled
   * row so the run that imports the spool can end the lease (instead of a
   * reap taking it for an orphan and writing a second reflection).
   */
  leaseId?: number;
}

/**
 * The contract's schema, verbatim (the same columns, types, defaults and order
 * as the seed, which other tools of the learning loop read).
 *
 * @example
 * ```ts
 * REFLECTION_SCHEMA.startsWith("CREATE TABLE IF NOT EXISTS chump_reflections ("); // true
 * ```
 */
export const REFLECTION_SCHEMA: string = `CREATE TABLE IF NOT EXISTS chump_reflections (
  id INTEGER PRIMARY KEY AUTOINCREMENT, episode_id INTEGER, task_id INTEGER,
  intended_goal TEXT NOT NULL DEFAULT '', observed_outcome TEXT NOT NULL DEFAULT '',
  outcome_class TEXT NOT NULL DEFAULT 'failure', error_pattern TEXT,
  hypothesis TEXT NOT NULL DEFAULT '', surprisal_at_reflect REAL,
  confidence_at_reflect REAL, created_at TEXT NOT NULL DEFAULT (datetime('now')));
CREATE TABLE IF NOT EXISTS chump_improvement_targets (
  id INTEGER PRIMARY KEY AUTOINCREMENT, reflection_id INTEGER NOT NULL,
  directive TEXT NOT NULL, priority TEXT NOT NULL DEFAULT 'medium', scope TEXT,
  actioned_as TEXT, created_at TEXT NOT NULL DEFAULT (datetime('now')));
`;

/** The `error_pattern` that tags dispatch reflections (the synthesis layer filters on it). */
export const DISPATCH_ERROR_PATTERN = "orchestrator_dispatch";

/** `intended_goal` is this prefix followed by the gap id. */
const GOAL_PREFIX = "ship gap ";

/** Default total wait on a locked DB before spooling: long enough for another writer's commit. */
export const LOCK_WAIT_MS = 5000;

/**
 * Longest single blocking wait on a lock (SQLite's busy_timeout). `node:sqlite`
 * blocks the event loop while it waits, so this stays short and the loop gets
 * a turn between slices.
 */
export const BUSY_SLICE_MS = 200;

/** Sleep between two blocking slices: lets timers and pipe reads run. */
const YIELD_MS = 15;

/** Attempts to append to a spool file an importer keeps replacing, before giving up on it. */
const SPOOL_APPEND_ATTEMPTS = 20;

/**
 * The domain bucket of a gap id: the prefix before the first `-`, ASCII
 * lowercased (as the seed); `unknown` without a `-` or with nothing before it.
 *
 * @example
 * ```ts
 * gapDomain("AUTO-013"); // "auto"
 * gapDomain("EVAL-027c"); // "eval"
 * gapDomain("noprefix"); // "unknown"
 * gapDomain("-x"); // "unknown"
 * ```
 */
export function gapDomain(gapId: string): string {
  const dash = gapId.indexOf("-");
  if (dash <= 0) return "unknown";
  return gapId.slice(0, dash).replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/**
 * The improvement target's directive, one line:
 * `dispatched gap=<ID> effort=<e> domain=<d> outcome=<o> duration_s=<n> parallel_siblings=<n> pr_number=<Some(N)|None> notes=<first line of notes, trimmed>`.
 * Control characters in field values become spaces (see the module notes).
 *
 * @example
 * ```ts
 * directive({
 *   gapId: "AUTO-013", effort: "m", domain: "auto", outcome: "killed", durationS: 61,
 *   parallelSiblings: 1, notes: "exit code 1\nbackend=claude",
 * });
 * // "dispatched gap=AUTO-013 effort=m domain=auto outcome=killed duration_s=61 parallel_siblings=1 pr_number=None notes=exit code 1"
 * ```
 */
export function directive(r: DispatchReflection): string {
  return [
    "dispatched",
    `gap=${oneLine(r.gapId)}`,
    `effort=${oneLine(r.effort)}`,
    `domain=${oneLine(r.domain)}`,
    `outcome=${oneLine(r.outcome)}`,
    `duration_s=${wholeNumber(r.durationS)}`,
    `parallel_siblings=${wholeNumber(r.parallelSiblings)}`,
    `pr_number=${rustOption(r.prNumber)}`,
    `notes=${oneLine(firstLine(r.notes))}`,
  ].join(" ");
}

/**
 * The reflection's `observed_outcome`: `outcome=<o> duration_s=<d> pr=<Some(N)|None>`.
 *
 * @example
 * ```ts
 * observedOutcome({
 *   gapId: "AUTO-013", effort: "m", domain: "auto", outcome: "shipped", durationS: 90,
 *   parallelSiblings: 0, prNumber: 12, notes: "",
 * });
 * // "outcome=shipped duration_s=90 pr=Some(12)"
 * ```
 */
export function observedOutcome(r: DispatchReflection): string {
  return `outcome=${oneLine(r.outcome)} duration_s=${wholeNumber(r.durationS)} pr=${
    rustOption(r.prNumber)
  }`;
}

/**
 * The reflection's `outcome_class`: `success` only for `shipped`.
 *
 * @example
 * ```ts
 * outcomeClass("shipped"); // "success"
 * outcomeClass("stalled"); // "failure"
 * ```
 */
export function outcomeClass(outcome: Outcome): "success" | "failure" {
  return outcome === "shipped" ? "success" : "failure";
}

/**
 * The improvement target's priority: failures surface first in the next
 * synthesised prompt.
 *
 * @example
 * ```ts
 * targetPriority("ci_failed"); // "high"
 * targetPriority("stalled"); // "medium"
 * targetPriority("shipped"); // "low"
 * ```
 */
export function targetPriority(outcome: Outcome): "high" | "medium" | "low" {
  if (outcome === "killed" || outcome === "ci_failed") return "high";
  if (outcome === "stalled") return "medium";
  return "low";
}

/**
 * Notes text, one item a line: the reason (when there is one), then
 * `backend=<label>`, then the stderr tail lines. The reason goes first
 * because the directive carries only the first line.
 *
 * @param reason why the dispatch ended (`exit code 1`, ...); blank means none
 * @param backend the agent backend's label
 * @param tail the stderr tail, oldest first
 * @returns the lines joined with `\n`
 *
 * @example
 * ```ts
 * buildNotes("exit code 1", "claude", ["ERROR x"]); // "exit code 1\nbackend=claude\nERROR x"
 * buildNotes(undefined, "claude", []); // "backend=claude"
 * ```
 */
export function buildNotes(
  reason: string | undefined,
  backend: string,
  tail: readonly string[],
): string {
  const lines: string[] = [];
  if (reason !== undefined && reason.trim() !== "") lines.push(reason);
  lines.push(`backend=${backend}`, ...tail);
  return lines.join("\n");
}

/** Where a written reflection ended up. */
export type WriteReceipt =
  | { stored: "db" | "memory" | "discarded" }
  | { stored: "spool"; path: string; reason: string }
  | { stored: "stderr"; reason: string };

/**
 * One line for the operator when a reflection did not reach the DB, or
 * `undefined` when there is nothing to say.
 *
 * @example
 * ```ts
 * describeReceipt({ stored: "spool", path: "/r/x.db.spool.jsonl", reason: "database is locked" });
 * // "reflection spooled to /r/x.db.spool.jsonl (database is locked); the next run imports it"
 * describeReceipt({ stored: "db" }); // undefined
 * ```
 */
export function describeReceipt(receipt: WriteReceipt): string | undefined {
  if (receipt.stored === "spool") {
    return `reflection spooled to ${receipt.path} (${receipt.reason}); the next run imports it`;
  }
  if (receipt.stored === "stderr") {
    return `reflection not stored (${receipt.reason}); it was printed as REFLECTION-NOT-STORED`;
  }
  return undefined;
}

/** A sink for reflections. `write` never throws. */
export interface ReflectionWriter {
  write(r: DispatchReflection): Promise<WriteReceipt>;
  /** Release the DB handle (idempotent). */
  close(): void;
}

/**
 * A writer that drops every row (`--no-reflect`).
 *
 * @example
 * ```ts
 * const receipt = await createNoopWriter().write({
 *   gapId: "A-1", effort: "s", domain: "a", outcome: "shipped", durationS: 1,
 *   parallelSiblings: 0, notes: "",
 * });
 * // receipt.stored === "discarded"
 * ```
 */
export function createNoopWriter(): ReflectionWriter {
  return {
    write: () => Promise.resolve({ stored: "discarded" }),
    close() {},
  };
}

/**
 * A writer that keeps copies of the rows in `rows` (for tests).
 *
 * @example
 * ```ts
 * const w = createMemoryWriter();
 * await w.write({
 *   gapId: "A-1", effort: "s", domain: "a", outcome: "killed", durationS: 3,
 *   parallelSiblings: 0, notes: "exit code 1",
 * });
 * // w.rows.length === 1
 * ```
 */
export function createMemoryWriter(): ReflectionWriter & { rows: DispatchReflection[] } {
  const rows: DispatchReflection[] = [];
  return {
    rows,
    write(r) {
      rows.push({ ...r });
      return Promise.resolve({ stored: "memory" });
    },
    close() {},
  };
}

/** Options of {@linkcode createSqliteWriter}. */
export interface SqliteWriterOptions {
  /** Total time to keep retrying a locked DB before spooling (default 5000 ms). */
  lockWaitMs?: number;
  /** Where to write when the DB cannot take a row; default `<db>.spool.jsonl`. */
  spoolPath?: string;
  /** Fallback spool when spoolPath is not writable; default in the temp dir, named after the DB. */
  fallbackSpoolPath?: string;
  /** Last resort output (default console.error). */
  stderr?: (line: string) => void;
}

/**
 * The two spool files of a DB: `<db>.spool.jsonl` and
 * `<tmpdir>/chump-orchestrator-spool-<8 hex of sha256(absolute db path)>.jsonl`,
 * unless the options name them.
 *
 * @example
 * ```ts
 * spoolPaths("/repo/sessions/chump_memory.db").spoolPath;
 * // "/repo/sessions/chump_memory.db.spool.jsonl"
 * ```
 */
export function spoolPaths(
  dbPath: string,
  options: Pick<SqliteWriterOptions, "spoolPath" | "fallbackSpoolPath"> = {},
): { spoolPath: string; fallbackSpoolPath: string } {
  const {
    spoolPath = `${dbPath}.spool.jsonl`,
    fallbackSpoolPath = join(
      tempDir(),
      `chump-orchestrator-spool-${
        createHash("sha256").update(absolute(dbPath)).digest("hex").slice(0, 8)
      }.jsonl`,
    ),
  } = options;
  return { spoolPath, fallbackSpoolPath };
}

/**
 * The production writer: one SQLite handle for the writer's lifetime, opened
 * on the first write (reopened only after a failure), WAL mode, the schema
 * created if missing, both rows of a reflection in one transaction. A locked
 * DB is waited on up to `lockWaitMs`; any other failure (unwritable, corrupt,
 * disk full) spools at once. Every write tries the DB first again.
 *
 * @param dbPath the reflection DB (`<repo>/sessions/chump_memory.db`)
 * @param options lock wait, spool paths, last-resort output
 * @returns a writer whose `write` never throws
 *
 * @example
 * ```ts
 * const dir = Deno.makeTempDirSync();
 * const w = createSqliteWriter(`${dir}/sessions/chump_memory.db`);
 * const receipt = await w.write({
 *   gapId: "AUTO-013", effort: "m", domain: "auto", outcome: "shipped", durationS: 90,
 *   parallelSiblings: 0, prNumber: 12, notes: "backend=claude",
 * });
 * w.close();
 * // receipt.stored === "db"
 * ```
 */
export function createSqliteWriter(
  dbPath: string,
  options: SqliteWriterOptions = {},
): ReflectionWriter {
  const { lockWaitMs = LOCK_WAIT_MS, stderr = (line: string) => console.error(line) } = options;
  const store = createStore(dbPath);
  let spools: string[] | undefined;

  async function spool(r: DispatchReflection, dbReason: string): Promise<WriteReceipt> {
    const line = spoolLine(r, sqliteNow(), absolute(dbPath));
    const reasons = [dbReason];
    if (spools === undefined) {
      try {
        const { spoolPath, fallbackSpoolPath } = spoolPaths(dbPath, options);
        spools = unique([spoolPath, fallbackSpoolPath]);
      } catch (e) {
        reasons.push(`no spool path: ${oneLine(errorMessage(e))}`);
      }
    }
    for (const path of spools ?? []) {
      try {
        await appendToSpool(path, line);
        return { stored: "spool", path, reason: reasons.join("; ") };
      } catch (e) {
        reasons.push(`spool ${path}: ${oneLine(errorMessage(e))}`);
      }
    }
    try {
      stderr(`REFLECTION-NOT-STORED: ${line}`);
    } catch {
      // Nowhere left to say it.
    }
    return { stored: "stderr", reason: reasons.join("; ") };
  }

  return {
    async write(r) {
      let reason: string;
      try {
        const done = await store.run(lockWaitMs, (db) => insertReflection(db, r));
        if (done.ok) return { stored: "db" };
        reason = done.reason;
      } catch (e) {
        reason = oneLine(errorMessage(e));
      }
      return await spool(r, reason);
    },
    close() {
      store.close();
    },
  };
}

/**
 * Move spooled rows (from both spool locations) into the DB, each in its own
 * transaction, keeping their original time; rows that fail stay spooled.
 *
 * Rows in the fallback spool (shared temp dir) are imported only when they
 * name this DB (others are left there and counted as `otherDb`); rows in
 * `spoolPath` always are. Malformed lines are moved to `<spool>.bad`. A spool
 * left empty is deleted. On a lock that outlasts `lockWaitMs` the import
 * stops and the remaining rows stay spooled. Never throws: a spool that cannot
 * be read or rewritten is left as it was and named in `errors`.
 *
 * @param dbPath the reflection DB
 * @param options the same spool options as the writer's
 * @returns rows imported, this DB's rows still spooled, other DBs' rows left
 * alone, malformed lines set aside, the spool files that existed, and one line
 * per spool that could not be processed
 *
 * @example
 * ```ts
 * const dir = Deno.makeTempDirSync();
 * const result = await importSpool(`${dir}/chump_memory.db`, {
 *   fallbackSpoolPath: `${dir}/fallback.jsonl`,
 * });
 * // { imported: 0, left: 0, otherDb: 0, bad: 0, paths: [], errors: [] }
 * ```
 */
export async function importSpool(
  dbPath: string,
  options: SqliteWriterOptions = {},
): Promise<SpoolImport> {
  const { lockWaitMs = LOCK_WAIT_MS } = options;
  const total: SpoolImport = {
    imported: 0,
    left: 0,
    otherDb: 0,
    bad: 0,
    paths: [],
    errors: [],
    leaseOutcomes: [],
  };
  let paths: { spoolPath: string; fallbackSpoolPath: string };
  try {
    paths = spoolPaths(dbPath, options);
  } catch (e) {
    total.errors.push(`no spool path: ${oneLine(errorMessage(e))}`);
    return total;
  }
  const { spoolPath, fallbackSpoolPath } = paths;
  const db = absolute(dbPath);
  const store = createStore(dbPath);
  let blocked = false;
  try {
    for (const path of unique([spoolPath, fallbackSpoolPath])) {
      const onlyOwnRows = path !== spoolPath;
      let counts;
      try {
        counts = await rewriteSpool(path, async (line) => {
          const row = parseSpoolLine(line);
          if (row === undefined) return "bad";
          if (onlyOwnRows && row.db !== db) return "foreign";
          const { leaseId, outcome, notes } = row.reflection;
          if (leaseId !== undefined) total.leaseOutcomes.push({ leaseId, outcome, notes });
          if (blocked) return "keep";
          const done = await store.run(lockWaitMs, (conn) => {
            if (!alreadyImported(conn, row.reflection, row.createdAt)) {
              insertReflection(conn, row.reflection, row.createdAt);
            }
          });
          if (done.ok) return "drop";
          if (done.locked) blocked = true;
          return "keep";
        });
      } catch (e) {
        total.paths.push(path);
        total.errors.push(`${path}: ${oneLine(errorMessage(e))}`);
        continue;
      }
      if (counts === undefined) continue;
      total.paths.push(path);
      total.imported += counts.drop;
      total.left += counts.keep;
      total.otherDb += counts.foreign;
      total.bad += counts.bad;
    }
  } finally {
    store.close();
  }
  return total;
}

/** What {@linkcode importSpool} did. */
export interface SpoolImport {
  /** Rows moved from a spool into the DB (including ones found already there). */
  imported: number;
  /** This DB's rows still spooled (the DB refused them). */
  left: number;
  /** Rows of other DBs in the shared fallback spool, left alone. */
  otherDb: number;
  /** Malformed lines moved to `<spool>.bad`. */
  bad: number;
  /** The spool files that existed. */
  paths: string[];
  /** One line per spool that could not be read or rewritten (left as it was). */
  errors: string[];
  /** Leases whose outcome a spooled row of this DB records (imported or still spooled). */
  leaseOutcomes: { leaseId: number; outcome: Outcome; notes: string }[];
}

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
}

/**
 * Dispatch reflections (error_pattern = 'orchestrator_dispatch'), newest
 * first, each with its improvement target. `outcome` filters on the outcome
 * in `observed_outcome`, `gapId` on the exact id in `intended_goal`. The DB is
 * opened read-only; a missing DB (or one without the tables) has no rows and
 * is not created. A DB that cannot be read throws a one-line error.
 *
 * @example
 * ```ts
 * const dir = Deno.makeTempDirSync();
 * queryReflections(`${dir}/none.db`, { limit: 10 }); // []
 * ```
 */
export function queryReflections(
  dbPath: string,
  filter: { limit: number; outcome?: string; gapId?: string },
): ReflectionRow[] {
  const { limit, outcome, gapId } = filter;
  if (!(limit > 0)) return [];
  try {
    Deno.statSync(dbPath);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw new Error(`cannot read reflections from ${dbPath}: ${oneLine(errorMessage(e))}`);
  }
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(dbPath, { readOnly: true, timeout: LOCK_WAIT_MS });
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
      rows.push({
        id,
        createdAt: text(raw.created_at),
        gapId: goal.startsWith(GOAL_PREFIX) ? goal.slice(GOAL_PREFIX.length) : goal,
        ...observed,
        outcomeClass: text(raw.outcome_class),
        directive: text(raw.directive),
        priority: text(raw.priority),
        scope: raw.scope === null ? null : text(raw.scope),
        notes: text(raw.notes),
      });
      if (rows.length >= limit) break;
    }
    return rows;
  } catch (e) {
    throw new Error(`cannot read reflections from ${dbPath}: ${oneLine(errorMessage(e))}`);
  } finally {
    db?.close();
  }
}

// ---------------------------------------------------------------------------
// Internals

/** Control characters and the Unicode line/paragraph separators. */
const LINE_BREAKERS = /[\p{Cc}\u2028\u2029]/gu;

/** The value with every control character replaced by a space. */
function oneLine(value: string): string {
  return String(value).replace(LINE_BREAKERS, " ");
}

/** The first line of notes, trimmed (the seed's `lines().next().trim()`). */
function firstLine(notes: string): string {
  return String(notes).split("\n", 1)[0].trim();
}

/** A count or a duration as the seed's unsigned integer. */
function wholeNumber(n: number): number {
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
}

/** `Some(N)` / `None`, as the seed's `{:?}` of an `Option<u32>`. */
function rustOption(n: number | undefined): string {
  return typeof n === "number" && Number.isFinite(n) ? `Some(${wholeNumber(n)})` : "None";
}

/** Now, as SQLite's `datetime('now')` writes it (UTC, `YYYY-MM-DD HH:MM:SS`). */
function sqliteNow(): string {
  return new Date().toISOString().slice(0, 19).replace("T", " ");
}

/** The absolute form of a path; the path itself when the cwd cannot be read. */
function absolute(path: string): string {
  try {
    return resolve(path);
  } catch {
    return path;
  }
}

function unique(paths: string[]): string[] {
  return [...new Set(paths)];
}

function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

function text(value: SQLOutputValue | undefined): string {
  if (value === null || value === undefined) return "";
  if (value instanceof Uint8Array) return new TextDecoder().decode(value);
  return String(value);
}

/** `SQLITE_BUSY` / `SQLITE_LOCKED`: worth waiting for. node:sqlite gives only the message. */
function isLockError(e: unknown): boolean {
  return /database (table |schema )?is locked/i.test(errorMessage(e));
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

// --- the DB ---------------------------------------------------------------

/** A lazily opened DB handle with its prepared statements. */
interface Store {
  /** Run `op` in the DB, waiting on locks up to `lockWaitMs`; never throws. */
  run(
    lockWaitMs: number,
    op: (db: Connection) => void,
  ): Promise<{ ok: true } | { ok: false; locked: boolean; reason: string }>;
  close(): void;
}

/** An open DB with the statements a reflection needs. */
interface Connection {
  db: DatabaseSync;
  insertReflection: StatementSync;
  insertTarget: StatementSync;
  findReflection: StatementSync;
}

function createStore(dbPath: string): Store {
  let conn: Connection | undefined;
  let handle: DatabaseSync | undefined;
  let busyMs = -1;

  /** Open (or reuse) the handle, with at most `sliceMs` of blocking on a lock. */
  function open(sliceMs: number): Connection {
    if (handle === undefined) {
      Deno.mkdirSync(dirname(dbPath), { recursive: true });
      handle = new DatabaseSync(dbPath);
      busyMs = -1;
    }
    if (busyMs !== sliceMs) {
      handle.exec(`PRAGMA busy_timeout = ${sliceMs}`);
      busyMs = sliceMs;
    }
    if (conn === undefined) {
      handle.exec("PRAGMA journal_mode = WAL");
      handle.exec(REFLECTION_SCHEMA);
      conn = {
        db: handle,
        insertReflection: handle.prepare(
          `INSERT INTO chump_reflections
             (intended_goal, observed_outcome, outcome_class, error_pattern, hypothesis, created_at)
           VALUES (?, ?, ?, ?, ?, COALESCE(?, datetime('now')))`,
        ),
        insertTarget: handle.prepare(
          `INSERT INTO chump_improvement_targets
             (reflection_id, directive, priority, scope, created_at)
           VALUES (?, ?, ?, ?, COALESCE(?, datetime('now')))`,
        ),
        findReflection: handle.prepare(
          `SELECT 1 AS found FROM chump_reflections
            WHERE error_pattern = ? AND intended_goal = ? AND observed_outcome = ?
              AND hypothesis = ? AND created_at = ? LIMIT 1`,
        ),
      };
    }
    return conn;
  }

  function close(): void {
    const h = handle;
    handle = undefined;
    conn = undefined;
    try {
      h?.close();
    } catch {
      // Already closed.
    }
  }

  return {
    async run(lockWaitMs, op) {
      const start = Date.now();
      for (;;) {
        const remaining = Math.max(0, lockWaitMs - (Date.now() - start));
        try {
          op(open(Math.min(BUSY_SLICE_MS, remaining)));
          return { ok: true };
        } catch (e) {
          if (!isLockError(e)) {
            // A broken handle (unopenable, corrupt, read-only, disk full):
            // drop it so the next write opens afresh, and do not wait.
            close();
            return { ok: false, locked: false, reason: oneLine(errorMessage(e)) };
          }
          const waited = Date.now() - start;
          if (waited >= lockWaitMs) {
            return {
              ok: false,
              locked: true,
              reason: `${oneLine(errorMessage(e))} (waited ${waited} ms)`,
            };
          }
          await sleep(Math.min(YIELD_MS, lockWaitMs - waited));
        }
      }
    },
    close,
  };
}

/** Both rows of one reflection in one transaction; `createdAt` overrides `datetime('now')`. */
function insertReflection(c: Connection, r: DispatchReflection, createdAt?: string): void {
  c.db.exec("BEGIN IMMEDIATE");
  try {
    const { lastInsertRowid } = c.insertReflection.run(
      GOAL_PREFIX + r.gapId,
      observedOutcome(r),
      outcomeClass(r.outcome),
      DISPATCH_ERROR_PATTERN,
      r.notes,
      createdAt ?? null,
    );
    c.insertTarget.run(
      lastInsertRowid,
      directive(r),
      targetPriority(r.outcome),
      r.domain,
      createdAt ?? null,
    );
    c.db.exec("COMMIT");
  } catch (e) {
    try {
      if (c.db.isTransaction) c.db.exec("ROLLBACK");
    } catch {
      // SQLite already rolled back.
    }
    throw e;
  }
}

/** Whether a spooled row is already in the DB (an import that crashed before its rewrite). */
function alreadyImported(c: Connection, r: DispatchReflection, createdAt: string): boolean {
  return c.findReflection.get(
    DISPATCH_ERROR_PATTERN,
    GOAL_PREFIX + r.gapId,
    observedOutcome(r),
    r.notes,
    createdAt,
  ) !== undefined;
}

// --- the spool ------------------------------------------------------------

/** A reflection as one JSON line: its fields, the time it failed, the DB it was meant for. */
function spoolLine(r: DispatchReflection, createdAt: string, db: string): string {
  return JSON.stringify({
    gapId: r.gapId,
    effort: r.effort,
    domain: r.domain,
    outcome: r.outcome,
    durationS: r.durationS,
    parallelSiblings: r.parallelSiblings,
    prNumber: r.prNumber ?? null,
    notes: r.notes,
    leaseId: r.leaseId ?? null,
    created_at: createdAt,
    db,
  });
}

/** A spool line back as a reflection, or `undefined` when it is not one. */
function parseSpoolLine(
  line: string,
): { reflection: DispatchReflection; createdAt: string; db: string } | undefined {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
  const strings = ["gapId", "effort", "domain", "notes", "created_at", "db"];
  if (!strings.every((k) => typeof v[k] === "string")) return undefined;
  if (!OUTCOMES.includes(v.outcome as Outcome)) return undefined;
  if (typeof v.durationS !== "number" || typeof v.parallelSiblings !== "number") return undefined;
  if (v.prNumber !== undefined && v.prNumber !== null && typeof v.prNumber !== "number") {
    return undefined;
  }
  const leaseId = typeof v.leaseId === "number" && Number.isInteger(v.leaseId)
    ? v.leaseId
    : undefined;
  const createdAt = v.created_at as string;
  if (!/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/.test(createdAt)) return undefined;
  return {
    reflection: {
      gapId: v.gapId as string,
      effort: v.effort as string,
      domain: v.domain as string,
      outcome: v.outcome as Outcome,
      durationS: v.durationS,
      parallelSiblings: v.parallelSiblings,
      prNumber: typeof v.prNumber === "number" ? v.prNumber : undefined,
      notes: v.notes as string,
      leaseId,
    },
    createdAt,
    db: v.db as string,
  };
}

/** Open `path` and take its advisory lock, retrying while an importer replaces the file. */
async function lockedOpen(
  path: string,
  options: Deno.OpenOptions,
): Promise<Deno.FsFile> {
  for (let attempt = 1;; attempt++) {
    const file = await Deno.open(path, options);
    try {
      await file.lock(true);
      if (await isCurrent(file, path)) return file;
    } catch (e) {
      file.close();
      throw e;
    }
    file.close();
    if (attempt >= SPOOL_APPEND_ATTEMPTS) throw new Error(`${path} keeps being replaced`);
    await sleep(attempt);
  }
}

/** Whether the open file is still the one at `path` (not replaced or removed meanwhile). */
async function isCurrent(file: Deno.FsFile, path: string): Promise<boolean> {
  const mine = await file.stat();
  if (mine.ino === null) return true; // no inodes (Windows): nothing to compare
  try {
    const now = await Deno.stat(path);
    return now.ino === mine.ino && now.dev === mine.dev;
  } catch {
    return false;
  }
}

async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  let done = 0;
  while (done < data.length) done += await file.write(data.subarray(done));
}

/** Append one line to a spool, under its lock (mode 0600: notes may hold secrets). */
async function appendToSpool(path: string, line: string): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const file = await lockedOpen(path, { append: true, create: true, mode: 0o600 });
  try {
    await writeAll(file, new TextEncoder().encode(line + "\n"));
  } finally {
    file.close();
  }
}

/** What becomes of one spool line. */
type Verdict = "drop" | "keep" | "foreign" | "bad";

/**
 * Decide each line of a spool under its lock (`drop` it, `keep` it or leave a
 * `foreign` one, or set it aside as `bad`), then replace the file atomically
 * with the lines kept, or remove it when none are left. `undefined` when the
 * spool does not exist.
 */
async function rewriteSpool(
  path: string,
  decide: (line: string) => Promise<Verdict>,
): Promise<Record<Verdict, number> | undefined> {
  let file: Deno.FsFile;
  try {
    file = await lockedOpen(path, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  try {
    const lines = (await Deno.readTextFile(path)).split("\n").filter((l) => l.trim() !== "");
    const counts: Record<Verdict, number> = { drop: 0, keep: 0, foreign: 0, bad: 0 };
    const kept: string[] = [];
    const bad: string[] = [];
    for (const line of lines) {
      const verdict = await decide(line);
      counts[verdict]++;
      if (verdict === "keep" || verdict === "foreign") kept.push(line);
      if (verdict === "bad") bad.push(line);
    }
    if (bad.length > 0) {
      await Deno.writeTextFile(`${path}.bad`, bad.map((l) => l + "\n").join(""), {
        append: true,
        mode: 0o600,
      });
    }
    if (lines.length === 0) {
      // Nothing to do. An empty spool may be one a writer has just created
      // and is about to lock: removing it would only make that writer retry.
    } else if (kept.length === 0) {
      await Deno.remove(path);
    } else if (kept.length < lines.length) {
      const tmp = `${path}.${Deno.pid}.tmp`;
      await Deno.writeTextFile(tmp, kept.map((l) => l + "\n").join(""), { mode: 0o600 });
      await Deno.rename(tmp, path);
    }
    return counts;
  } finally {
    file.close();
  }
}
