/**
 * What a dispatch costs, end to end, with real processes and real git: a
 * fake `claude` on PATH (the demo agent, which speaks Claude Code's
 * stream-json when started as the claude preset starts it) ships and reports
 * its cost; the per-gap budget ends an agent whose priced tokens pass it
 * while it runs; the run and day budgets stop the fill.
 *
 * @module
 */
import { deepEqual, equal, match, ok as assert } from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import {
  backlogOf,
  fakeClaude,
  linesStarting,
  reflectionRows,
  type ScratchRepo,
  scratchRepo,
  watchArgs,
  withClaude,
} from "../_e2e.ts";
import { runMain } from "../_helpers.ts";
import { ROOT } from "../../testkit/process.ts";
import { GIT_ID } from "../../testkit/repo.ts";
import { throwawayCluster } from "../../testkit/pg.ts";
import { machines } from "../_fleet.ts";
import postgres from "postgres";

/** A watching run whose agent is the default preset (`claude`, from PATH). */
function orchestrateClaude(scratch: ScratchRepo, args: string[], env: Record<string, string>) {
  return runMain(watchArgs(scratch, args, false), { cwd: ROOT, env: { ...GIT_ID, ...env } });
}

/** The lease rows' cost columns, by gap. */
function leaseCosts(db: string): Map<string, Record<string, unknown>> {
  const conn = new DatabaseSync(db, { readOnly: true });
  try {
    const rows = conn.prepare(
      "SELECT gap_id, agent_format, cost_usd, tokens_in, turns, session_id FROM chump_dispatch_leases",
    ).all();
    return new Map(rows.map((r) => [String(r.gap_id), { ...r }]));
  } finally {
    conn.close();
  }
}

Deno.test("a fake claude on PATH speaks stream-json, ships through git and reports its cost: on every line, row and event", async () => {
  await using scratch = await scratchRepo(backlogOf([["A-1"]]));
  const bin = await fakeClaude(scratch.dir);
  const events = join(scratch.dir, "events.jsonl");
  const ran = await orchestrateClaude(
    scratch,
    ["--events", events, "--no-live"],
    withClaude(bin, { CHUMP_DEMO_COST_USD: "0.42" }),
  );
  equal(ran.code, 0, ran.stderr);
  const [outcome] = linesStarting(ran.stdout, "OUTCOME: A-1 shipped");
  match(outcome, / cost=\$0\.42/);
  match(ran.stdout, /\nspent \$0\.42 on 1 dispatch \(\$0\.42 per shipped gap\)\n/);
  const notes = reflectionRows(scratch.db).get("A-1")!.hypothesis;
  match(notes, /^backend=claude\ncost_usd=0\.4200\ntokens_in=12000\ntokens_out=800\n/);
  match(
    notes,
    /\ntokens_cache_read=30000\ntokens_cache_write=2000\nturns=1\nsession=[0-9a-f-]{36}/,
  );
  const lease = leaseCosts(scratch.db).get("A-1")!;
  equal(lease.agent_format, "claude-stream");
  equal(lease.cost_usd, 0.42);
  equal(lease.tokens_in, 12000);
  const all = (await Deno.readTextFile(events)).trim().split("\n").map((l) => JSON.parse(l));
  const out = all.find((e) => e.event === "outcome");
  deepEqual(
    [out.cost_usd, out.tokens_in, out.tokens_out, out.turns],
    [0.42, 12000, 800, 1],
  );
  equal(all.find((e) => e.event === "run_finished").spent_usd, 0.42);
});

Deno.test("--budget-gap ends an agent whose priced tokens pass it while it still runs: killed, 'over budget'", async () => {
  await using scratch = await scratchRepo(backlogOf([["B-1"]]));
  const bin = await fakeClaude(scratch.dir);
  // Each turn: 12000 in, 800 out, 30000 cache read, 2000 cache write = $0.0645 at Sonnet's prices.
  const ran = await orchestrateClaude(
    scratch,
    // A deadline too, so that without the budget the agent is still ended (at 20 s), not left burning.
    ["--budget-gap", "0.25", "--deadline", "s=10s", "--no-live"],
    withClaude(bin, { CHUMP_DEMO_PLAN: "B-1=burn:50" }),
  );
  equal(ran.code, 3, ran.stderr);
  // How far past the budget it got depends on when the tick saw it: more than $0.25, anyway.
  const [killing] = linesStarting(ran.stdout, "KILLING: B-1 (over budget ($");
  const seen = Number(/\(over budget \(\$(\d+\.\d\d) > \$0\.25\)\): PID \d+$/.exec(killing)?.[1]);
  assert(seen > 0.25, killing);
  const [outcome] = linesStarting(ran.stdout, "OUTCOME: B-1 killed");
  assert(outcome.endsWith(` -- over budget ($${seen.toFixed(2)} > $0.25)`), outcome);
  const notes = reflectionRows(scratch.db).get("B-1")!.hypothesis;
  match(
    notes,
    /^over budget \(\$\d+\.\d\d > \$0\.25\)\nbackend=claude\nclass=over_budget\ncost_usd=/,
  );
  // What it cost in all (what it used until it ended) is recorded: at least what was seen.
  assert(Number(/\ncost_usd=(\d+\.\d+)\n/.exec(notes)?.[1]) >= seen - 0.005, notes);
});

Deno.test("--budget-run stops the fill once the run has spent it; the agents already running finish", async () => {
  await using scratch = await scratchRepo(backlogOf([["C-1"], ["C-2"], ["C-3"], ["C-4"]]));
  const bin = await fakeClaude(scratch.dir);
  const ran = await orchestrateClaude(
    scratch,
    ["--budget-run", "0.5", "--max-parallel", "1", "--no-live"],
    withClaude(bin, { CHUMP_DEMO_COST_USD: "0.3" }),
  );
  equal(ran.code, 0, ran.stderr);
  deepEqual(linesStarting(ran.stdout, "OUTCOME:").map((l) => l.split(" ")[1]), ["C-1", "C-2"]);
  deepEqual(linesStarting(ran.stdout, "BUDGET:"), [
    "BUDGET: run budget reached: $0.60 spent of $0.50; nothing new is dispatched, running agents finish",
  ]);
  match(ran.stdout, /\nspent \$0\.60 on 2 dispatches \(\$0\.30 per shipped gap\)\n/);
});

Deno.test("--budget-day counts what earlier runs recorded in the last 24 hours: nothing is dispatched past it", async () => {
  await using scratch = await scratchRepo(backlogOf([["D-1"], ["D-2"], ["D-3"]]));
  const bin = await fakeClaude(scratch.dir);
  const env = withClaude(bin, { CHUMP_DEMO_COST_USD: "0.3" });
  const first = await orchestrateClaude(scratch, ["--max-total", "2", "--no-live"], env);
  equal(first.code, 0, first.stderr);
  const second = await orchestrateClaude(scratch, ["--budget-day", "0.5", "--no-live"], env);
  equal(second.code, 0, second.stderr);
  deepEqual(linesStarting(second.stdout, "BUDGET:"), [
    "BUDGET: daily budget reached: $0.60 spent in the last 24h of $0.50; nothing new is " +
    "dispatched, running agents finish",
  ]);
  deepEqual(linesStarting(second.stdout, "DISPATCHED:"), []);
  // A day budget above what was spent lets the run go on.
  const third = await orchestrateClaude(
    scratch,
    ["--budget-day", "5", "--max-total", "1", "--no-live"],
    env,
  );
  equal(linesStarting(third.stdout, "DISPATCHED:").length, 1, third.stdout + third.stderr);
  deepEqual(linesStarting(third.stdout, "BUDGET:"), []);
});

Deno.test("a bad budget or prices file is one line and exit 2, before anything is dispatched", async () => {
  await using scratch = await scratchRepo(backlogOf([["E-1"]]));
  const run = (args: string[]) =>
    runMain(watchArgs(scratch, args), { cwd: ROOT, env: { ...GIT_ID } });
  const zero = await run(["--budget-gap", "0"]);
  equal(zero.code, 2);
  equal(
    zero.stderr.trim(),
    "chump-orchestrator: error: --budget-gap must be an amount in USD more than 0 (e.g. 2.50), got '0'",
  );
  const prices = join(scratch.dir, "prices.yaml");
  await Deno.writeTextFile(prices, "claude-sonnet-4: {input: 3}\n");
  const bad = await run(["--prices", prices]);
  equal(bad.code, 2);
  equal(
    bad.stderr.trim(),
    `chump-orchestrator: error: ${prices}: claude-sonnet-4: 'output' must be a price in USD per million tokens (>= 0)`,
  );
  equal(linesStarting(bad.stdout, "DISPATCHED:").length, 0);
});

Deno.test("--budget-day with a shared ledger counts what the fleet's other hosts spent: a second machine dispatches nothing past it", async () => {
  await using pg = await throwawayCluster();
  await using scratch = await scratchRepo(backlogOf([["F-1"], ["F-2"], ["F-3"], ["F-4"]]));
  const [a, b] = await machines(scratch, 2);
  const bin = await fakeClaude(scratch.dir);
  const env = withClaude(bin, { CHUMP_DEMO_COST_USD: "0.3" });
  const first = await orchestrateClaude(
    a,
    ["--ledger", pg.url, "--host-id", "host-a", "--max-total", "2", "--no-live"],
    env,
  );
  equal(first.code, 0, first.stderr);
  // The shared ledger's leases carry the cost as real columns.
  const sql = postgres(pg.url, { onnotice: () => {} });
  try {
    const rows = await sql`SELECT gap_id, cost_usd, tokens_in, turns FROM chump_pg_leases
                           WHERE state = 'ended' ORDER BY gap_id`;
    deepEqual(rows.map((r) => [r.gap_id, Number(r.cost_usd), Number(r.tokens_in), r.turns]), [
      ["F-1", 0.3, 12000, 1],
      ["F-2", 0.3, 12000, 1],
    ]);
  } finally {
    await sql.end();
  }
  // Machine b has no local history: its day budget is the fleet's.
  const second = await orchestrateClaude(
    b,
    ["--ledger", pg.url, "--host-id", "host-b", "--budget-day", "0.5", "--no-live"],
    env,
  );
  equal(second.code, 0, second.stderr);
  deepEqual(linesStarting(second.stdout, "BUDGET:"), [
    "BUDGET: daily budget reached: $0.60 spent in the last 24h of $0.50; nothing new is " +
    "dispatched, running agents finish",
  ]);
  deepEqual(linesStarting(second.stdout, "DISPATCHED:"), []);
});
