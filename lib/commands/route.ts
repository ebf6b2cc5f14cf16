/**
 * `route GAP-ID`: the cascade a run would try the gap with, in the order it
 * would try it, and why: the route that matched (or the defaults), each
 * arm's record on the scoreboard and, with `--learn thompson`, its draw.
 * Read-only.
 *
 * @module
 */
import type { Gap } from "../backlog/gap.ts";
import { loadBacklog } from "../backlog/load.ts";
import { EXIT, type Exit, type Io, usageError } from "../cli/io.ts";
import type { RouteOptions } from "../cli/commands.ts";
import { ok } from "../util/result.ts";
import { roundTo } from "../util/number.ts";
import { resolvePaths } from "./paths.ts";
import { formatTable } from "../cli/table.ts";
import { loadLearning } from "../learn/load.ts";
import { agentTemplate, openReflections } from "./_sources.ts";
import { orderCascade, type Ranked, runSeed, seededRandom } from "../learn/policy.ts";
import { routeGap, type RoutingTable } from "../learn/routing.ts";
import { type ArmSpend, spendByArm } from "../learn/spend.ts";
import { formatUsd } from "../cost/prices.ts";

/**
 * Print the cascade of one gap; returns the exit code.
 *
 * @example
 * ```ts ignore
 * await runRoute({ gapId: "COG-035", json: false, learn: "fixed" }, io);
 * ```
 */
export async function runRoute(options: RouteOptions, io: Io): Promise<Exit> {
  const paths = await resolvePaths(options);
  const backlog = await loadBacklog(paths.backlog);
  if (!backlog.ok) return usageError(backlog.error);
  const gap = backlog.value.gaps.find((g) => g.id === options.gapId);
  if (!gap) return usageError(`no gap '${options.gapId}' in ${paths.backlog}`);
  const opened = await openReflections(options.ledger, paths.db);
  if (!opened.ok) return opened;
  using reflections = opened.value;
  const learning = await loadLearning({
    repoRoot: paths.repoRoot,
    db: reflections.source,
    routing: options.routing,
    windowMs: options.learnWindowMs,
    warn: (message) => io.err(`warning: ${message}`),
  });
  if (!learning.ok) return usageError(learning.error);
  const { table, learned } = learning.value;
  const spend = new Map(spendByArm(learned.rows).map((a) => [a.arm, a]));
  for (const w of table?.warnings ?? []) io.err(`warning: ${w}`);
  if (!table) {
    const line = `no routing table at ${learning.value.routingPath}: ` +
      "every gap goes to the run's one agent command (--agent-cmd, CHUMP_AGENT_CMD or the backend preset)";
    if (options.json) io.out(JSON.stringify({ gapId: gap.id, table: null, cascade: [] }));
    else io.out(line);
    return ok(EXIT.ok);
  }
  const routed = routeGap(gap, table);
  const seed = runSeed(options.seed);
  const ranked = orderCascade(
    routed.candidates,
    routed.taskClass,
    learned.scores,
    options.learn,
    seededRandom(seed),
    { objective: options.learnObjective, effort: gap.effort },
  );
  // What a run does when the cascade is empty: the gap goes to its one agent command.
  const plain = ranked.length === 0 ? agentTemplate({ agentCmd: undefined }, io) : undefined;
  if (plain && !plain.ok) return plain;
  const fallback = plain?.value.words.join(" ") ?? "";
  const shown = {
    gap,
    routed,
    ranked,
    table,
    rows: learned.scores.rows,
    seed,
    policy: options.learn,
    objective: options.learnObjective,
    fallback,
    spend,
  };
  if (options.json) io.out(JSON.stringify(routeJson(shown)));
  else for (const line of routeLines(shown)) io.out(line);
  return ok(EXIT.ok);
}

/** What `route` shows of one gap. */
interface Shown {
  gap: Gap;
  routed: ReturnType<typeof routeGap>;
  ranked: Ranked[];
  table: RoutingTable;
  /** Reflections the scoreboard counted. */
  rows: number;
  seed: number;
  policy: RouteOptions["learn"];
  objective: RouteOptions["learnObjective"];
  /** The run's one agent command (`CHUMP_AGENT_CMD` or the backend preset), for an empty cascade. */
  fallback: string;
  /** What each arm spent (all its reflections). */
  spend: Map<string, ArmSpend>;
}

/** `route --json`: one object. */
function routeJson(s: Shown): Record<string, unknown> {
  const { gap, routed, table } = s;
  return {
    gapId: gap.id,
    priority: gap.priority,
    effort: gap.effort,
    taskClass: routed.taskClass,
    table: table.path,
    route: routed.route ? { line: routed.route.line, why: routed.route.why ?? null } : null,
    policy: s.policy,
    seed: s.policy === "thompson" ? s.seed : null,
    objective: s.policy === "thompson" ? s.objective : null,
    scoreboardRows: s.rows,
    fallback: s.ranked.length === 0 ? s.fallback : null,
    cascade: s.ranked.map((r) => ({
      arm: r.arm,
      ...r.candidate,
      successes: roundTo(r.record.successes, 1),
      failures: roundTo(r.record.failures, 1),
      basis: r.basis,
      sample: r.sample ?? null,
      value: r.value ?? null,
      spentUsd: s.spend.get(r.arm)?.costed ? s.spend.get(r.arm)!.spentUsd : null,
      usdPerShipped: s.spend.get(r.arm)?.usdPerShipped ?? null,
    })),
  };
}

/** `route`'s lines: the gap and its route, the order, the cascade's table. */
function routeLines(s: Shown): string[] {
  const { gap, routed, table } = s;
  const routeText = routed.route
    ? `route at ${table.path}:${routed.route.line}${
      routed.route.why ? ` (${routed.route.why})` : ""
    }`
    : `default_candidates of ${table.path}`;
  const order = s.policy === "thompson"
    ? ` (seed ${s.seed}; ${s.objective}; a Beta draw per arm from the table's order, ` +
      "its record and its class's, weighed by availability and cost)"
    : " (the file's)";
  const rows = s.ranked.map((r, i) => [
    String(i + 1),
    r.arm,
    r.candidate.why ?? "",
    `${roundTo(r.record.successes, 1)}/${
      roundTo(r.record.successes + r.record.failures, 1)
    } shipped (${r.basis})`,
    r.sample === undefined ? "" : r.sample.toFixed(3),
    perShipped(s.spend.get(r.arm)),
  ]);
  const head = `${gap.id} (priority ${gap.priority || "-"}, effort ${gap.effort || "-"}, ` +
    `task class ${routed.taskClass || "-"}): `;
  if (rows.length === 0) {
    return [
      `${head}no route of ${table.path} matches it and the table has no default_candidates`,
      `a run sends it to its one agent command: ${s.fallback} (--agent-cmd, CHUMP_AGENT_CMD ` +
      "or the backend preset)",
    ];
  }
  return [
    head + routeText,
    `order: ${s.policy}${order}; scoreboard of ${s.rows} reflection(s)`,
    formatTable(["#", "arm", "why", "record", "draw", "$/shipped"], rows),
  ];
}

/** An arm's dollars per shipped gap, `-` when unknown. */
function perShipped(a: ArmSpend | undefined): string {
  return a?.usdPerShipped === null || a === undefined ? "-" : formatUsd(a.usdPerShipped);
}
