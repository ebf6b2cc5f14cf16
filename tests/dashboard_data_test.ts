/** The dashboard's pure parts: grouping, the duration histogram, the metrics text. */
import { deepEqual, equal, match } from "node:assert/strict";
import { durationHistogram, groupStats, metricsText } from "../lib/dashboard/data.ts";

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
