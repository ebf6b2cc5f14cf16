/**
 * `lessons`: what the reflections teach, per domain x effort x arm:
 * dispatches, ship rate, median and p90 duration, kills and stalls, and the
 * most frequent failure lines (numbers, paths and hashes folded). Read-only.
 *
 * @module
 */
import { EXIT, type Exit, type Io, runtimeError } from "../cli/io.ts";
import type { LessonsOptions } from "../cli/commands.ts";
import { ok } from "../util/result.ts";
import { resolvePaths } from "./paths.ts";
import { formatTable } from "../cli/table.ts";
import { lessonsTable } from "../learn/lessons.ts";
import { queryReflections, sourceName } from "../store/query.ts";
import { openReflections } from "./_sources.ts";
import { roughDuration } from "../util/duration.ts";
import { formatUsd } from "../cost/prices.ts";

/**
 * Print the lessons of a DB; returns the exit code.
 *
 * @example
 * ```ts ignore
 * await runLessons({ json: false }, io);
 * ```
 */
export async function runLessons(options: LessonsOptions, io: Io): Promise<Exit> {
  const { db } = await resolvePaths(options);
  const opened = await openReflections(options.ledger, db);
  if (!opened.ok) return opened;
  using reflections = opened.value;
  const { source } = reflections;
  const rows = queryReflections(source, { limit: Number.MAX_SAFE_INTEGER });
  if (!rows.ok) return runtimeError(rows.error);
  const cells = lessonsTable(rows.value);
  if (options.json) {
    io.out(JSON.stringify(cells));
    return ok(EXIT.ok);
  }
  if (cells.length === 0) {
    io.out(`no dispatch reflections in ${sourceName(source)} yet`);
    return ok(EXIT.ok);
  }
  const secs = (s: number | null) => s === null ? "-" : roughDuration(s * 1000);
  io.out(formatTable(
    [
      "domain",
      "effort",
      "arm",
      "dispatches",
      "shipped",
      "median",
      "p90",
      "killed",
      "stalled",
      "spent",
      "$/shipped",
    ],
    cells.map((c) => [
      c.domain,
      c.effort,
      c.arm,
      String(c.dispatches),
      `${c.shipped} (${Math.round(100 * c.shipRate)}%)`,
      secs(c.medianS),
      secs(c.p90S),
      String(c.killed),
      String(c.stalled),
      c.spentUsd === null ? "-" : formatUsd(c.spentUsd),
      c.usdPerShipped === null ? "-" : formatUsd(c.usdPerShipped),
    ]),
  ));
  const withFailures = cells.filter((c) => c.failures.length > 0);
  if (withFailures.length > 0) io.out("\nmost frequent failure lines:");
  for (const c of withFailures) {
    io.out(`${c.domain} ${c.effort} ${c.arm}:`);
    for (const f of c.failures) io.out(`  (${f.count}x) ${f.line}`);
  }
  return ok(EXIT.ok);
}
