/**
 * Repeated signals to the whole foreground process group (a terminal's
 * Ctrl-C pressed again and again, a SIGTERM to the job), swept over the delay
 * between them: whenever the second or third one lands (while `kill` or `ps`
 * helpers run, while the grace runs, while SIGKILL is sent), every agent is
 * ended, every agent gets its `killed` reflection, and the run exits 130.
 *
 * The orchestrator runs through the real `dispatch` task entry (narrow
 * permissions: it signals agents through the `kill` program) and leads its own
 * process group, as a terminal job does. The agents are stubborn (they ignore
 * SIGTERM) or leave a child in their group, and the kill grace is long, so
 * only a SIGKILL ends them early.
 */
import { equal, match, ok as assert } from "node:assert/strict";
import {
  backlogOf,
  marked,
  orchestrateInBackground,
  pidsWithEnv,
  reflectionRows,
  scratchRepo,
} from "../_e2e.ts";

/**
 * The whole sweep (`deno task test:sweep`, CHUMP_FULL_SWEEP=1) or, by
 * default, a representative handful of its points: one early (helpers just
 * started), one while `kill` and `ps` run, one in the grace, one late.
 */
const FULL = Deno.env.get("CHUMP_FULL_SWEEP") === "1";

/** Delays between two signals, in ms: 22 points from 1 to 60 (4 by default). */
const DELAYS = FULL
  ? [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20, 25, 30, 35, 40, 45, 50, 60]
  : [1, 5, 20, 60];

/** Sweep cases run at once: enough to keep the suite short, few enough for a 2-core machine. */
const CONCURRENCY = 4;

/**
 * The kill grace of a sweep run: long enough that in a run whose repeated
 * signal arrives, that signal (not the end of the grace) is what sends
 * SIGKILL; short enough to bound a run whose repeat was merged into the first
 * (signals a millisecond or two apart can reach the orchestrator as one: the
 * kernel and Deno keep one pending signal of a kind).
 */
const GRACE = "6s";

const IDS = ["SW-STUBBORN-1", "SW-HANG-CHILD-2"];

/** Run `work` over `items`, `limit` at a time; collect every failure instead of stopping at the first. */
async function pool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>) {
  const failures: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++];
      try {
        await work(item);
      } catch (e) {
        failures.push(`${JSON.stringify(item)}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
  equal(failures.length, 0, `failed cases:\n${failures.join("\n\n")}`);
}

/** How one sweep run goes. */
interface SweepCase {
  signal: "SIGINT" | "SIGTERM";
  count: number;
  delayMs: number;
  /** --kill-grace (default {@linkcode GRACE}). */
  grace?: string;
  /** More CLI arguments. */
  args?: string[];
  /** Wait for this line (once per agent) before signalling, instead of the agents' ready files. */
  waitFor?: RegExp;
  /** The reflection notes expected (default `interrupted by <signal>`). */
  notes?: RegExp;
}

/** One run: start, wait until every agent is ready, `count` signals `delayMs` apart, check the end. */
async function sweepCase(c: SweepCase): Promise<void> {
  await using s = await scratchRepo(backlogOf(IDS.map((id) => [id])));
  await using m = await marked();
  const bg = orchestrateInBackground(s, [
    "--max-parallel",
    String(IDS.length),
    "--kill-grace",
    c.grace ?? GRACE,
    ...(c.args ?? []),
  ], m.env);
  if (c.waitFor) await bg.waitFor(c.waitFor, IDS.length);
  else await Promise.all(IDS.map((id) => m.ready(id)));
  for (let i = 0; i < c.count; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, c.delayMs));
    bg.signal(c.signal);
  }
  const ran = await bg.finished();
  const where = `(${c.count} x ${c.signal}, ${c.delayMs} ms apart)\n${ran.stdout}\n${ran.stderr}`;
  equal(ran.code, 130, `exit code ${where}`);
  const left = await pidsWithEnv(m.mark);
  equal(left.length, 0, `agents left running: ${left.join(", ")} ${where}`);
  const rows = reflectionRows(s.db);
  for (const id of IDS) {
    const row = rows.get(id);
    assert(row, `no reflection for ${id} ${where}`);
    match(row.observed, /^outcome=killed /, where);
    match(row.directive, c.notes ?? new RegExp(` notes=interrupted by ${c.signal}$`), where);
  }
  assert(!/did not go away/.test(ran.stderr), where);
}

for (const count of [2, 3]) {
  Deno.test(`${count} SIGINTs to the whole process group, 1-60 ms apart (${DELAYS.length} delays), never leave an agent running`, async () => {
    await pool(DELAYS, CONCURRENCY, (delayMs) => sweepCase({ signal: "SIGINT", count, delayMs }));
  });
}

/** Fewer points for the slower sweeps (a repeat within 200 ms counts as one SIGTERM, so the grace runs out). */
const FEW_DELAYS = FULL ? [1, 4, 12, 30, 60] : [4, 30];

Deno.test("2 and 3 SIGTERMs to the whole process group never leave an agent running", async () => {
  const cases = [2, 3].flatMap((count) => FEW_DELAYS.map((delayMs) => ({ count, delayMs })));
  await pool(
    cases,
    CONCURRENCY,
    ({ count, delayMs }) => sweepCase({ signal: "SIGTERM", count, delayMs, grace: "2s" }),
  );
});

Deno.test("Ctrl-C twice while a deadline kill waits out a long grace: SIGKILL, reflections, exit 130", async () => {
  await pool(FEW_DELAYS, CONCURRENCY, (delayMs) =>
    sweepCase({
      signal: "SIGINT",
      count: 2,
      delayMs,
      args: ["--deadline", "s=1s"],
      waitFor: /^KILLING: SW-/,
      notes: / notes=soft-deadline exceeded \(1s x 2\)$/,
    }));
});
