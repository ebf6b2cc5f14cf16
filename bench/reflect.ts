/**
 * Reflection writes: the production writer against raw `node:sqlite` inserts
 * of the same two rows (reflection + target, one transaction each, WAL) in
 * alternating rounds (target: the writer takes at most 1.5x the raw time),
 * and 4 orchestrator processes writing 1,000 rows each into one DB at once
 * (target: 4,000 rows, 0 lost).
 *
 * @module
 */
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { createSqliteWriter } from "../lib/store/writer.ts";
import { REFLECTION_SCHEMA } from "../lib/store/reflection.ts";
import { alternate, median, ratioRow, ROOT, type Row } from "./_util.ts";

const ROWS = 1000;
const ROUNDS = 7;
const PROCS = 4;
const PER_PROC = 1000;

/** What the writer stores for row `i`: the same text the raw baseline inserts. */
function reflection(i: number) {
  return {
    gapId: `W-${i}`,
    effort: "s",
    domain: "w",
    outcome: "killed" as const,
    durationS: i,
    parallelSiblings: 1,
    notes: `exit code 1\nbackend=bench\nERROR: row ${i}`,
  };
}

/** The production writer: `ROWS` reflections into a new DB; ms. */
async function writerRows(db: string): Promise<number> {
  const writer = createSqliteWriter(db);
  const t0 = performance.now();
  for (let i = 0; i < ROWS; i++) await writer.write(reflection(i));
  const took = performance.now() - t0;
  writer.close();
  return took;
}

/** Raw node:sqlite: the same two rows per reflection, one transaction each; ms. */
function rawRows(path: string): number {
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode = WAL");
  db.exec(REFLECTION_SCHEMA);
  const insertReflection = db.prepare(
    `INSERT INTO chump_reflections (intended_goal, observed_outcome, outcome_class, error_pattern,
       hypothesis) VALUES (?, ?, 'failure', 'orchestrator_dispatch', ?)`,
  );
  const insertTarget = db.prepare(
    `INSERT INTO chump_improvement_targets (reflection_id, directive, priority, scope)
     VALUES (?, ?, 'high', 'w')`,
  );
  const t0 = performance.now();
  for (let i = 0; i < ROWS; i++) {
    const r = reflection(i);
    db.exec("BEGIN IMMEDIATE");
    const { lastInsertRowid } = insertReflection.run(
      `ship gap ${r.gapId}`,
      `outcome=killed duration_s=${i} pr=None`,
      r.notes,
    );
    insertTarget.run(
      lastInsertRowid,
      `dispatched gap=${r.gapId} effort=s domain=w outcome=killed duration_s=${i} ` +
        `parallel_siblings=1 pr_number=None notes=exit code 1`,
    );
    db.exec("COMMIT");
  }
  const took = performance.now() - t0;
  db.close();
  return took;
}

/** The reflection rows. */
export async function benchReflect(tmp: string): Promise<Row[]> {
  const dir = await Deno.makeTempDir({ dir: tmp, prefix: "reflect-" });
  let n = 0;
  const rounds = await alternate(
    ROUNDS,
    () => Promise.resolve(rawRows(join(dir, `raw-${n++}.db`))),
    () => writerRows(join(dir, `writer-${n++}.db`)),
  );
  const perSecond = (x: number) => `${(ROWS / (x / 1000)).toFixed(0)} rows/s`;

  const shared = join(dir, "shared.db");
  const t1 = performance.now();
  const children = Array.from({ length: PROCS }, (_, p) =>
    new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        "--allow-read",
        `--allow-write=${dir},/tmp`,
        "--allow-env=TMPDIR",
        join(ROOT, "bench", "reflect_writer.ts"),
        shared,
        String(PER_PROC),
        `P${p}`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output());
  const outs = await Promise.all(children);
  const concurrentS = (performance.now() - t1) / 1000;
  const stored = { db: 0, other: 0 };
  for (const o of outs) {
    const counts = JSON.parse(new TextDecoder().decode(o.stdout) || "{}");
    stored.db += counts.db ?? 0;
    stored.other += (counts.spool ?? 0) + (counts.stderr ?? 0);
  }
  const db = new DatabaseSync(shared, { readOnly: true });
  const inDb = (db.prepare("SELECT count(*) AS n FROM chump_reflections").get() as { n: number }).n;
  const targets =
    (db.prepare("SELECT count(*) AS n FROM chump_improvement_targets").get() as { n: number }).n;
  db.close();
  let spooled = 0;
  for await (const e of Deno.readDir(dir)) {
    if (e.name.endsWith(".jsonl")) {
      spooled += (await Deno.readTextFile(join(dir, e.name))).trim().split("\n").length;
    }
  }
  await Deno.remove(dir, { recursive: true });
  const total = PROCS * PER_PROC;
  const lost = total - inDb - spooled;
  return [
    {
      ...ratioRow(
        "reflections",
        `time for ${ROWS} rows: the writer / raw node:sqlite inserts of the same rows`,
        rounds,
        1.5,
        "prepare once, one transaction per reflection, nothing else per row",
      ),
      result: `${median(rounds.ratios).toFixed(2)}x (${perSecond(median(rounds.candidate))} / ` +
        `${perSecond(median(rounds.baseline))})`,
    },
    {
      section: "reflections",
      measure: `${PROCS} processes x ${PER_PROC} rows into one DB at once (${
        concurrentS.toFixed(1)
      } s)`,
      result: `${inDb} rows in the DB (${targets} targets), ${spooled} spooled, ${lost} lost`,
      target: `${total} rows, 0 lost`,
      met: inDb === total && lost === 0,
      fix: "a longer lock wait; spooled rows are imported by the next run",
    },
  ];
}
