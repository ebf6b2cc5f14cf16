/**
 * The cascade end to end, with real processes, git and SQLite: a gap whose
 * first arm is rate limited goes on to the next arm of its routing table
 * after the backoff, and both attempts have their reflection rows.
 */
import { deepEqual, equal, match, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { backlogOf, demoAgentCmd, pidsWithEnv, scratchRepo, watchArgs } from "../_e2e.ts";
import { runMain } from "../_helpers.ts";
import { GIT_ID } from "../../testkit/repo.ts";
import { queryReflections } from "../../lib/store/query.ts";
import { checkEvent } from "../../lib/watch/events.ts";

Deno.test("a rate-limited agent is retried on the next arm of its cascade; both attempts are reflected", async () => {
  await using s = await scratchRepo(backlogOf([["CASC-1"]]));
  await Deno.mkdir(join(s.repo, "docs", "dispatch"), { recursive: true });
  const demo = demoAgentCmd();
  await Deno.writeTextFile(
    join(s.repo, "docs", "dispatch", "routing.yaml"),
    [
      "backends:",
      `  busy: "${demo.replaceAll('"', '\\"')} --behaviour rate-limited"`,
      `  spare: "${demo.replaceAll('"', '\\"')} --behaviour ship"`,
      "default_candidates:",
      "  - { backend: busy, model: model-a, provider_pfx: P1, why: first }",
      "  - { backend: spare, model: model-b, why: second }",
      "",
    ].join("\n"),
  );
  const mark = crypto.randomUUID();
  const events = join(s.dir, "events.jsonl");
  const ran = await runMain(
    watchArgs(s, ["--events", events, "--learn", "fixed"], false),
    { env: { ...GIT_ID, CHUMP_TEST_MARK: mark } },
  );
  equal(ran.code, 0, `${ran.stdout}\n${ran.stderr}`);
  match(
    ran.stderr,
    /note: routing table .*routing\.yaml: 0 route\(s\); order fixed; scoreboard of 0 reflection\(s\); at most 3 attempt\(s\) per gap/,
  );
  const lines = ran.stdout.split("\n");
  match(lines.find((l) => l.startsWith("OUTCOME: CASC-1 killed"))!, /-- exit code 1$/);
  deepEqual(lines.filter((l) => /^(COOLDOWN|RETRY):/.test(l)), [
    "COOLDOWN: busy/model-a@P1 is rate limited: no new dispatch to it for 10s",
    "RETRY: CASC-1: attempt 1 on busy/model-a@P1 was rate_limited; the next arm of its cascade in 10s",
  ]);
  match(lines.find((l) => l.startsWith("OUTCOME: CASC-1 shipped"))!, /^OUTCOME: CASC-1 shipped/);
  // The summary counts gaps (one line, one shipped) and attempts apart.
  const summary = lines.slice(lines.indexOf("SUMMARY:"));
  equal(summary.filter((l) => l.startsWith("  CASC-1 ")).length, 1, summary.join("\n"));
  match(
    summary[1],
    /^ {2}CASC-1 shipped duration_s=\d+ pr=none \[after 1 earlier attempt\(s\): killed\]$/,
  );
  equal(summary[2], "shipped=1  ci_failed=0  stalled=0  killed=0  spawn_failures=0");
  equal(summary[3], "attempts: 2 for 1 gap(s): shipped=1  ci_failed=0  stalled=0  killed=1");

  const rows = queryReflections(s.db, { limit: 10 });
  if (!rows.ok) throw new Error(rows.error);
  const [second, first] = rows.value;
  equal(rows.value.length, 2);
  equal(first.outcome, "killed");
  deepEqual(first.notes.split("\n").slice(0, 7), [
    "exit code 1",
    "backend=busy",
    "model=model-a",
    "provider=P1",
    "attempt=1",
    "class=rate_limited",
    "lessons=0",
  ]);
  match(first.notes.split("\n")[7], /^ERROR: API Error: 429 /);
  equal(second.outcome, "shipped");
  // The run learned from its first attempt: the second's prompt carries the 429 line as a lesson.
  deepEqual(second.notes.split("\n").slice(0, 3), [
    "backend=spare",
    "model=model-b",
    "attempt=2",
  ]);
  match(second.notes.split("\n")[3], /^lessons=[1-9]\d*$/);

  const emitted = (await Deno.readTextFile(events)).trim().split("\n").map((l) => JSON.parse(l));
  for (const e of emitted) deepEqual(checkEvent(e), [], JSON.stringify(e));
  const requeued = emitted.find((e) => e.event === "requeued");
  deepEqual(
    { ...requeued, ts: "", run_id: "" },
    {
      event: "requeued",
      v: requeued.v,
      ts: "",
      run_id: "",
      gap_id: "CASC-1",
      lease_id: 1,
      attempt: 1,
      class: "rate_limited",
      arm: "busy/model-a@P1",
      wait_ms: 10_000,
    },
  );
  deepEqual(
    emitted.filter((e) => e.event === "dispatched").map((e) => [e.arm, e.attempt, e.backend]),
    [["busy/model-a@P1", 1, "busy"], ["spare/model-b", 2, "spare"]],
  );
  deepEqual(await pidsWithEnv(`CHUMP_TEST_MARK=${mark}`), []);
});

Deno.test("one run learns as it goes: once its first arm has failed gap after gap, the same run sends the next gaps to the other", async () => {
  const ids = Array.from({ length: 14 }, (_, i) => `LRN-${i + 1}`);
  await using s = await scratchRepo(backlogOf(ids.map((id) => [id])));
  await Deno.mkdir(join(s.repo, "docs", "dispatch"), { recursive: true });
  const demo = demoAgentCmd().replaceAll('"', '\\"');
  await Deno.writeTextFile(
    join(s.repo, "docs", "dispatch", "routing.yaml"),
    [
      "backends:",
      `  bad: "${demo} --behaviour fail"`,
      `  good: "${demo} --behaviour ship"`,
      "default_candidates:",
      "  - { backend: bad, why: the table's first }",
      "  - { backend: good, why: second }",
      "",
    ].join("\n"),
  );
  const ran = await runMain(
    watchArgs(s, ["--learn", "thompson", "--seed", "7", "--max-parallel", "1"], false),
    { env: GIT_ID },
  );
  equal(ran.code, 3, `${ran.stdout}\n${ran.stderr}`);
  match(ran.stderr, /order thompson \(seed 7; ships-per-hour; learning as it goes\)/);
  const rows = queryReflections(s.db, { limit: 100 });
  if (!rows.ok) throw new Error(rows.error);
  // Oldest first: the arm of each dispatch, in the order the run made them.
  const arms = rows.value.map((r) => r.backend).reverse();
  equal(arms.length, ids.length);
  equal(arms[0], "bad", "the table's order first: nothing was known at the start");
  // The table's first arm starts well ahead: without learning within the run, the other would
  // (almost) never be tried. With it, the second half of the run goes mostly to the arm that ships.
  const good = (part: string[]) => part.filter((a) => a === "good").length;
  const [early, late] = [arms.slice(0, 7), arms.slice(7)];
  assert(good(late) >= 4 && good(late) > good(early), arms.join(" "));
});
