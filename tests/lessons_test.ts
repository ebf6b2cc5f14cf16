/**
 * Adaptive deadlines and lessons: the pure rules, the `lessons` command on a
 * real DB, and a real run whose agent's prompt carries its domain's lessons
 * (`lessons=<n>` in the notes; `--no-lessons` for the other arm of an A/B).
 */
import { deepEqual, equal, match, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { adaptiveDeadlines, deadlinesLine, percentile } from "../lib/learn/deadlines.ts";
import { lessonsTable, normaliseFailure, promptLessons } from "../lib/learn/lessons.ts";
import { DEFAULT_DEADLINES } from "../lib/util/duration.ts";
import { queryReflections } from "../lib/store/query.ts";
import { backlogOf, orchestrate, scratchRepo } from "./_e2e.ts";
import { runMain } from "./_helpers.ts";

const shippedRow = (effort: string, domain: string, durationS: number) => ({
  effort,
  domain,
  outcome: "shipped",
  durationS,
});

Deno.test("deadlines adapt per effort (per domain x effort, per arm x effort) from 10 shipped rows; never past the configured one; else configured", () => {
  equal(percentile([5, 1, 4, 2, 3], 0.9), 5);
  const rows = [
    // s: 10 shipped, p90 = 900 s -> 1.5 x 900 = 22.5 min, under the cap of 40 min.
    ...Array.from({ length: 10 }, (_, i) => shippedRow("s", "auto", 100 * i)),
    // m: 9 shipped only -> configured.
    ...Array.from({ length: 9 }, () => shippedRow("m", "auto", 60)),
    // xs: 10 quick ones -> the 5 min floor.
    ...Array.from({ length: 10 }, () => shippedRow("xs", "cog", 30)),
    // l: 10 slow ones -> the cap, the configured 180 min.
    ...Array.from({ length: 10 }, () => shippedRow("l", "cog", 6 * 3600)),
    // failures and unknown durations never count.
    { effort: "m", domain: "auto", outcome: "killed", durationS: 99_999 },
    { effort: "m", domain: "auto", outcome: "shipped", durationS: null },
  ];
  const d = adaptiveDeadlines(rows, DEFAULT_DEADLINES);
  equal(d.of("s", "other"), 1.5 * 800 * 1000, "p90 of 0..900 by 100 is 800");
  equal(d.of("m", "auto"), DEFAULT_DEADLINES.m);
  equal(d.of("xs", "zzz"), 5 * 60_000);
  equal(d.of("l", "cog"), DEFAULT_DEADLINES.l, "never longer than the configured deadline");
  equal(d.of("S", "auto"), 1.5 * 800 * 1000, "efforts compare case-insensitively");
  // A domain x effort cell with its own 10 shipped rows gets its own deadline.
  const cell = adaptiveDeadlines([
    ...rows,
    ...Array.from({ length: 10 }, () => shippedRow("s", "infra", 1200)),
  ], DEFAULT_DEADLINES);
  equal(cell.of("s", "infra"), 20 * 60_000, "1.5 x 1200 s is over the configured 20 min");
  // Early ends where a deadline adapted: 1.2 x p90 (at least the 5 min floor); none elsewhere.
  equal(d.earlyEnd("s", "other"), 1.2 * 800 * 1000);
  equal(d.earlyEnd("m", "auto"), undefined);
  equal(d.earlyEnd("xs", "zzz"), 5 * 60_000);
  // An arm x effort cell with its own 10 shipped rows comes before the domain's.
  const armed = adaptiveDeadlines([
    ...rows,
    ...Array.from({ length: 10 }, () => ({ ...shippedRow("s", "auto", 400), arm: "claude" })),
  ], DEFAULT_DEADLINES);
  equal(armed.of("s", "auto", "claude"), 10 * 60_000, "1.5 x 400 s");
  equal(armed.earlyEnd("s", "auto", "claude"), 8 * 60_000, "1.2 x 400 s");
  equal(armed.of("s", "auto", "groq"), armed.of("s", "auto"), "another arm: the domain x effort's");
  assert(armed.of("s", "auto") !== armed.of("s", "auto", "claude"));
});

Deno.test("the deadlines line says where each deadline came from", () => {
  const rows = Array.from({ length: 10 }, () => shippedRow("xs", "cog", 30));
  const line = deadlinesLine(adaptiveDeadlines(rows, DEFAULT_DEADLINES));
  match(
    line,
    /^deadlines: xs=5m \(p90 of 10 shipped x 1\.5, at the 5 min floor; idle ends at 5m\), s=20m \(configured \(0 shipped, fewer than 10\)\)/,
  );
  match(line, /cog\/xs=5m \(p90 of 10 shipped x 1\.5, at the 5 min floor; idle ends at 5m\)$/);
});

Deno.test("failure lines fold numbers, paths and hashes; lessons group by domain x effort x arm", () => {
  equal(
    normaliseFailure(
      "ERROR: test failed in src/learn/policy.rs:88:9 after 12.5s (commit 3f9a2c1d)",
    ),
    "ERROR: test failed in <path> after <n>s (commit <hash>)",
  );
  equal(normaliseFailure("FAIL: cannot open /tmp/x/y.txt"), "FAIL: cannot open <path>");
  equal(
    normaliseFailure("error[E0599]: no method named `foo` found"),
    "error[E0599]: no method named `foo` found",
  );
  const row = (gapId: string, outcome: string, durationS: number, notes: string) => ({
    gapId,
    outcome,
    durationS,
    notes,
    effort: "s",
    domain: gapId.split("-")[0].toLowerCase(),
  });
  const rows = [
    row(
      "AUTO-1",
      "killed",
      100,
      "exit code 1\nbackend=claude\nattempt=1\nERROR: cargo test: 3 failed in src/a.rs",
    ),
    row(
      "AUTO-2",
      "killed",
      200,
      "exit code 2\nbackend=claude\nERROR: cargo test: 5 failed in src/b.rs",
    ),
    row("AUTO-3", "shipped", 300, "backend=claude"),
    row("AUTO-4", "stalled", 400, "exited 0 without a PR\nbackend=chump-local\nmodel=m"),
  ];
  const table = lessonsTable(rows);
  deepEqual(
    table.map((c) => [c.domain, c.effort, c.arm, c.dispatches, c.shipped, c.killed, c.stalled]),
    [
      ["auto", "s", "chump-local/m", 1, 0, 0, 1],
      ["auto", "s", "claude", 3, 1, 2, 0],
    ],
  );
  deepEqual(table[1].failures, [
    { line: "ERROR: cargo test: <n> failed in <path>", count: 2 },
    { line: "exit code <n>", count: 2 },
  ]);
  equal(table[1].medianS, 200);
  equal(table[1].p90S, 300);
  const block = promptLessons(rows, "auto");
  deepEqual(block, [
    "--- lessons from earlier dispatches (chump-orchestrator) ---",
    "Earlier dispatches of auto gaps: 1 of 4 shipped (25%).",
    "Their most frequent failures, avoid them:",
    "- (2x) ERROR: cargo test: <n> failed in <path>",
    "- (2x) exit code <n>",
    "- (1x) exited <n> without a PR",
    "--- end of lessons ---",
  ]);
  deepEqual(promptLessons(rows, "cog"), [], "no record: no block");
  const many = Array.from(
    { length: 30 },
    (_, i) => row(`AUTO-${i}`, "killed", 1, `backend=claude\nERROR kind ${"x".repeat(i)}`),
  );
  assert(promptLessons(many, "auto").length <= 10, "at most 10 lines");
});

Deno.test("a run's prompts carry their domain's lessons (lessons=<n> in the notes); --no-lessons turns them off; 'lessons' reads the DB", async () => {
  await using s = await scratchRepo(backlogOf([["LS-FAIL-1"], ["LS-2"], ["LS-3"]]));
  const only = async (id: string) => {
    const path = join(s.dir, `${id}.yaml`);
    await Deno.writeTextFile(path, backlogOf([[id]]));
    return ["--backlog", path];
  };
  const first = await orchestrate(s, await only("LS-FAIL-1"));
  equal(first.code, 3, first.stderr);
  const second = await orchestrate(s, await only("LS-2"));
  equal(second.code, 0, second.stderr);
  const logs = join(s.repo, "sessions", "dispatch-logs");
  const prompt = await Deno.readTextFile(join(logs, "2-ls-2.prompt"));
  match(
    prompt,
    /^You are an autonomous coding agent dispatched by chump-orchestrator to close gap LS-2\./,
  );
  match(
    prompt,
    /\n\n--- lessons from earlier dispatches \(chump-orchestrator\) ---\nEarlier dispatches of ls gaps: 0 of 1 shipped \(0%\)\.\nTheir most frequent failures, avoid them:\n- \(1x\) ERROR: demo failure for LS-FAIL-<n>\n- \(1x\) exit code <n>\n--- end of lessons ---\n?$/,
  );
  const third = await orchestrate(s, [...await only("LS-3"), "--no-lessons"]);
  equal(third.code, 0, third.stderr);
  equal((await Deno.readTextFile(join(logs, "3-ls-3.prompt"))).includes("lessons"), false);
  const rows = queryReflections(s.db, { limit: 10 });
  assert(rows.ok);
  const notes = new Map(rows.value.map((r) => [r.gapId, r.notes.split("\n")]));
  deepEqual(notes.get("LS-FAIL-1")!.slice(0, 2), [
    "exit code 1",
    `backend=${notes.get("LS-FAIL-1")![1].slice(8)}`,
  ]);
  equal(
    notes.get("LS-FAIL-1")!.some((l) => l.startsWith("lessons=")),
    false,
    "no record, no table: no line",
  );
  equal(notes.get("LS-2")!.at(-1), "lessons=6");
  equal(notes.get("LS-3")!.at(-1), "lessons=0", "--no-lessons says so, for an A/B");

  const text = await runMain(["lessons", "--repo-root", s.repo]);
  equal(text.code, 0, text.stderr);
  const lines = text.stdout.trimEnd().split("\n");
  match(
    lines[0],
    /^domain +effort +arm +dispatches +shipped +median +p90 +killed +stalled +spent +\$\/shipped$/,
  );
  match(lines[1], /^ls +s +custom:\S+ +3 +2 \(67%\) +\S+ +\S+ +1 +0 +- +-$/);
  assert(lines.includes("  (1x) ERROR: demo failure for LS-FAIL-<n>"), text.stdout);
  const json = JSON.parse((await runMain(["lessons", "--repo-root", s.repo, "--json"])).stdout);
  equal(json[0].dispatches, 3);
});

Deno.test("--learn-window narrows the lessons and the deadlines too: a prompt is not told a failure line older than the window", async () => {
  await using s = await scratchRepo(backlogOf([["LW-1"], ["LW-2"]]));
  const { createSqliteWriter } = await import("../lib/store/writer.ts");
  const { DatabaseSync } = await import("node:sqlite");
  await Deno.mkdir(join(s.repo, "sessions"), { recursive: true });
  const writer = createSqliteWriter(s.db);
  for (let i = 0; i < 3; i++) {
    await writer.write({
      gapId: `LW-OLD-${i}`,
      effort: "s",
      domain: "lw",
      outcome: "killed",
      durationS: 60,
      parallelSiblings: 0,
      notes: "exit code 1\nbackend=claude\nERROR: old model could not compile",
    });
  }
  writer.close();
  const db = new DatabaseSync(s.db);
  db.exec("UPDATE chump_reflections SET created_at = datetime('now', '-400 days')");
  db.close();
  const promptOf = async (gap: string) => {
    const logs = join(s.repo, "sessions", "dispatch-logs");
    const name = [...Deno.readDirSync(logs)].map((e) => e.name)
      .find((n) => n.endsWith(`-${gap.toLowerCase()}.prompt`))!;
    return await Deno.readTextFile(join(logs, name));
  };
  const windowed = await orchestrate(s, ["--max-total", "1", "--learn-window", "30d"]);
  equal(windowed.code, 0, windowed.stderr);
  const first = windowed.stdout.match(/^DISPATCHED: (\S+)/m)![1];
  equal((await promptOf(first)).includes("old model could not compile"), false);
  // Without the window the same history is told (the test would see it).
  const all = await orchestrate(s, ["--max-total", "1"]);
  const second = all.stdout.match(/^DISPATCHED: (\S+)/m)![1];
  match(await promptOf(second), /\(3x\) ERROR: old model could not compile/);
});
