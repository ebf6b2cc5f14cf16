/**
 * A run's learning as it goes (learn/learner.ts): an outcome of the run
 * counts for its next dispatch (scoreboard, deadlines, lessons); the
 * heartbeat's re-read brings in what other orchestrators recorded, at most
 * every refresh period, and a failed re-read keeps what was known.
 */
import { deepEqual, equal, ok as assert } from "node:assert/strict";
import { Learned, type LearnRow } from "../lib/learn/learner.ts";
import { DEFAULT_DEADLINES } from "../lib/util/duration.ts";
import { fail, ok } from "../lib/util/result.ts";

const row = (gapId: string, outcome: string, notes: string, durationS = 300): LearnRow => ({
  gapId,
  outcome,
  notes,
  createdAt: "",
  effort: "s",
  domain: "auto",
  durationS,
});

Deno.test("each outcome of the run counts for its next dispatch: scores, deadlines, lessons", () => {
  const learned = new Learned({ rows: [], configured: DEFAULT_DEADLINES, now: () => 0 });
  equal(learned.scores.rows, 0);
  equal(learned.deadlines().of("s", "auto"), DEFAULT_DEADLINES.s);
  deepEqual(learned.lessons("auto"), []);
  for (let i = 0; i < 10; i++) learned.record(row(`AUTO-${i}`, "shipped", "backend=claude", 400));
  learned.record(row("AUTO-10", "killed", "exit code 1\nbackend=claude\nERROR: cargo test failed"));
  equal(learned.scores.rows, 11);
  equal(Math.round(learned.scores.arm("claude").successes), 10);
  equal(learned.deadlines().of("s", "auto"), 600_000, "1.5 x p90 of 400 s");
  for (let i = 11; i < 14; i++) learned.record(row(`AUTO-${i}`, "shipped", "backend=groq", 900));
  equal(learned.deadlines().earlyEnd("s", "auto", "claude"), 480_000, "its own arm x effort");
  assert(learned.deadlines().earlyEnd("s", "auto") !== 480_000, "the effort's differs");
  assert(learned.lessons("auto").some((l) => l.includes("cargo test failed")));
});

Deno.test("the heartbeat's re-read brings in other orchestrators' rows, at most every refresh period", async () => {
  let now = 1_000;
  let reads = 0;
  let fleet: LearnRow[] = [row("A-1", "shipped", "backend=groq")];
  const warnings: string[] = [];
  const learned = new Learned({
    rows: [],
    configured: DEFAULT_DEADLINES,
    now: () => now,
    refreshMs: 30_000,
    reload: () => {
      reads++;
      return Promise.resolve(fleet.length > 0 ? ok(fleet) : fail("the ledger is away"));
    },
    warn: (m) => warnings.push(m),
  });
  await learned.refresh();
  equal(reads, 0, "not yet: read at the start");
  now += 30_000;
  await learned.refresh();
  equal(reads, 1);
  equal(learned.scores.arm("groq").successes, 1, "another host's ship counts");
  fleet = [];
  now += 30_000;
  await learned.refresh();
  equal(reads, 2);
  equal(learned.scores.arm("groq").successes, 1, "a failed re-read keeps what was known");
  deepEqual(warnings, ["the ledger is away; learning from what was read before"]);
});

Deno.test("an outcome recorded while a re-read is under way counts once, whether or not the read saw it", async () => {
  let now = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const mine = row("A-2", "shipped", "backend=claude");
  const theirs = row("B-1", "shipped", "backend=groq");
  const late = row("A-3", "shipped", "backend=claude");
  const learned = new Learned({
    rows: [],
    configured: DEFAULT_DEADLINES,
    now: () => now,
    refreshMs: 1000,
    // The read sees the other host's row and `mine` (written before it looked), not `late`.
    reload: async () => {
      await gate;
      return ok([{ ...mine }, theirs]);
    },
  });
  now = 1000;
  const reading = learned.refresh();
  learned.record(mine);
  learned.record(late);
  equal(learned.refresh(), reading, "one read at a time");
  release();
  await reading;
  equal(Math.round(learned.scores.arm("claude").successes), 2, "mine once, late kept");
  equal(learned.scores.arm("groq").successes, 1);
  equal(learned.rows.length, 3);
});

Deno.test("with --learn-window, an outcome recorded while a re-read is under way is still learned from", async () => {
  let now = Date.parse("2026-12-06T12:00:00Z");
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const learned = new Learned({
    rows: [],
    configured: DEFAULT_DEADLINES,
    now: () => now,
    windowMs: 3_600_000,
    refreshMs: 1000,
    reload: async () => {
      await gate;
      return ok([{ ...row("B-1", "shipped", "backend=groq"), createdAt: "2026-12-06 12:00:00" }]);
    },
  });
  now += 1000;
  const reading = learned.refresh();
  // Recorded by this run while the read was out, not in what it read.
  learned.record(row("A-9", "shipped", "backend=claude"));
  release();
  await reading;
  equal(Math.round(learned.scores.arm("claude").successes), 1, "the run's own outcome kept");
  equal(Math.round(learned.scores.arm("groq").successes), 1, "the read's row, in the window");
  equal(learned.rows.length, 2);
});
