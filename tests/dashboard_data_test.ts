/** The dashboard's pure parts: grouping, the duration histogram, the metrics text. */
import { deepEqual, equal, match, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import {
  dashboardStatus,
  durationHistogram,
  groupStats,
  metricsText,
} from "../lib/dashboard/data.ts";
import { renderView } from "../lib/dashboard/render.ts";
import { encodeNotes } from "../lib/store/notes.ts";
import type { Outcome } from "../lib/store/reflection.ts";
import { createSqliteWriter } from "../lib/store/writer.ts";
import { openLedger } from "../lib/store/ledger.ts";
import { processLiveness } from "../lib/process/liveness.ts";

const row = (outcome: string, durationS: number | null, domain: string) => ({
  outcome,
  durationS,
  domain,
});

Deno.test("groups: ship rate and median duration per key, keys sorted, empty keys read 'unknown'", () => {
  const rows = [
    row("shipped", 10, "b"),
    row("killed", 30, "b"),
    row("shipped", 50, "b"),
    row("stalled", null, "a"),
    row("shipped", 7, ""),
  ];
  deepEqual(groupStats(rows, (r) => r.domain), [
    { key: "a", dispatches: 1, shipped: 0, shipRate: 0, medianS: null },
    { key: "b", dispatches: 3, shipped: 2, shipRate: 2 / 3, medianS: 30 },
    { key: "unknown", dispatches: 1, shipped: 1, shipRate: 1, medianS: 7 },
  ]);
  deepEqual(groupStats([], (r: { outcome: string; durationS: null }) => r.outcome), []);
});

Deno.test("the duration histogram is cumulative, skips unknown durations, and /metrics prints it", () => {
  const h = durationHistogram([30, 60, 61, 299, 301, 40_000, null]);
  deepEqual(h.counts, [2, 4, 5, 5, 5, 5, 5, 5]);
  equal(h.count, 6);
  equal(h.sumS, 30 + 60 + 61 + 299 + 301 + 40_000);
  const text = metricsText({
    db: "x",
    generatedAt: "",
    leases: [],
    byWatch: {},
    outcomes: { shipped: 4, killed: 2 },
    byDomain: [],
    byEffort: [],
    byBackend: [],
    durations: h,
    runs: { runs: 2, ticks: 9, providerErrors: 3, writeFailures: 1, liveAgents: 0 },
    spooled: 1,
  });
  match(text, /^chump_dispatch_duration_seconds_bucket\{le="60"\} 2$/m);
  match(text, /^chump_dispatch_duration_seconds_bucket\{le="\+Inf"\} 6$/m);
  match(text, /^chump_dispatch_duration_seconds_count 6$/m);
  match(text, /^chump_reflections_total\{outcome="killed"\} 2$/m);
  match(text, /^chump_ticks_total 9$/m);
  match(text, /^chump_provider_errors_total 3$/m);
  match(text, /^chump_reflection_write_failures_total 1$/m);
  match(text, /^chump_reflections_spooled 1$/m);
  match(text, /^# TYPE chump_dispatch_duration_seconds histogram$/m);
});

Deno.test("cost on the dashboard: per backend/model/outcome in /metrics, per arm with dollars per shipped gap, spend against a live run's budgets", async () => {
  const dir = await Deno.makeTempDir();
  const db = join(dir, "chump_memory.db");
  const writer = createSqliteWriter(db);
  const cost = (usd: number, session: string) =>
    encodeNotes({
      backend: "claude",
      cost: {
        usd,
        tokensIn: 100,
        tokensOut: 20,
        cacheRead: 1000,
        cacheWrite: 50,
        turns: 2,
        session,
        sessionModel: "claude-sonnet-4-5",
      },
    });
  const reflection = (gapId: string, outcome: Outcome, notes: string) => ({
    gapId,
    effort: "s",
    domain: "a",
    outcome,
    durationS: 10,
    parallelSiblings: 0,
    notes,
  });
  await writer.write(reflection("A-1", "killed", cost(0.5, "s1")));
  await writer.write(reflection("A-1", "shipped", cost(0.25, "s2")));
  await writer.write(reflection("A-2", "shipped", "backend=custom:aider"));
  writer.close();
  const opened = openLedger(db, processLiveness());
  assert(opened.ok);
  await opened.value.heartbeat({
    runId: "run-12345678",
    startedMs: Date.now(),
    ticks: 1,
    providerErrors: 0,
    writeFailures: 0,
    liveAgents: 0,
    spentUsd: 0.75,
    budgets: { runUsd: 0.5, gapUsd: 1 },
  });
  opened.value.close();
  const s = await dashboardStatus(db, 10);
  assert(s.ok);
  const text = metricsText(s.value);
  match(
    text,
    /^chump_cost_usd_total\{backend="claude",model="claude-sonnet-4-5",outcome="killed"\} 0\.5$/m,
  );
  match(
    text,
    /^chump_tokens_total\{backend="claude",model="claude-sonnet-4-5",outcome="shipped",kind="cache_read"\} 1000$/m,
  );
  equal(text.includes('backend="custom:aider"'), false, "no cost facts, no cost sample");
  deepEqual(s.value.spend?.byArm.map((a) => [a.arm, a.spentUsd, a.usdPerShipped]), [
    ["claude", 0.75, 0.75],
  ]);
  equal(s.value.spend?.lastDayUsd, 0.75);
  const view = renderView(s.value);
  match(view.spend, /last 24 hours: \$0\.75/);
  match(
    view.spend,
    /<li class="over">run run-1234 on [^:]+: \$0\.75 spent of \$0\.50 \(run budget\) ; at most \$1\.00 an agent<\/li>/,
  );
  match(view.spend, /<td>claude<\/td><td>2<\/td><td>1<\/td><td>\$0\.75<\/td><td>\$0\.75<\/td>/);
  await Deno.remove(dir, { recursive: true });
});
