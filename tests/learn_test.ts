/**
 * The learning loop's decisions: the routing table (good, malformed, Chump's
 * two real files), failure classes from real-shaped stderr lines, backoff and
 * cool-downs on an injected clock, the scoreboard from a real SQLite DB, and
 * exact Thompson orders with seeds.
 */
import { deepEqual, equal, match, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { backoffMs, classify, Cooldowns } from "../lib/learn/classify.ts";
import { Cascade } from "../lib/learn/cascade.ts";
import { loadLearning } from "../lib/learn/load.ts";
import { orderCascade, posterior, sampleBeta, seededRandom } from "../lib/learn/policy.ts";
import { armOf, loadRouting, parseRouting, routeGap, taskClassOf } from "../lib/learn/routing.ts";
import { scoreboardOf } from "../lib/learn/scoreboard.ts";
import { Learned } from "../lib/learn/learner.ts";
import { DEFAULT_DEADLINES } from "../lib/util/duration.ts";
import { createSqliteWriter } from "../lib/store/writer.ts";
import { armAgent } from "../lib/dispatch/agent.ts";
import { ROOT, runMain, scratch } from "./_helpers.ts";

/** Chump's own routing tables, two versions (copied from shared/fixtures/routing). */
const FIXTURES = join(ROOT, "tests", "fixtures", "routing");
const V1 = join(FIXTURES, "chump-routing-v1.yaml");
const INFRA471 = join(FIXTURES, "chump-routing-infra471.yaml");

const gap = (id: string, priority: string, effort: string) => ({ id, priority, effort });

/** A weighted record within half a row of whole counts. */
function near(
  got: { successes: number; failures: number },
  want: { successes: number; failures: number },
): void {
  const close = Math.abs(got.successes - want.successes) < 0.5 &&
    Math.abs(got.failures - want.failures) < 0.5;
  assert(close, `${JSON.stringify(got)} is not about ${JSON.stringify(want)}`);
}
const arms = (r: { candidates: { backend: string; model?: string; providerPfx?: string }[] }) =>
  r.candidates.map(armOf);

const GROQ = "chump-local/openai/gpt-oss-120b@GROQ";
const TOGETHER = "chump-local/meta-llama/Llama-3.3-70B-Instruct-Turbo-Free@TOGETHER";

Deno.test("Chump's v1 table routes as its comments say", async () => {
  const t = await loadRouting(V1);
  assert(t.ok, t.ok ? "" : t.error);
  const table = t.value;
  deepEqual(arms(routeGap(gap("AUTO-1", "P2", "xs"), table)), [GROQ, TOGETHER], "xs: cheap models");
  deepEqual(arms(routeGap(gap("AUTO-2", "P1", "l"), table)), ["claude"], "P1 large: frontier");
  deepEqual(
    arms(routeGap(gap("AUTO-3", "P2", "xl"), table)),
    [TOGETHER, GROQ, "claude"],
    "P2 xl: defaults",
  );
  deepEqual(arms(routeGap(gap("EVAL-074", "P2", "s"), table)), ["claude"], "research");
  deepEqual(arms(routeGap(gap("RESEARCH-1", "P3", "m"), table)), ["claude"], "research");
  deepEqual(arms(routeGap(gap("AUTO-4", "P2", "m"), table)), [TOGETHER, GROQ, "claude"]);
  equal(
    routeGap(gap("AUTO-2", "P1", "l"), table).route?.why,
    "high-stakes large work needs frontier reasoning",
  );
  equal(routeGap(gap("AUTO-4", "P2", "m"), table).route, undefined, "no route: the defaults");
});

Deno.test("Chump's INFRA-471 table routes as its comments say; a route's model_class is its claude arms' model", async () => {
  const t = await loadRouting(INFRA471);
  assert(t.ok, t.ok ? "" : t.error);
  const table = t.value;
  deepEqual(table.warnings, []);
  deepEqual(
    arms(routeGap(gap("COG-035", "P2", "xs"), table)),
    ["claude/sonnet"],
    "cognition always claude",
  );
  deepEqual(arms(routeGap(gap("EVAL-1", "P2", "xs"), table)), ["claude/sonnet"], "research");
  deepEqual(arms(routeGap(gap("AUTO-1", "P0", "l"), table)), ["claude/sonnet"], "any l/xl");
  deepEqual(
    arms(routeGap(gap("INFRA-9", "P2", "m"), table)),
    ["claude/sonnet", GROQ, TOGETHER],
    "m",
  );
  deepEqual(arms(routeGap(gap("AUTO-2", "P1", "xs"), table)), [GROQ, TOGETHER], "xs");
  deepEqual(arms(routeGap(gap("AUTO-3", "P1", "s"), table)), [GROQ, TOGETHER], "s, explicit");
  deepEqual(arms(routeGap(gap("AUTO-4", "P1", ""), table)), [TOGETHER, GROQ, "claude"], "none");
  equal(routeGap(gap("INFRA-9", "P2", "m"), table).taskClass, "coord");
  equal(routeGap(gap("COG-035", "P2", "xs"), table).route?.line, 37);
});

Deno.test("task classes come from the id prefix; the file's task_classes come first", () => {
  equal(taskClassOf("EVAL-1"), "research");
  equal(taskClassOf("RESEARCH-1"), "research");
  equal(taskClassOf("COG-1"), "cognition");
  equal(taskClassOf("INFRA-1"), "coord");
  equal(taskClassOf("AUTO-1"), "");
  const t = parseRouting(
    "task_classes: { 'AUTO-': research, 'COG-': coord }\ndefault_candidates: [{ backend: claude }]\n",
    "r.yaml",
  );
  assert(t.ok);
  equal(taskClassOf("AUTO-1", t.value), "research");
  equal(taskClassOf("COG-1", t.value), "coord");
});

Deno.test("a later version of the format loads: unknown candidate keys are kept out of the way, unknown match keys never match", () => {
  const t = parseRouting(
    [
      "version: 3",
      "default_candidates:",
      "  - { backend: claude, model_class: opus, cost_hint: 3 }",
      "routes:",
      "  - match: { effort: s, repo: other }",
      "    candidates: [{ backend: chump-local }]",
      "  - match: { effort: s }",
      "    model_class: haiku",
      "    candidates: [{ backend: mine, model: m1 }]",
      "backends:",
      "  mine: my-agent --model {model} {prompt}",
    ].join("\n"),
    "r.yaml",
  );
  assert(t.ok, t.ok ? "" : t.error);
  deepEqual(t.value.warnings, [
    "r.yaml:5: routes[0]: match: unknown key(s) repo: this route never matches",
  ]);
  deepEqual(arms(routeGap(gap("A-1", "P1", "s"), t.value)), ["mine/m1"]);
  deepEqual(t.value.backends, { mine: { command: "my-agent --model {model} {prompt}" } });
});

Deno.test("a backends: entry can name what its agent speaks; an unknown format is an error at its line", () => {
  const table = (format: string) =>
    parseRouting(
      [
        "default_candidates:",
        "  - { backend: cx, model: gpt-5-codex }",
        "backends:",
        `  cx: { command: "codex exec --json -m {model}", format: ${format} }`,
      ].join("\n"),
      "r.yaml",
    );
  const t = table("codex-json");
  assert(t.ok, t.ok ? "" : t.error);
  deepEqual(t.value.backends, {
    cx: { command: "codex exec --json -m {model}", format: "codex-json" },
  });
  const agent = armAgent({ backend: "cx", model: "gpt-5-codex" }, "A-1", t.value.backends);
  assert(agent.ok);
  deepEqual(agent.value.argv, ["codex", "exec", "--json", "-m", "gpt-5-codex"]);
  equal(agent.value.format, "codex-json");
  const bad = table("jsonl");
  equal(bad.ok, false);
  if (!bad.ok) {
    equal(
      bad.error,
      "r.yaml:4: backends: cx: format must be one of claude-stream, codex-json, plain",
    );
  }
});

Deno.test("a malformed routing table is one line with file:line", () => {
  const cases: [string, string][] = [
    ["routes: 3\n", "r.yaml:1: routes: must be a list"],
    [
      "default_candidates:\n  - { model: x }\n",
      "r.yaml:2: default_candidates[0]: backend: missing",
    ],
    [
      "default_candidates:\n  - { backend: claude }\n  - { backend: gpt9 }\n",
      "r.yaml:3: default_candidates[1]: unknown backend 'gpt9' (claude, chump-local, or a name under backends:)",
    ],
    [
      "routes:\n  - match: { effort: s }\n    candidates: []\n",
      "r.yaml:2: routes[0].candidates: must be a non-empty list of candidates",
    ],
    [
      "routes:\n  - match: [s]\n    candidates: [{ backend: claude }]\n",
      "r.yaml:2: routes[0]: match: must be a mapping",
    ],
    ["default_candidates: [{ backend: claude }\n", "r.yaml:2: not valid YAML"],
    ["{}\n", "r.yaml:1: no default_candidates and no routes: nothing to dispatch to"],
  ];
  for (const [text, expected] of cases) {
    const r = parseRouting(text, "r.yaml");
    equal(r.ok, false, text);
    if (!r.ok) assert(r.error.startsWith(expected), `${r.error}\n  expected ${expected}`);
    if (!r.ok) equal(r.error.includes("\n"), false);
  }
});

Deno.test("failure classes from real-shaped stderr lines", () => {
  const c = (reason: string, ...tail: string[]) => classify("killed", reason, tail);
  equal(
    c("exit code 1", 'ERROR: API Error: 429 {"type":"error","error":{"type":"rate_limit_error"}}'),
    "rate_limited",
  );
  equal(
    c(
      "exit code 1",
      'ERROR: API Error: 529 {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
    ),
    "rate_limited",
  );
  equal(c("exit code 1", "Error: Claude AI usage limit reached|1764864000"), "rate_limited");
  equal(
    c(
      "exit code 1",
      "ERROR groq: Rate limit reached for model `openai/gpt-oss-120b` in organization on tokens per minute (TPM)",
    ),
    "rate_limited",
  );
  equal(
    c("exit code 1", "ERROR: insufficient_quota: You exceeded your current quota"),
    "rate_limited",
  );
  equal(c("exit code 1", "ERROR: request failed: connect ECONNRESET 104.18.32.7:443"), "transient");
  equal(c("exit code 1", "ERROR: API Error: 502 Bad Gateway"), "transient");
  equal(c("exit code 1", "FAIL: HTTP 503 Service Unavailable from api.together.xyz"), "transient");
  equal(c("exit code 1", "error: connection reset by peer"), "transient");
  equal(c("soft-deadline exceeded (1200s x 2)", "WARN: still thinking"), "timeout");
  equal(c("idle for 5m"), "timeout");
  equal(classify("stalled", "PR #12 still open", []), "timeout");
  equal(classify("stalled", "exited 0 without a PR", []), "no_pr");
  equal(c("exit code 1", "ERROR: cargo test failed: 3 tests failed"), "agent_error");
  equal(classify("ci_failed", "PR #7 closed without merge", []), "agent_error");
  equal(classify("shipped", "", ["ERROR 429"]), undefined);
  equal(c("interrupted by SIGINT", "ERROR 429"), undefined);
});

Deno.test("backoff doubles from 10 s to at most 5 min; a rate-limited arm cools down fleet-wide until a success", () => {
  deepEqual([1, 2, 3, 4, 5, 6, 7].map(backoffMs), [10e3, 20e3, 40e3, 80e3, 160e3, 300e3, 300e3]);
  const cd = new Cooldowns();
  let now = 1_000_000;
  equal(cd.coolingUntil("a", now), undefined);
  equal(cd.hit("a", now), now + 10_000);
  equal(cd.coolingUntil("a", now + 9_999), now + 10_000);
  equal(cd.coolingUntil("a", now + 10_000), undefined, "over once the wait is");
  equal(cd.coolingUntil("b", now), undefined, "per arm");
  now += 10_000;
  equal(cd.hit("a", now), now + 20_000, "a second hit waits twice as long");
  cd.success("a");
  equal(cd.coolingUntil("a", now), undefined);
  equal(cd.hit("a", now), now + 10_000, "a success resets the wait");
});

Deno.test("Beta draws follow their means; a seed fixes the sequence", () => {
  const random = seededRandom(42);
  const draws = Array.from({ length: 4000 }, () => sampleBeta(9, 3, random));
  const mean = draws.reduce((a, b) => a + b, 0) / draws.length;
  assert(Math.abs(mean - 0.75) < 0.02, `mean ${mean}`);
  assert(draws.every((d) => d > 0 && d < 1));
  const small = Array.from({ length: 4000 }, () => sampleBeta(0.5, 0.5, random));
  assert(small.every((d) => d >= 0 && d <= 1));
  deepEqual(
    Array.from({ length: 3 }, seededRandom(7)),
    Array.from({ length: 3 }, seededRandom(7)),
  );
});

Deno.test("the scoreboard from a real SQLite DB, and exact Thompson orders with seeds", async () => {
  await using dir = await scratch("chump-learn-");
  const db = join(dir.path, "sessions", "chump_memory.db");
  const writer = createSqliteWriter(db);
  const write = (gapId: string, outcome: string, notes: string) =>
    writer.write({
      gapId,
      effort: "s",
      domain: gapId.split("-")[0].toLowerCase(),
      outcome: outcome as "shipped",
      durationS: 60,
      parallelSiblings: 0,
      notes,
    });
  // GROQ ships coord work 8 times in 10; TOGETHER 1 in 10; claude has no record.
  for (let i = 0; i < 10; i++) {
    await write(
      `INFRA-${i}`,
      i < 8 ? "shipped" : "killed",
      "exit code 0\nbackend=chump-local\nmodel=openai/gpt-oss-120b\nprovider=GROQ",
    );
    await write(
      `INFRA-${10 + i}`,
      i < 1 ? "shipped" : "killed",
      `exit code 1\nbackend=chump-local\nmodel=meta-llama/Llama-3.3-70B-Instruct-Turbo-Free\nprovider=TOGETHER`,
    );
  }
  // Odd rows never count and never crash it: no backend line, a strange outcome.
  await write("INFRA-99", "shipped", "no backend here");
  await write("INFRA-98", "exploded", "backend=claude");
  // A different task class: GROQ fails research.
  for (let i = 0; i < 6; i++) {
    await write(
      `EVAL-${i}`,
      "killed",
      "backend=chump-local\nmodel=openai/gpt-oss-120b\nprovider=GROQ",
    );
  }
  writer.close();

  const l = await loadLearning({ repoRoot: dir.path, db, routing: INFRA471 });
  assert(l.ok, l.ok ? "" : l.error);
  const { learned, table } = l.value;
  const scoreboard = learned.scores;
  equal(scoreboard.rows, 26);
  // Old evidence fades per arm (half after 150 newer rows of it): these counts are nearly whole.
  near(scoreboard.cell(GROQ, "coord"), { successes: 8, failures: 2 });
  near(scoreboard.cell(GROQ, "research"), { successes: 0, failures: 6 });
  near(scoreboard.arm(GROQ), { successes: 8, failures: 8 });
  deepEqual(scoreboard.arm("claude/sonnet"), { successes: 0, failures: 0 });

  const routed = routeGap(gap("INFRA-50", "P2", "m"), table!);
  deepEqual(arms(routed), ["claude/sonnet", GROQ, TOGETHER]);
  const fixed = orderCascade(
    routed.candidates,
    routed.taskClass,
    scoreboard,
    "fixed",
    seededRandom(1),
  );
  deepEqual(fixed.map((r) => r.arm), ["claude/sonnet", GROQ, TOGETHER], "fixed: the file's order");
  const order = (seed: number) =>
    orderCascade(routed.candidates, routed.taskClass, scoreboard, "thompson", seededRandom(seed));
  deepEqual(order(3).map((r) => r.arm), order(3).map((r) => r.arm), "a seed fixes the order");
  // The table's first arm starts ahead; GROQ's 8 of 10 coord ships earn it the lead now and
  // then (exploration where the evidence says it may pay); TOGETHER's 1 in 10 almost never.
  const firsts = Array.from({ length: 400 }, (_, seed) => order(seed)[0].arm);
  const count = (arm: string) => firsts.filter((a) => a === arm).length;
  assert(count("claude/sonnet") > 200 && count("claude/sonnet") < 380, `${count("claude/sonnet")}`);
  assert(count(GROQ) > 20, `GROQ first ${count(GROQ)} times in 400`);
  assert(count(TOGETHER) < 8, `TOGETHER first ${count(TOGETHER)} times in 400`);
  const ranked = order(1);
  deepEqual(ranked.find((r) => r.arm === GROQ)!.basis, "task class");
  deepEqual(ranked.find((r) => r.arm === "claude/sonnet")!.basis, "arm");
  assert(ranked.every((r) => r.value !== undefined && r.value > 0));
  // A research gap: GROQ's 6 failures there, not its coord record.
  const research = orderCascade(
    [{ backend: "chump-local", model: "openai/gpt-oss-120b", providerPfx: "GROQ" }],
    "research",
    scoreboard,
    "thompson",
    seededRandom(1),
  )[0];
  near(research.record, { successes: 0, failures: 6 });
  const mean = ([a, b]: [number, number]) => a / (a + b);
  const groq = scoreboard.arm(GROQ);
  assert(
    mean(posterior(groq, scoreboard.cell(GROQ, "research"), 1)) <
      mean(posterior(groq, scoreboard.cell(GROQ, "coord"), 1)),
    "its research failures pull its research odds below its coord odds",
  );
  // A window that ends before every row: nothing counts.
  const recent = await loadLearning({
    repoRoot: dir.path,
    db,
    windowMs: 1000,
    now: () => Date.now() + 3_600_000,
  });
  assert(recent.ok);
  equal(recent.value.learned.scores.rows, 0);
  equal(recent.value.table, undefined, "no routing file in this repo: no table");
});

Deno.test("odd reflection rows never crash the scoreboard", () => {
  const rows = [
    { gapId: "A-1", outcome: "shipped", notes: "backend=claude", createdAt: "not a time" },
    { gapId: "A-2", outcome: "shipped", notes: null as unknown as string, createdAt: "" },
    {
      gapId: 7 as unknown as string,
      outcome: "killed",
      notes: "backend=x\nmodel=",
      createdAt: "2026-01-01 00:00:00",
    },
  ];
  const s = scoreboardOf(rows);
  equal(s.rows, 2);
  deepEqual(s.arm("x"), { successes: 0, failures: 1 });
  const windowed = new Learned({
    rows: rows.map((r) => ({ ...r, effort: "s", domain: "a", durationS: null })).reverse(),
    configured: DEFAULT_DEADLINES,
    windowMs: Date.now(),
    now: () => Date.now(),
  });
  equal(windowed.scores.rows, 1, "an unreadable time is not in any window");
});

Deno.test("route GAP prints the cascade in the order a run would try it; a malformed table is one line, exit 2", async () => {
  await using dir = await scratch("chump-route-");
  const repo = dir.path;
  await Deno.mkdir(join(repo, "docs", "dispatch"), { recursive: true });
  await Deno.copyFile(INFRA471, join(repo, "docs", "dispatch", "routing.yaml"));
  await Deno.writeTextFile(
    join(repo, "docs", "gaps.yaml"),
    "gaps:\n  - { id: INFRA-9, title: t, priority: P1, effort: m, status: open }\n",
  );
  const text = await runMain(["route", "INFRA-9", "--repo-root", repo, "--learn", "fixed"]);
  equal(text.code, 0, text.stderr);
  const lines = text.stdout.trimEnd().split("\n");
  match(
    lines[0],
    /^INFRA-9 \(priority P1, effort m, task class coord\): route at .*routing\.yaml:59 /,
  );
  match(lines[1], /^order: fixed \(the file's\); scoreboard of 0 reflection\(s\)$/);
  match(lines[3], /^1 +claude\/sonnet +sonnet-medium-work +0\/0 shipped \(arm\) +-$/);
  match(lines[4], /^2 +chump-local\/openai\/gpt-oss-120b@GROQ +groq-medium-fallback/);

  const seeded = ["route", "INFRA-9", "--repo-root", repo, "--learn", "thompson", "--seed", "3"];
  const json = await runMain([...seeded, "--json"]);
  equal(json.code, 0, json.stderr);
  const r = JSON.parse(json.stdout);
  equal(r.seed, 3);
  equal(r.taskClass, "coord");
  equal(r.cascade.length, 3);
  const again = JSON.parse((await runMain([...seeded, "--json"])).stdout);
  deepEqual(again.cascade, r.cascade, "a seed makes the order reproducible");

  await Deno.writeTextFile(
    join(repo, "bad.yaml"),
    "default_candidates:\n  - { backend: claude }\n  - { backend: gpt9 }\n",
  );
  const bad = await runMain([
    "route",
    "INFRA-9",
    "--repo-root",
    repo,
    "--routing",
    join(repo, "bad.yaml"),
  ]);
  equal(bad.code, 2);
  equal(bad.stderr.trim().split("\n").length, 1, bad.stderr);
  match(bad.stderr, /bad\.yaml:3: default_candidates\[1\]: unknown backend 'gpt9'/);
  const unknown = await runMain(["route", "NOPE-1", "--repo-root", repo]);
  equal(unknown.code, 2);
  match(unknown.stderr, /no gap 'NOPE-1' in /);
});

Deno.test("route without --learn draws with Thompson sampling (the default) and says its seed", async () => {
  await using dir = await scratch("chump-route-");
  await Deno.mkdir(join(dir.path, "docs", "dispatch"), { recursive: true });
  await Deno.copyFile(V1, join(dir.path, "docs", "dispatch", "routing.yaml"));
  await Deno.writeTextFile(
    join(dir.path, "docs", "gaps.yaml"),
    "gaps:\n  - { id: AUTO-1, title: t, priority: P2, effort: s, status: open }\n",
  );
  const ran = await runMain(["route", "AUTO-1", "--repo-root", dir.path]);
  equal(ran.code, 0, ran.stderr);
  match(
    ran.stdout,
    /\norder: thompson \(seed \d+; ships-per-hour; a Beta draw per arm from the table's order, its record and its class's, weighed by availability and cost\); scoreboard of 0 reflection\(s\)\n/,
  );
  equal((ran.stdout.match(/ 0\.\d{3} +-$/gm) ?? []).length, 3, "each of the 3 arms has its draw");
});

Deno.test("a cascade on an injected clock: retryable classes move on after the backoff, a cooling arm is skipped, then waited for", () => {
  const t = parseRouting(
    "default_candidates:\n  - { backend: claude, model: a }\n  - { backend: claude, model: b }\n  - { backend: claude, model: c }\n",
    "r.yaml",
  );
  assert(t.ok);
  const none = { successes: 0, failures: 0 };
  /** A fixed-order cascade of the three arms with no record, cooling on `cooldowns`. */
  const cascadeOf = (cooldowns: Cooldowns) =>
    new Cascade({
      table: t.value,
      scores: { cell: () => none, arm: () => none },
      policy: "fixed",
      random: seededRandom(1),
      maxAttempts: 3,
      cooldowns,
    });
  const cascade = cascadeOf(new Cooldowns());
  const g = gap("A-1", "P1", "s");
  let now = 1_000_000;
  const first = cascade.next(g, now);
  assert(first.kind === "attempt");
  equal(first.attempt.pick.arm, "claude/a");
  equal(first.attempt.attempt, 1);
  // Rate limited: arm a cools down 10 s, and the gap goes on to b after 10 s.
  deepEqual(cascade.outcome("A-1", "claude/a", "rate_limited", false, now), {
    cooling: { arm: "claude/a", until: now + 10_000 },
    retryAt: now + 10_000,
  });
  // Another gap meanwhile skips the cooling arm a.
  const other = cascade.next(gap("B-2", "P1", "s"), now + 1);
  assert(other.kind === "attempt");
  equal(other.attempt.pick.arm, "claude/b");
  now += 10_000;
  const second = cascade.next(g, now);
  assert(second.kind === "attempt");
  deepEqual([second.attempt.pick.arm, second.attempt.attempt], ["claude/b", 2]);
  // A transient failure: on to c after 20 s (the second wait doubles).
  deepEqual(cascade.outcome("A-1", "claude/b", "transient", false, now), { retryAt: now + 20_000 });
  // Not retried: an agent error, or a cascade at its last arm, or out of attempts.
  deepEqual(cascade.outcome("B-2", "claude/b", "agent_error", false, now), {});
  const third = cascade.next(g, now + 20_000);
  assert(third.kind === "attempt");
  equal(third.attempt.pick.arm, "claude/c");
  deepEqual(cascade.outcome("A-1", "claude/c", "transient", false, now + 20_000), {});
  // Every arm left cooling: the gap waits until the first is free again.
  const c2 = new Cooldowns();
  const waitCascade = cascadeOf(c2);
  c2.hit("claude/a", now);
  c2.hit("claude/b", now + 5_000);
  c2.hit("claude/c", now + 2_000);
  deepEqual(waitCascade.next(gap("C-3", "P1", "s"), now + 1_000), {
    kind: "wait",
    until: now + 10_000,
  });
  // A ship resets the arm's cool-down.
  c2.success("claude/a");
  const after = waitCascade.next(gap("C-3", "P1", "s"), now + 1_000);
  assert(after.kind === "attempt");
  equal(after.attempt.pick.arm, "claude/a");
});

Deno.test("route of a gap no route matches, in a table without default_candidates, says which agent command a run uses", async () => {
  await using dir = await scratch("chump-route-");
  await Deno.mkdir(join(dir.path, "docs", "dispatch"), { recursive: true });
  await Deno.writeTextFile(
    join(dir.path, "docs", "dispatch", "routing.yaml"),
    "routes:\n  - match: { priority: P0 }\n    candidates:\n      - { backend: claude, model: opus }\n",
  );
  await Deno.writeTextFile(
    join(dir.path, "docs", "gaps.yaml"),
    "gaps:\n  - { id: LOW-1, title: t, priority: P3, effort: s, status: open }\n",
  );
  const ran = await runMain(["route", "LOW-1", "--repo-root", dir.path], {
    env: { CHUMP_AGENT_CMD: "my-agent --gap {gap}" },
  });
  equal(ran.code, 0, ran.stderr);
  const lines = ran.stdout.trimEnd().split("\n");
  match(
    lines[0],
    /^LOW-1 \(.*\): no route of .*routing\.yaml matches it and the table has no default_candidates$/,
  );
  equal(
    lines[1],
    "a run sends it to its one agent command: my-agent --gap {gap} (--agent-cmd, CHUMP_AGENT_CMD " +
      "or the backend preset)",
  );
  equal(lines.length, 2, "no empty table");
  const json = JSON.parse(
    (await runMain(["route", "LOW-1", "--repo-root", dir.path, "--json"], {
      env: { CHUMP_AGENT_CMD: "my-agent --gap {gap}" },
    })).stdout,
  );
  equal(json.fallback, "my-agent --gap {gap}");
  deepEqual(json.cascade, []);
});

Deno.test("the scoreboard counts no failure that says nothing of the arm: interrupted, orchestrator lost, an operator's stop, a transient error", () => {
  const row = (outcome: string, notes: string) => ({
    gapId: "A-1",
    outcome,
    notes,
    createdAt: "2026-12-06 10:00:00",
  });
  const board = scoreboardOf([
    row("killed", "interrupted by SIGINT\nbackend=claude"),
    row("killed", "orchestrator lost\nbackend=claude"),
    row("killed", "stopped by the operator\nbackend=claude"),
    row("killed", "exit code 1\nbackend=claude\nERROR: read ECONNRESET"),
    row("killed", "exit code 1\nbackend=claude\nERROR: tests failed"),
    row("stalled", "exited 0 without a PR\nbackend=claude"),
    row("shipped", "backend=claude"),
  ]);
  near(board.arm("claude"), { successes: 1, failures: 2 });
  equal(board.rows, 3);
});

Deno.test("old evidence fades per arm; a change cuts it; a rate limit is availability, not quality", () => {
  const row = (outcome: string, notes: string, createdAt = "") => ({
    gapId: "A-1",
    outcome,
    notes,
    createdAt,
  });
  const ship = (arm: string) => row("shipped", `backend=${arm}`);
  const fail = (arm: string) => row("killed", `exit code 1\nbackend=${arm}\nERROR: tests failed`);
  // 150 newer rows of the same arm halve a row; another arm's rows do not age it.
  const aged = scoreboardOf([ship("a"), ...Array.from({ length: 150 }, () => fail("a"))]);
  assert(Math.abs(aged.arm("a").successes - 0.5) < 0.01, `${aged.arm("a").successes}`);
  const specialist = scoreboardOf([ship("s"), ...Array.from({ length: 150 }, () => fail("b"))]);
  equal(specialist.arm("s").successes, 1, "a specialist used rarely keeps its record");
  // 60 days halve a row (its age from now).
  const old = scoreboardOf([row("shipped", "backend=c", "2026-10-07 10:00:00")], {
    nowMs: Date.parse("2026-12-06T10:00:00Z"),
  });
  assert(Math.abs(old.arm("c").successes - 0.5) < 0.01, `${old.arm("c").successes}`);
  // An arm that shipped 40 in a row and then failed 12: the change cuts what came before.
  const changed = scoreboardOf([
    ...Array.from({ length: 40 }, () => ship("d")),
    ...Array.from({ length: 12 }, () => fail("d")),
  ]);
  const d = changed.arm("d");
  assert(d.successes < 15, `before the change ${d.successes.toFixed(1)} ships still count`);
  assert(d.failures > 11, `the change itself is kept: ${d.failures.toFixed(1)} failures`);
  // A shift in the mix of classes is not a change: 100 cognition ships, then 12 research
  // failures, leave the cognition record whole.
  const cls = (gapId: string, shipped: boolean) => ({
    ...(shipped ? ship("f") : fail("f")),
    gapId,
  });
  const mix = scoreboardOf([
    ...Array.from({ length: 100 }, (_, i) => cls(`COG-${i}`, i % 20 !== 0)),
    ...Array.from({ length: 12 }, (_, i) => cls(`EVAL-${i}`, false)),
  ]);
  assert(mix.cell("f", "cognition").successes > 60, JSON.stringify(mix.cell("f", "cognition")));
  // Rate limits: not failures, but the arm is less available.
  const limited = scoreboardOf([
    ship("e"),
    ...Array.from(
      { length: 4 },
      () => row("killed", "exit code 1\nbackend=e\nERROR: 429 Too Many Requests"),
    ),
  ]);
  deepEqual(limited.arm("e"), { successes: 1, failures: 0 });
  equal(limited.rows, 5);
  assert(limited.usage!("e").available < 0.5, `${limited.usage!("e").available}`);
  equal(scoreboardOf([]).usage!("e").available, 1, "an arm never tried is available");
});
