/**
 * `reflections`: dispatch reflections from the DB, newest first, as a table
 * or JSON lines. Read-only (also where this process cannot write).
 *
 * @module
 */
import { EXIT, type Exit, type Io, runtimeError } from "../cli/io.ts";
import type { ReflectionsOptions } from "../cli/commands.ts";
import { ok } from "../util/result.ts";
import { resolvePaths } from "./paths.ts";
import { formatTable } from "../cli/table.ts";
import { queryReflections, sourceName } from "../store/query.ts";
import { openReflections } from "./_sources.ts";
import { oneLine } from "../util/text.ts";
import { formatUsd } from "../cost/prices.ts";

/**
 * List reflections; returns the exit code.
 *
 * @example
 * ```ts ignore
 * const code = await runReflections({ db: "sessions/chump_memory.db", limit: 20, json: true }, io);
 * ```
 */
export async function runReflections(options: ReflectionsOptions, io: Io): Promise<Exit> {
  const { db } = await resolvePaths(options);
  const opened = await openReflections(options.ledger, db);
  if (!opened.ok) return opened;
  using reflections = opened.value;
  const { source } = reflections;
  const read = queryReflections(source, {
    limit: options.limit,
    outcome: options.outcome,
    gapId: options.gap,
  });
  if (!read.ok) return runtimeError(read.error);
  const rows = read.value;
  if (options.json) {
    for (const r of rows) io.out(JSON.stringify(r));
    return ok(EXIT.ok);
  }
  if (rows.length === 0) {
    io.out(`no dispatch reflections in ${sourceName(source)}`);
    return ok(EXIT.ok);
  }
  io.out(formatTable(
    ["id", "created_at", "gap", "outcome", "duration_s", "pr", "cost", "priority", "notes"],
    rows.map((r) => [
      String(r.id),
      r.createdAt,
      r.gapId,
      r.outcome,
      r.durationS === null ? "" : String(r.durationS),
      r.prNumber === null ? "" : `#${r.prNumber}`,
      r.cost?.usd === undefined ? "" : formatUsd(r.cost.usd),
      r.priority,
      oneLine(r.notes.split("\n")[0] ?? "", 60),
    ]),
  ));
  return ok(EXIT.ok);
}
