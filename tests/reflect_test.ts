import { armOfNotes, decodeNotes, encodeNotes } from "../lib/store/notes.ts";
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { DatabaseSync, type SQLInputValue } from "node:sqlite";
import { join } from "node:path";
import {
  directive,
  type DispatchReflection,
  gapDomain,
  observedOutcome,
  outcomeClass,
  REFLECTION_SCHEMA,
  targetPriority,
} from "../lib/store/reflection.ts";
import { createSqliteWriter, describeReceipt } from "../lib/store/writer.ts";
import { createMemoryWriter, createNoopWriter } from "../testkit/writers.ts";
import { importSpool, spoolPaths } from "../lib/store/spool.ts";
import { queryReflections } from "../lib/store/query.ts";
import { openLedger } from "../lib/store/ledger.ts";
import { processLiveness } from "../lib/process/liveness.ts";
import { holdLock } from "./_lock.ts";

/** CONTRACT §5, copied as written there. */
const CONTRACT_SCHEMA = `CREATE TABLE IF NOT EXISTS chump_reflections (
  id INTEGER PRIMARY KEY AUTOINCREMENT, episode_id INTEGER, task_id INTEGER,
  intended_goal TEXT NOT NULL DEFAULT '', observed_outcome TEXT NOT NULL DEFAULT '',
  outcome_class TEXT NOT NULL DEFAULT 'failure', error_pattern TEXT,
  hypothesis TEXT NOT NULL DEFAULT '', surprisal_at_reflect REAL,
  confidence_at_reflect REAL, created_at TEXT NOT NULL DEFAULT (datetime('now')));
CREATE TABLE IF NOT EXISTS chump_improvement_targets (
  id INTEGER PRIMARY KEY AUTOINCREMENT, reflection_id INTEGER NOT NULL,
  directive TEXT NOT NULL, priority TEXT NOT NULL DEFAULT 'medium', scope TEXT,
  actioned_as TEXT, created_at TEXT NOT NULL DEFAULT (datetime('now')));`;

/** The seed's statements, in the seed's own layout (an existing Chump DB has these). */
const SEED_SCHEMA = `CREATE TABLE IF NOT EXISTS chump_reflections (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                episode_id INTEGER,
                task_id INTEGER,
                intended_goal TEXT NOT NULL DEFAULT '',
                observed_outcome TEXT NOT NULL DEFAULT '',
                outcome_class TEXT NOT NULL DEFAULT 'failure',
                error_pattern TEXT,
                hypothesis TEXT NOT NULL DEFAULT '',
                surprisal_at_reflect REAL,
                confidence_at_reflect REAL,
                created_at TEXT NOT NULL DEFAULT (datetime('now'))
             );
             CREATE TABLE IF NOT EXISTS chump_improvement_targets (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                reflection_id INTEGER NOT NULL,
                directive TEXT NOT NULL,
                priority TEXT NOT NULL DEFAULT 'medium',
                scope TEXT,
                actioned_as TEXT,
                created_at TEXT NOT NULL DEFAULT (datetime('now'))
             );`;

const SQLITE_TIME = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/;
const REFLECT_TS = new URL("../lib/store/writer.ts", import.meta.url).href;

function reflection(fields: Partial<DispatchReflection> = {}): DispatchReflection {
  return {
    gapId: "AUTO-013",
    effort: "m",
    domain: "auto",
    outcome: "shipped",
    durationS: 90,
    parallelSiblings: 1,
    prNumber: 12,
    notes: "backend=claude",
    ...fields,
  };
}

/** A scratch directory, removed (after making it writable again) on dispose. */
async function scratch(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "chump-reflect-" });
  return {
    path,
    async [Symbol.asyncDispose]() {
      await new Deno.Command("chmod", { args: ["-R", "u+rwx", path] }).output().catch(() => {});
      await Deno.remove(path, { recursive: true }).catch(() => {});
    },
  };
}

/** Rows of one query, through a connection of its own. */
function sql(dbPath: string, query: string, ...params: SQLInputValue[]) {
  const db = new DatabaseSync(dbPath);
  try {
    return db.prepare(query).all(...params);
  } finally {
    db.close();
  }
}

function count(dbPath: string, table: string): number {
  return Number(sql(dbPath, `SELECT count(*) AS n FROM ${table}`)[0].n);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

async function jsonLines(path: string): Promise<Record<string, unknown>[]> {
  const text = await Deno.readTextFile(path);
  return text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
}

/** Whitespace-insensitive form of a CREATE statement. */
function normalise(statement: string): string {
  return statement.replace(/\s+/g, " ").replace(/\s*([(),;])\s*/g, "$1").replace(/;$/, "").trim();
}

/** A path nobody can create, even root: it sits under a regular file. */
async function underAFile(
  dir: string,
  name: string,
): Promise<{ path: string; fix(): Promise<void> }> {
  const blocker = join(dir, `${name}-blocker`);
  await Deno.writeTextFile(blocker, "");
  return { path: join(blocker, "sub", name), fix: () => Deno.remove(blocker) };
}

/**
 * A DB path in a directory the writer cannot write: chmod 555 for a normal
 * user; as root (where modes do not stop writes) a path under a regular file.
 */
async function unwritableDb(dir: string): Promise<{ path: string; fix(): Promise<void> }> {
  if (Deno.uid() === 0) return await underAFile(dir, "x.db");
  const ro = join(dir, "ro");
  await Deno.mkdir(ro);
  await Deno.chmod(ro, 0o555);
  return { path: join(ro, "x.db"), fix: () => Deno.chmod(ro, 0o755) };
}

// --- the strings ------------------------------------------------------------

Deno.test("gap domain is the lowercased prefix before the first '-', else unknown", () => {
  deepEqual(
    ["AUTO-013", "EVAL-027c", "PRODUCT-006", "infra-a-b", "noprefix", "-x", ""].map(gapDomain),
    ["auto", "eval", "product", "infra", "unknown", "unknown", "unknown"],
  );
});

Deno.test("observed_outcome and directive have the contract's exact shape for every outcome", () => {
  const base = reflection({ durationS: 1200, parallelSiblings: 3 });
  const cases = [
    ["shipped", 12, "pr=Some(12)", "pr_number=Some(12)"],
    ["ci_failed", 7, "pr=Some(7)", "pr_number=Some(7)"],
    ["stalled", undefined, "pr=None", "pr_number=None"],
    ["killed", undefined, "pr=None", "pr_number=None"],
  ] as const;
  for (const [outcome, prNumber, pr, prNumberField] of cases) {
    const r = { ...base, outcome, prNumber };
    equal(observedOutcome(r), `outcome=${outcome} duration_s=1200 ${pr}`);
    equal(
      directive(r),
      `dispatched gap=AUTO-013 effort=m domain=auto outcome=${outcome} duration_s=1200 ` +
        `parallel_siblings=3 ${prNumberField} notes=backend=claude`,
    );
  }
});

Deno.test("only shipped is a success; priority is high for killed/ci_failed, medium for stalled, low for shipped", () => {
  deepEqual(
    (["shipped", "ci_failed", "stalled", "killed"] as const).map((o) => [
      outcomeClass(o),
      targetPriority(o),
    ]),
    [["success", "low"], ["failure", "high"], ["failure", "medium"], ["failure", "high"]],
  );
});

Deno.test("the directive carries the first line of notes, trimmed, and stays one line", () => {
  const r = reflection({ notes: "  exit code 1  \nbackend=claude\nERROR x" });
  equal(directive(r).split("notes=")[1], "exit code 1");
  equal(directive(reflection({ notes: "" })).endsWith(" notes="), true);
  const odd = directive(reflection({ gapId: "A-1\nB\r2", effort: "m\t", notes: "a\u2028b\rc\nd" }));
  ok(!/[\p{Cc}\u2028\u2029]/u.test(odd), odd);
  match(odd, /^dispatched gap=A-1 B 2 effort=m {2}domain=auto /);
  match(odd, / notes=a b c$/);
});

Deno.test("durations and counts are written as whole non-negative numbers", () => {
  const r = reflection({ durationS: 61.9, parallelSiblings: -1, prNumber: 12 });
  equal(observedOutcome(r), "outcome=shipped duration_s=61 pr=Some(12)");
  match(directive(r), / duration_s=61 parallel_siblings=0 /);
});

Deno.test("notes: the reason if any, then backend=<label>, then the stderr tail, one a line", () => {
  equal(
    encodeNotes({ reason: "exit code 1", backend: "claude", tail: ["ERROR x", "WARN y"] }),
    "exit code 1\nbackend=claude\nERROR x\nWARN y",
  );
  equal(encodeNotes({ backend: "chump-local" }), "backend=chump-local");
  equal(encodeNotes({ reason: "", backend: "claude", tail: ["PANIC"] }), "backend=claude\nPANIC");
});

Deno.test("notes: routing facts go after backend= in one order and read back the same", () => {
  const notes = encodeNotes({
    reason: "exit code 1",
    backend: "chump-local",
    model: "m1",
    provider: "GROQ",
    attempt: 2,
    class: "rate_limited",
    lessons: 0,
    tail: ["ERROR: 429", "  indented=1"],
  });
  equal(
    notes,
    "exit code 1\nbackend=chump-local\nmodel=m1\nprovider=GROQ\nattempt=2\n" +
      "class=rate_limited\nlessons=0\nERROR: 429\n  indented=1",
  );
  deepEqual(decodeNotes(notes), {
    backend: "chump-local",
    model: "m1",
    provider: "GROQ",
    attempt: 2,
    class: "rate_limited",
    lessons: 0,
    text: ["exit code 1", "ERROR: 429"],
  });
  equal(armOfNotes(notes), "chump-local/m1@GROQ");
  equal(armOfNotes("exit code 1"), undefined);
});

Deno.test("notes: a dispatch's cost facts go after the routing facts and read back the same; the lease gets them as columns", async () => {
  const cost = {
    usd: 0.78,
    tokensIn: 1200,
    tokensOut: 340,
    cacheRead: 50000,
    cacheWrite: 2000,
    turns: 7,
    session: "9b2f3c1e",
  };
  const notes = encodeNotes({
    reason: "exit code 1",
    backend: "claude",
    class: "max_turns",
    cost,
    tail: ["ERROR: x"],
  });
  equal(
    notes,
    "exit code 1\nbackend=claude\nclass=max_turns\ncost_usd=0.7800\ntokens_in=1200\n" +
      "tokens_out=340\ntokens_cache_read=50000\ntokens_cache_write=2000\nturns=7\n" +
      "session=9b2f3c1e\nERROR: x",
  );
  deepEqual(decodeNotes(notes).cost, cost);
  // Unknown cost (no price for the model): the counts, no cost_usd line.
  const unknown = encodeNotes({ backend: "claude", cost: { ...cost, usd: undefined } });
  equal(unknown.includes("cost_usd="), false);
  equal(decodeNotes(unknown).cost?.usd, undefined);
  // A fact named like an Object property is not a cost fact.
  equal(decodeNotes("backend=x\nconstructor=1\ntoString=2").cost, undefined);
  // The lease's cost columns are filled from the notes when the reflection ends it.
  const dir = await Deno.makeTempDir();
  const db = join(dir, "chump_memory.db");
  const opened = openLedger(db, processLiveness());
  ok(opened.ok);
  const ledger = opened.value;
  const begun = await ledger.begin({
    gapId: "A-1",
    repoRoot: dir,
    branch: "b",
    worktree: join(dir, "w"),
    baseCommit: "",
    effort: "s",
    backend: "claude",
    agentFormat: "claude-stream",
    model: "claude-sonnet-4-5",
  });
  ok(begun.ok && begun.value.begun);
  const leaseId = begun.value.leaseId;
  await ledger.noteCost(leaseId, { ...cost, usd: 0.5 });
  equal((await ledger.spentByOthers(0)).ok, true);
  const writer = createSqliteWriter(db);
  await writer.write({
    gapId: "A-1",
    effort: "s",
    domain: "a",
    outcome: "killed",
    durationS: 3,
    parallelSiblings: 0,
    notes,
    leaseId,
    leaseGeneration: 0,
  });
  const read = new DatabaseSync(db, { readOnly: true });
  const row = read.prepare(
    "SELECT agent_format, model, cost_usd, tokens_in, tokens_out, tokens_cache_read, " +
      "tokens_cache_write, turns, session_id FROM chump_dispatch_leases WHERE id = ?",
  ).get(leaseId);
  read.close();
  deepEqual({ ...row }, {
    agent_format: "claude-stream",
    model: "claude-sonnet-4-5",
    cost_usd: 0.78,
    tokens_in: 1200,
    tokens_out: 340,
    tokens_cache_read: 50000,
    tokens_cache_write: 2000,
    turns: 7,
    session_id: "9b2f3c1e",
  });
  ledger.close();
  writer.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("the memory writer keeps copies; the noop writer discards", async () => {
  const memory = createMemoryWriter();
  const r = reflection();
  deepEqual(await memory.write(r), { stored: "memory" });
  r.gapId = "CHANGED-1";
  deepEqual(memory.rows, [reflection()]);
  deepEqual(await createNoopWriter().write(r), { stored: "discarded" });
  equal(describeReceipt({ stored: "db" }, { gapId: "A-1", leaseId: 1 }), undefined);
});

// --- SQLite -----------------------------------------------------------------

Deno.test("REFLECTION_SCHEMA is the contract's text and SQLite keeps it byte for byte", async () => {
  equal(REFLECTION_SCHEMA.trim(), CONTRACT_SCHEMA);
  await using dir = await scratch();
  const db = join(dir.path, "sessions", "chump_memory.db");
  const w = createSqliteWriter(db);
  deepEqual(await w.write(reflection()), { stored: "db" });
  w.close();
  const stored = sql(
    db,
    `SELECT sql FROM sqlite_master WHERE type = 'table'
        AND name IN ('chump_reflections', 'chump_improvement_targets') ORDER BY rowid`,
  )
    .map((r) => String(r.sql));
  const expected = CONTRACT_SCHEMA.split(";\n").map((s) =>
    s.replace("CREATE TABLE IF NOT EXISTS", "CREATE TABLE").replace(/;$/, "")
  );
  deepEqual(stored, expected);
  deepEqual(stored.map(normalise), expected.map(normalise));
});

Deno.test("a DB created by the seed has the same columns and takes our rows", async () => {
  await using dir = await scratch();
  const seedDb = join(dir.path, "seed.db");
  const ours = join(dir.path, "ours.db");
  const seed = new DatabaseSync(seedDb);
  seed.exec(SEED_SCHEMA);
  seed.close();
  for (const path of [seedDb, ours]) {
    const w = createSqliteWriter(path);
    deepEqual(await w.write(reflection()), { stored: "db" });
    w.close();
  }
  for (const table of ["chump_reflections", "chump_improvement_targets"]) {
    deepEqual(sql(seedDb, `PRAGMA table_info(${table})`), sql(ours, `PRAGMA table_info(${table})`));
    const text = (path: string) =>
      normalise(String(sql(path, "SELECT sql FROM sqlite_master WHERE name = ?", table)[0].sql));
    equal(text(seedDb), text(ours));
  }
  equal(count(seedDb, "chump_improvement_targets"), 1);
});

Deno.test("a shipped and a killed dispatch are stored exactly as the contract says", async () => {
  await using dir = await scratch();
  const db = join(dir.path, "sessions", "chump_memory.db");
  const w = createSqliteWriter(db);
  deepEqual(await w.write(reflection()), { stored: "db" });
  const killed = reflection({
    gapId: "EVAL-027c",
    effort: "s",
    domain: gapDomain("EVAL-027c"),
    outcome: "killed",
    durationS: 2400,
    parallelSiblings: 0,
    prNumber: undefined,
    notes: "exit code 1\nbackend=claude\nERROR x",
  });
  deepEqual(await w.write(killed), { stored: "db" });
  w.close();

  const reflections = sql(db, "SELECT * FROM chump_reflections ORDER BY id");
  const targets = sql(db, "SELECT * FROM chump_improvement_targets ORDER BY id");
  for (const row of [...reflections, ...targets]) match(String(row.created_at), SQLITE_TIME);
  const strip = (rows: typeof reflections) =>
    rows.map(({ created_at: _, ...rest }) => ({ ...rest }));
  deepEqual(strip(reflections), [
    {
      id: 1,
      episode_id: null,
      task_id: null,
      intended_goal: "ship gap AUTO-013",
      observed_outcome: "outcome=shipped duration_s=90 pr=Some(12)",
      outcome_class: "success",
      error_pattern: "orchestrator_dispatch",
      hypothesis: "backend=claude",
      surprisal_at_reflect: null,
      confidence_at_reflect: null,
    },
    {
      id: 2,
      episode_id: null,
      task_id: null,
      intended_goal: "ship gap EVAL-027c",
      observed_outcome: "outcome=killed duration_s=2400 pr=None",
      outcome_class: "failure",
      error_pattern: "orchestrator_dispatch",
      hypothesis: "exit code 1\nbackend=claude\nERROR x",
      surprisal_at_reflect: null,
      confidence_at_reflect: null,
    },
  ]);
  deepEqual(strip(targets), [
    {
      id: 1,
      reflection_id: 1,
      directive:
        "dispatched gap=AUTO-013 effort=m domain=auto outcome=shipped duration_s=90 parallel_siblings=1 pr_number=Some(12) notes=backend=claude",
      priority: "low",
      scope: "auto",
      actioned_as: null,
    },
    {
      id: 2,
      reflection_id: 2,
      directive:
        "dispatched gap=EVAL-027c effort=s domain=eval outcome=killed duration_s=2400 parallel_siblings=0 pr_number=None notes=exit code 1",
      priority: "high",
      scope: "eval",
      actioned_as: null,
    },
  ]);
  equal(String(sql(db, "PRAGMA journal_mode")[0].journal_mode), "wal");
});

Deno.test("both rows in one transaction: a failing target insert leaves no orphan and spools the row", async () => {
  await using dir = await scratch();
  const db = join(dir.path, "chump_memory.db");
  const options = { lockWaitMs: 60_000, fallbackSpoolPath: join(dir.path, "fallback.jsonl") };
  const w = createSqliteWriter(db, options);
  deepEqual(await w.write(reflection({ gapId: "A-1" })), { stored: "db" });
  sql(
    db,
    "CREATE TRIGGER no_targets BEFORE INSERT ON chump_improvement_targets BEGIN SELECT RAISE(ABORT, 'x'); END",
  );

  const receipt = await w.write(
    reflection({ gapId: "B-2", outcome: "killed", prNumber: undefined }),
  );
  equal(receipt.stored, "spool");
  if (receipt.stored !== "spool") return;
  equal(receipt.path, `${db}.spool.jsonl`);
  match(receipt.reason, /\bx\b/);
  equal(count(db, "chump_reflections"), 1, "no orphan reflection");
  equal(count(db, "chump_improvement_targets"), 1);
  const [spooled] = await jsonLines(receipt.path);
  deepEqual({ ...spooled, created_at: "T" }, {
    ...reflection({ gapId: "B-2", outcome: "killed" }),
    prNumber: null,
    leaseId: null,
    created_at: "T",
    db,
  });

  sql(db, "DROP TRIGGER no_targets");
  deepEqual(
    await w.write(reflection({ gapId: "C-3" })),
    { stored: "db" },
    "the writer keeps going",
  );
  w.close();
  deepEqual(await importSpool(db, options), {
    imported: 1,
    left: 0,
    otherDb: 0,
    bad: 0,
    paths: [receipt.path],
    errors: [],
    leasesEnded: [],
  });
  equal(await exists(receipt.path), false);
  deepEqual(
    sql(
      db,
      `SELECT r.intended_goal AS goal, t.directive AS directive FROM chump_reflections r
         JOIN chump_improvement_targets t ON t.reflection_id = r.id ORDER BY r.id`,
    ).map((r) => String(r.goal)),
    ["ship gap A-1", "ship gap C-3", "ship gap B-2"],
  );
});

Deno.test("a lock held past lockWaitMs spools the row; importSpool moves it in with its original time", async () => {
  await using dir = await scratch();
  const db = join(dir.path, "chump_memory.db");
  const options = { lockWaitMs: 300, fallbackSpoolPath: join(dir.path, "fallback.jsonl") };
  const w = createSqliteWriter(db, options);
  deepEqual(await w.write(reflection({ gapId: "A-1" })), { stored: "db" });

  const holder = await holdLock(db);
  let receipt;
  try {
    receipt = await w.write(reflection({ gapId: "B-2", outcome: "stalled", prNumber: undefined }));
  } finally {
    await holder.release();
  }
  equal(receipt.stored, "spool");
  if (receipt.stored !== "spool") return;
  equal(receipt.path, `${db}.spool.jsonl`);
  match(receipt.reason, /database is locked \(waited \d+ ms\)/);
  match(
    describeReceipt(receipt, { gapId: "B-2", leaseId: null }) ?? "",
    /^warning: reflection for B-2 spooled to .*chump_memory\.db\.spool\.jsonl /,
  );
  const [spooled] = await jsonLines(receipt.path);
  match(String(spooled.created_at), SQLITE_TIME);
  equal(count(db, "chump_reflections"), 1);

  deepEqual(await importSpool(db, options), {
    imported: 1,
    left: 0,
    otherDb: 0,
    bad: 0,
    paths: [receipt.path],
    errors: [],
    leasesEnded: [],
  });
  equal(await exists(receipt.path), false);
  const rows = sql(
    db,
    `SELECT r.created_at AS r_at, t.created_at AS t_at, t.priority AS priority
       FROM chump_reflections r JOIN chump_improvement_targets t ON t.reflection_id = r.id
      WHERE r.intended_goal = 'ship gap B-2'`,
  );
  deepEqual(rows, [{ r_at: spooled.created_at, t_at: spooled.created_at, priority: "medium" }]);
  deepEqual(await w.write(reflection({ gapId: "C-3" })), { stored: "db" });
  w.close();
});

Deno.test("a lock released within lockWaitMs: the row lands in the DB", async () => {
  await using dir = await scratch();
  const db = join(dir.path, "chump_memory.db");
  const w = createSqliteWriter(db, { lockWaitMs: 60_000 });
  deepEqual(await w.write(reflection({ gapId: "A-1" })), { stored: "db" });
  const holder = await holdLock(db);
  const pending = w.write(reflection({ gapId: "B-2" }));
  await holder.release();
  deepEqual(await pending, { stored: "db" });
  w.close();
  equal(count(db, "chump_reflections"), 2);
  equal(count(db, "chump_improvement_targets"), 2);
});

Deno.test("unwritable DB -> spool; unwritable spool -> fallback; both -> stderr; fixed -> DB again", async () => {
  await using dir = await scratch();
  const bad = await unwritableDb(dir.path);
  const spoolPath = join(dir.path, "spools", "reflections.jsonl");
  const fallbackSpoolPath = join(dir.path, "fallback.jsonl");
  const badSpool = await underAFile(dir.path, "spool.jsonl");
  const badFallback = await underAFile(dir.path, "fallback.jsonl");
  const lines: string[] = [];
  const stderr = (line: string) => lines.push(line);

  // lockWaitMs is huge: a non-lock failure must not wait for it.
  const toSpool = createSqliteWriter(bad.path, {
    lockWaitMs: 60_000,
    spoolPath,
    fallbackSpoolPath,
  });
  const first = await toSpool.write(reflection({ gapId: "A-1" }));
  deepEqual({ ...first, reason: "" }, { stored: "spool", path: spoolPath, reason: "" });

  const toFallback = createSqliteWriter(bad.path, {
    lockWaitMs: 60_000,
    spoolPath: badSpool.path,
    fallbackSpoolPath,
    stderr,
  });
  const second = await toFallback.write(reflection({ gapId: "B-2" }));
  equal(second.stored, "spool");
  if (second.stored === "spool") {
    equal(second.path, fallbackSpoolPath);
    ok(second.reason.includes(`spool ${badSpool.path}: `), second.reason);
  }

  const toStderr = createSqliteWriter(bad.path, {
    lockWaitMs: 60_000,
    spoolPath: badSpool.path,
    fallbackSpoolPath: badFallback.path,
    stderr,
  });
  const third = await toStderr.write(reflection({ gapId: "C-3" }));
  equal(third.stored, "stderr");
  equal(lines.length, 1);
  ok(lines[0].startsWith("REFLECTION-NOT-STORED: {"), lines[0]);
  const printed = JSON.parse(lines[0].slice("REFLECTION-NOT-STORED: ".length));
  equal(printed.gapId, "C-3");
  equal(printed.db, bad.path);
  match(printed.created_at, SQLITE_TIME);
  ok(!third.reason.includes("\n"));

  await bad.fix();
  deepEqual(await toStderr.write(reflection({ gapId: "D-4" })), { stored: "db" });
  for (const w of [toSpool, toFallback, toStderr]) w.close();
  equal(count(bad.path, "chump_reflections"), 1);

  const imported = await importSpool(bad.path, { spoolPath, fallbackSpoolPath });
  deepEqual(imported, {
    imported: 2,
    left: 0,
    otherDb: 0,
    bad: 0,
    paths: [spoolPath, fallbackSpoolPath],
    errors: [],
    leasesEnded: [],
  });
  deepEqual(
    sql(bad.path, "SELECT intended_goal FROM chump_reflections ORDER BY id").map((r) =>
      r.intended_goal
    ),
    ["ship gap D-4", "ship gap A-1", "ship gap B-2"],
  );
});

Deno.test("a corrupt DB file spools; once replaced, the same writer writes to the DB", async () => {
  await using dir = await scratch();
  const db = join(dir.path, "chump_memory.db");
  await Deno.writeTextFile(db, "this is not a database, just some text long enough ".repeat(40));
  const w = createSqliteWriter(db, {
    lockWaitMs: 60_000,
    fallbackSpoolPath: join(dir.path, "f.jsonl"),
  });
  const receipt = await w.write(reflection());
  equal(receipt.stored, "spool");
  if (receipt.stored === "spool") match(receipt.reason, /not a database/);
  await Deno.remove(db);
  deepEqual(await w.write(reflection()), { stored: "db" });
  w.close();
  w.close();
});

Deno.test("importSpool sets malformed lines aside, leaves other DBs' rows, and never imports a row twice", async () => {
  await using dir = await scratch();
  const db = join(dir.path, "chump_memory.db");
  const { spoolPath } = spoolPaths(db);
  const fallbackSpoolPath = join(dir.path, "fallback.jsonl");
  const row = (gapId: string, dbPath = db) =>
    JSON.stringify({ ...reflection({ gapId }), created_at: "2026-04-19 10:00:00", db: dbPath });
  await Deno.writeTextFile(
    spoolPath,
    [row("A-1"), "not json {", JSON.stringify({ gapId: 1 }), row("A-1"), ""].join("\n"),
  );
  const foreign = row("Z-9", join(dir.path, "other.db"));
  await Deno.writeTextFile(fallbackSpoolPath, [foreign, row("B-2"), ""].join("\n"));

  deepEqual(await importSpool(db, { fallbackSpoolPath }), {
    imported: 3,
    left: 0,
    otherDb: 1,
    bad: 2,
    paths: [spoolPath, fallbackSpoolPath],
    errors: [],
    leasesEnded: [],
  });
  deepEqual(
    sql(
      db,
      `SELECT r.intended_goal AS goal, r.created_at AS r_at, t.created_at AS t_at
         FROM chump_reflections r JOIN chump_improvement_targets t ON t.reflection_id = r.id ORDER BY r.id`,
    ),
    [
      { goal: "ship gap A-1", r_at: "2026-04-19 10:00:00", t_at: "2026-04-19 10:00:00" },
      { goal: "ship gap B-2", r_at: "2026-04-19 10:00:00", t_at: "2026-04-19 10:00:00" },
    ],
  );
  equal(await exists(spoolPath), false);
  equal(await Deno.readTextFile(`${spoolPath}.bad`), 'not json {\n{"gapId":1}\n');
  equal(await Deno.readTextFile(fallbackSpoolPath), foreign + "\n");
  deepEqual(await importSpool(db, { fallbackSpoolPath }), {
    imported: 0,
    left: 0,
    otherDb: 1,
    bad: 0,
    paths: [fallbackSpoolPath],
    errors: [],
    leasesEnded: [],
  });
});

Deno.test("importSpool never throws: a spool it cannot read stays as it was and is named", async () => {
  await using dir = await scratch();
  const db = join(dir.path, "chump_memory.db");
  const spoolPath = join(dir.path, "spool-is-a-dir");
  await Deno.mkdir(spoolPath);
  const result = await importSpool(db, { spoolPath, fallbackSpoolPath: join(dir.path, "f.jsonl") });
  deepEqual({ ...result, errors: result.errors.length }, {
    imported: 0,
    left: 0,
    otherDb: 0,
    bad: 0,
    paths: [spoolPath],
    errors: 1,
    leasesEnded: [],
  });
  ok(result.errors[0].startsWith(`${spoolPath}: `), result.errors[0]);
  ok((await Deno.stat(spoolPath)).isDirectory);
});

Deno.test("the default fallback spool lives in the temp dir, named after the DB", () => {
  const { spoolPath, fallbackSpoolPath } = spoolPaths("/repo/sessions/chump_memory.db");
  equal(spoolPath, "/repo/sessions/chump_memory.db.spool.jsonl");
  match(fallbackSpoolPath, /[\\/]chump-orchestrator-spool-[0-9a-f]{8}\.jsonl$/);
  equal(spoolPaths("/repo/sessions/chump_memory.db").fallbackSpoolPath, fallbackSpoolPath);
  ok(spoolPaths("/other/chump_memory.db").fallbackSpoolPath !== fallbackSpoolPath);
});

Deno.test("4 writer processes x 250 rows into one DB: 1000 rows, none lost", async () => {
  await using dir = await scratch();
  const db = join(dir.path, "sessions", "chump_memory.db");
  const fallbackSpoolPath = join(dir.path, "fallback.jsonl");
  // Each process prints "ready" and waits for a byte on stdin, so all four
  // open the (new) DB and write at the same moment.
  const script = (p: number) =>
    `import { createSqliteWriter } from ${JSON.stringify(REFLECT_TS)};
console.log("ready");
await Deno.stdin.read(new Uint8Array(1));
const w = createSqliteWriter(${JSON.stringify(db)}, { fallbackSpoolPath: ${
      JSON.stringify(fallbackSpoolPath)
    } });
const counts = {};
for (let i = 0; i < 250; i++) {
  const r = await w.write({ gapId: "P${p}-" + i, effort: "s", domain: "p${p}", outcome: "shipped",
    durationS: i, parallelSiblings: 3, prNumber: i, notes: "backend=claude" });
  counts[r.stored] = (counts[r.stored] ?? 0) + 1;
}
w.close();
console.log(JSON.stringify(counts));`;
  const children = [0, 1, 2, 3].map((p) =>
    new Deno.Command(Deno.execPath(), {
      args: ["eval", script(p)],
      cwd: dir.path,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn()
  );
  const errors = children.map((c) => new Response(c.stderr).text());
  const readers = children.map((c) => c.stdout.pipeThrough(new TextDecoderStream()).getReader());
  const outs = children.map(() => "");
  const readUntil = async (i: number, done: (out: string) => boolean) => {
    while (!done(outs[i])) {
      const chunk = await readers[i].read();
      if (chunk.done) return;
      outs[i] += chunk.value;
    }
  };
  await Promise.all(children.map((_, i) => readUntil(i, (out) => out.includes("ready\n"))));
  for (const child of children) {
    const stdin = child.stdin.getWriter();
    await stdin.write(new Uint8Array([10]));
    await stdin.close();
  }
  await Promise.all(children.map((_, i) => readUntil(i, () => false)));
  const stored: Record<string, number> = {};
  for (const [i, child] of children.entries()) {
    const status = await child.status;
    equal(status.code, 0, await errors[i]);
    await errors[i];
    const counts: Record<string, number> = JSON.parse(outs[i].replace("ready\n", ""));
    for (const [k, v] of Object.entries(counts)) stored[k] = (stored[k] ?? 0) + v;
  }
  let spooled = 0;
  for (const path of [`${db}.spool.jsonl`, fallbackSpoolPath]) {
    if (await exists(path)) spooled += (await jsonLines(path)).length;
  }
  const inDb = count(db, "chump_reflections");
  equal(inDb + spooled, 1000);
  equal(stored.db ?? 0, inDb);
  equal(count(db, "chump_improvement_targets"), inDb);
  equal(
    Number(sql(db, "SELECT count(DISTINCT intended_goal) AS n FROM chump_reflections")[0].n),
    inDb,
  );
  equal(
    count(db, "chump_reflections r JOIN chump_improvement_targets t ON t.reflection_id = r.id"),
    inDb,
  );
});

Deno.test("one writer stores 5,000 rows in a row, each with its target (throughput: bench/reflect.ts)", async () => {
  await using dir = await scratch();
  const db = join(dir.path, "chump_memory.db");
  const w = createSqliteWriter(db);
  const n = 5000;
  let inDb = 0;
  for (let i = 0; i < n; i++) {
    const r = await w.write(reflection({ gapId: `AUTO-${i}`, durationS: i }));
    if (r.stored === "db") inDb++;
  }
  w.close();
  equal(inDb, n);
  equal(count(db, "chump_improvement_targets"), n);
});

// --- queryReflections -----------------------------------------------------

Deno.test("reflections are listed newest first, filtered by outcome and exact gap id, limited", async () => {
  await using dir = await scratch();
  const db = join(dir.path, "chump_memory.db");
  const w = createSqliteWriter(db);
  await w.write(reflection({ gapId: "A-1", outcome: "shipped", prNumber: 5, durationS: 10 }));
  await w.write(reflection({ gapId: "B-2", outcome: "killed", prNumber: undefined }));
  await w.write(reflection({ gapId: "A-10", outcome: "killed", prNumber: undefined }));
  await w.write(
    reflection({ gapId: "A-1", outcome: "ci_failed", prNumber: 6, notes: "x\nbackend=claude" }),
  );
  w.close();
  sql(
    db,
    "INSERT INTO chump_reflections (intended_goal, observed_outcome, error_pattern) VALUES ('ship gap A-1', 'outcome=killed duration_s=1 pr=None', 'task_level')",
  );
  const gaps = (result: ReturnType<typeof queryReflections>) =>
    result.ok ? result.value.map((r) => `${r.gapId}:${r.outcome}`) : [result.error];

  deepEqual(gaps(queryReflections(db, { limit: 10 })), [
    "A-1:ci_failed",
    "A-10:killed",
    "B-2:killed",
    "A-1:shipped",
  ]);
  deepEqual(gaps(queryReflections(db, { limit: 2 })), ["A-1:ci_failed", "A-10:killed"]);
  deepEqual(gaps(queryReflections(db, { limit: 10, outcome: "killed" })), [
    "A-10:killed",
    "B-2:killed",
  ]);
  deepEqual(gaps(queryReflections(db, { limit: 10, gapId: "A-1" })), [
    "A-1:ci_failed",
    "A-1:shipped",
  ]);
  deepEqual(gaps(queryReflections(db, { limit: 1, gapId: "A-1", outcome: "shipped" })), [
    "A-1:shipped",
  ]);
  const read = queryReflections(db, { limit: 1 });
  ok(read.ok);
  const [latest] = read.value;
  match(latest.createdAt, SQLITE_TIME);
  deepEqual({ ...latest, createdAt: "" }, {
    id: 4,
    createdAt: "",
    gapId: "A-1",
    outcome: "ci_failed",
    durationS: 90,
    prNumber: 6,
    outcomeClass: "failure",
    directive:
      "dispatched gap=A-1 effort=m domain=auto outcome=ci_failed duration_s=90 parallel_siblings=1 pr_number=Some(6) notes=x",
    priority: "high",
    scope: "auto",
    notes: "x\nbackend=claude",
    effort: "m",
    domain: "auto",
    backend: "claude",
    model: "",
    cost: null,
  });
});

Deno.test("querying a missing DB returns no rows and does not create it", async () => {
  await using dir = await scratch();
  const db = join(dir.path, "sessions", "chump_memory.db");
  deepEqual(queryReflections(db, { limit: 10 }), { ok: true, value: [] });
  equal(await exists(db), false);
  equal(await exists(join(dir.path, "sessions")), false);
});

Deno.test("a spooled row carries its lease id; the import ends that lease with the row", async () => {
  await using dir = await scratch();
  const db = join(dir.path, "sub", "chump_memory.db");
  const options = { lockWaitMs: 60_000, fallbackSpoolPath: join(dir.path, "fallback.jsonl") };
  // The DB path is under a regular file: it cannot be opened, the row is spooled.
  await Deno.writeTextFile(join(dir.path, "sub"), "not a directory");
  const w = createSqliteWriter(db, options);
  const receipt = await w.write(reflection({ gapId: "L-1", outcome: "killed", leaseId: 1 }));
  w.close();
  equal(receipt.stored, "spool");
  if (receipt.stored !== "spool") return;
  equal((await jsonLines(receipt.path))[0].leaseId, 1);
  await Deno.remove(join(dir.path, "sub"));
  const ledger = openLedger(db, processLiveness());
  ok(ledger.ok);
  const begun = await ledger.value.begin({
    gapId: "L-1",
    repoRoot: dir.path,
    branch: "claude/l-1",
    worktree: join(dir.path, "wt"),
    baseCommit: "",
    effort: "m",
    backend: "claude",
  });
  ledger.value.close();
  deepEqual(begun, { ok: true, value: { begun: true, leaseId: 1 } });
  const imported = await importSpool(db, options);
  equal(imported.imported, 1);
  deepEqual(imported.leasesEnded, [1]);
  deepEqual(sql(db, "SELECT state, outcome, notes FROM chump_dispatch_leases"), [
    { state: "ended", outcome: "killed", notes: reflection().notes },
  ]);
});
