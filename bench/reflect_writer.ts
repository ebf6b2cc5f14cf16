/**
 * A bench child: one orchestrator-like process writing `<count>` reflections
 * for gaps `<tag>-<i>` into `<db>` with the production SQLite writer, then
 * printing how each row was stored as JSON (`{"db": n, "spool": n, ...}`).
 *
 * @module
 */
import { createSqliteWriter } from "../lib/store/writer.ts";

const [db, count, tag] = Deno.args;
const writer = createSqliteWriter(db, { lockWaitMs: 30_000 });
const stored: Record<string, number> = {};
for (let i = 0; i < Number(count); i++) {
  const r = await writer.write({
    gapId: `${tag}-${i}`,
    effort: "m",
    domain: tag.toLowerCase(),
    outcome: i % 4 === 0 ? "shipped" : "killed",
    durationS: i,
    parallelSiblings: 3,
    prNumber: i % 4 === 0 ? i : undefined,
    notes: `exit code 1\nbackend=bench\nERROR: row ${i} of ${tag}`,
  });
  stored[r.stored] = (stored[r.stored] ?? 0) + 1;
}
writer.close();
console.log(JSON.stringify(stored));
