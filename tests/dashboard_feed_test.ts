/**
 * The dashboard's shared poller (dashboard/feed.ts) and its renderer
 * (dashboard/render.ts), with a counting reader in place of the DB.
 */
import { deepEqual, equal, match, ok as assert, rejects } from "node:assert/strict";
import { StatusFeed } from "../lib/dashboard/feed.ts";
import { renderView } from "../lib/dashboard/render.ts";
import type { DashboardStatus } from "../lib/dashboard/data.ts";
import { ok } from "../lib/util/result.ts";

/** A status of one lease `gap`. */
function statusOf(gap: string): DashboardStatus {
  return {
    db: "/x/chump_memory.db",
    generatedAt: new Date().toISOString(),
    leases: [{
      lease: 7,
      gap,
      state: "running",
      outcome: null,
      pid: 42,
      pidAlive: true,
      orchestratorPid: 41,
      orchestratorAlive: true,
      generation: 0,
      watch: "watched",
      elapsedS: 45,
      worktree: "/w",
      branch: "b",
      log: "/logs/7-a.out.log",
      startedAt: "",
      deadlineS: 90,
      idleS: 3,
      lastLine: "WARN: <b>bold</b>",
      pr: null,
      costUsd: 0.42,
      tokensIn: 1000,
      tokensOut: 20,
      fixRound: null,
    }],
    byWatch: { watched: 1 },
    outcomes: {},
    byDomain: [],
    byEffort: [],
    byBackend: [],
    durations: { le: [], counts: [], count: 0, sumS: 0 },
    runs: { runs: 1, ticks: 2, providerErrors: 0, writeFailures: 0, liveAgents: 1 },
    spooled: 0,
  };
}

/** A feed over a reader that counts its reads; looks once an hour (only the first look runs). */
function countingFeed(maxStreams: number) {
  const stop = new AbortController();
  let reads = 0;
  const feed = new StatusFeed({
    read: async () => {
      reads++;
      await Promise.resolve();
      return ok(statusOf("A-1"));
    },
    lookMs: 3_600_000,
    keepAliveMs: 3_600_000,
    maxStreams,
    stop: stop.signal,
  });
  return { feed, reads: () => reads, stop };
}

/** The text of a stream up to and including its first `view` event. */
async function untilView(stream: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let text = "";
  while (!text.includes("event: view")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  reader.releaseLock();
  return text;
}

Deno.test("every stream is fed by one read: 50 pages cost one look, not 50", async () => {
  const { feed, reads, stop } = countingFeed(100);
  const streams = Array.from({ length: 50 }, () => feed.open()!);
  const texts = await Promise.all(streams.map(untilView));
  equal(reads(), 1, "one read for all");
  for (const t of texts) {
    match(t, /^retry: 2000\n\nevent: status\ndata: .*\n\nevent: view\ndata: /s);
  }
  // A page that comes later gets the latest view at once, without a read of its own.
  match(await untilView(feed.open()!), /event: view/);
  equal(reads(), 1);
  stop.abort();
});

Deno.test("requests asked while a read is in flight share it", async () => {
  const { feed, reads, stop } = countingFeed(1);
  const all = await Promise.all(Array.from({ length: 10 }, () => feed.status()));
  equal(reads(), 1);
  assert(all.every((r) => r.ok));
  stop.abort();
});

Deno.test("streams are capped; a closed one frees its place; stopping ends them all", async () => {
  const { feed, stop } = countingFeed(2);
  const a = feed.open()!;
  const b = feed.open()!;
  equal(feed.open(), undefined, "past the cap: no stream");
  await a.cancel();
  equal(feed.streams, 1);
  const c = feed.open();
  assert(c, "a place freed by a page that left");
  stop.abort();
  equal(feed.streams, 0);
  const reader = b.getReader();
  for (;;) if ((await reader.read()).done) break; // ends
});

Deno.test("the view escapes what agents print and draws the deadline as a meter", () => {
  const v = renderView(statusOf(`GAP-"1"<x>`));
  equal(v.totals, "1 lease(s): watched 1; outcomes: none");
  equal(v.counters, "1 run(s), 2 tick(s), 0 provider error(s), 0 reflection(s) spooled");
  equal(v.firstLive, 7);
  match(v.rows, /^<tr data-gap="GAP-&quot;1&quot;&lt;x&gt;" data-lease="7" data-state="running">/);
  match(v.rows, /<td class="last">WARN: &lt;b&gt;bold&lt;\/b&gt;<\/td>/);
  // A 90 s deadline reads 90s, not a rounded 1m.
  match(
    v.rows,
    /<td>45s \/ 90s<meter min="0" max="100" value="50" title="50% of the deadline"><\/meter><\/td>/,
  );
  deepEqual(v.charts["by-domain"], { width: 300, height: 34, svg: "" });
});

Deno.test("a stream whose client stopped reading is ended (its place and what it held given back); the others go on", async () => {
  const stop = new AbortController();
  let n = 0;
  const feed = new StatusFeed({
    read: () => Promise.resolve(ok(statusOf(`A-${n++}`))), // a change at every look
    lookMs: 1,
    keepAliveMs: 3_600_000,
    maxStreams: 10,
    stop: stop.signal,
    maxBehindBytes: 1,
  });
  const stuck = feed.open()!; // never read
  const reading = feed.open()!.getReader();
  let views = 0;
  while (views < 5) {
    const { value, done } = await reading.read();
    if (done) throw new Error("the reading stream ended");
    views += (new TextDecoder().decode(value).match(/event: view/g) ?? []).length;
  }
  equal(feed.streams, 1, "only the reading stream holds a place");
  const r = stuck.getReader();
  await rejects(async () => {
    for (;;) if ((await r.read()).done) break;
  }, /the client stopped reading/);
  stop.abort();
  await reading.cancel();
});

Deno.test("a read that throws becomes a failure event, not a crash", async () => {
  const stop = new AbortController();
  const feed = new StatusFeed({
    read: () => Promise.reject(new Error("disk gone")),
    lookMs: 3_600_000,
    keepAliveMs: 3_600_000,
    maxStreams: 1,
    stop: stop.signal,
  });
  const reader = feed.open()!.getReader();
  let text = "";
  while (!text.includes("event: failure")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  match(text, /event: failure\ndata: "cannot read the status: disk gone"/);
  stop.abort();
  await reader.cancel();
});
