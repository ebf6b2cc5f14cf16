/**
 * Reflection writes: rows per second for one writer (target >= 5,000), and
 * 4 orchestrator processes writing 1,000 rows each into one DB at once
 * (target: 4,000 rows, 0 lost).
 *
 * @module
 */
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { createSqliteWriter } from "../lib/store/writer.ts";
import { ROOT, type Row } from "./_util.ts";

const ROWS = 5000;
const PROCS = 4;
const PER_PROC = 1000;

/** The reflection rows. */
export async function benchReflect(tmp: string): Promise<Row[]> {
  const dir = await Deno.makeTempDir({ dir: tmp, prefix: "reflect-" });
  const one = join(dir, "one.db");
  const writer = createSqliteWriter(one);
  const t0 = performance.now();
  for (let i = 0; i < ROWS; i++) {
    await writer.write({
      gapId: `W-${i}`,
      effort: "s",
      domain: "w",
      outcome: "killed",
      durationS: i,
      parallelSiblings: 1,
      notes: `exit code 1\nbackend=bench\nERROR: row ${i}`,
    });
  }
  const seconds = (performance.now() - t0) / 1000;
  writer.close();
  const perSecond = ROWS / seconds;

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
      section: "reflections",
      measure: `one writer, ${ROWS} rows (reflection + target, one transaction each)`,
      result: `${perSecond.toFixed(0)} rows/s`,
      target: ">= 5,000 rows/s",
      met: perSecond >= 5000,
      fix: "synchronous=NORMAL under WAL (one fsync per checkpoint, not per row)",
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
