/**
 * The DB's schema: several orchestrators opening one older DB at once each
 * add the columns it lacks without tripping over the others ("duplicate
 * column name" used to send a run's first reflection to the spool).
 */
import { equal, ok } from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { applySchema } from "../lib/store/schema.ts";
import { ROOT, scratch } from "./_helpers.ts";
import { blockedOnLock, CAN_SEE_WAITS } from "./_lock.ts";

/** Columns of the run table that an older version's DB lacks. */
const NEWER = ["spent_usd", "budget_run_usd", "budget_day_usd", "budget_gap_usd"];

/** A DB as an older version left it: the run table without its budget columns. */
function olderDb(path: string): void {
  const db = new DatabaseSync(path);
  applySchema(db);
  for (const c of NEWER) db.exec(`ALTER TABLE chump_runs DROP COLUMN ${c}`);
  db.close();
}

Deno.test({
  name:
    "a process adding the missing columns while another adds them too waits, then finds them there",
  ignore: !CAN_SEE_WAITS,
  async fn() {
    await using dir = await scratch();
    const path = join(dir.path, "old.db");
    olderDb(path);
    // This process migrates first: it holds the write lock, as another orchestrator would.
    const first = new DatabaseSync(path);
    first.exec("BEGIN IMMEDIATE");
    const schema = new URL("../lib/store/schema.ts", import.meta.url).href;
    const code = `// schema_child
import { DatabaseSync } from "node:sqlite";
import { applySchema } from ${JSON.stringify(schema)};
const db = new DatabaseSync(${JSON.stringify(path)});
db.exec("PRAGMA busy_timeout = 20000");
try {
  applySchema(db);
  console.log("ok");
} catch (e) {
  console.log(String(e));
}`;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["eval", "--config", join(ROOT, "deno.json"), code],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // The other one has looked at the table and now waits on the lock.
    await blockedOnLock(Deno.pid, (args) => args.includes("schema_child"));
    for (const c of NEWER) first.exec(`ALTER TABLE chump_runs ADD COLUMN ${c} REAL`);
    first.exec("COMMIT");
    first.close();
    const out = await child.output();
    equal(new TextDecoder().decode(out.stdout).trim(), "ok");
    const db = new DatabaseSync(path, { readOnly: true });
    const columns = db.prepare("PRAGMA table_info(chump_runs)").all().map((r) => r.name);
    db.close();
    ok(columns.includes("budget_gap_usd"), "the columns are there once");
  },
});
