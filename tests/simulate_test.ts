/**
 * The simulator runs the real decision code on the shipped example worlds:
 * deterministic per seed, learning within one run, the world format's
 * prices, speeds, drift and spread, and a malformed world is one line,
 * exit 2.
 */
import { deepEqual, equal, match, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { loadWorld, type SimPolicy, simulate } from "../lib/sim/simulate.ts";
import { ROOT, runMain, scratch } from "./_helpers.ts";

const CHUMP = join(ROOT, "examples", "worlds", "chump.yaml");
const SHIFT = join(ROOT, "examples", "worlds", "shift.yaml");
const WORLDS = join(ROOT, "examples", "worlds");

Deno.test("a simulation is deterministic for a seed and counts what it did", async () => {
  const world = await loadWorld(CHUMP);
  assert(world.ok, world.ok ? "" : world.error);
  const a = simulate(world.value, { policy: "thompson", dispatches: 120, seed: 5 });
  const b = simulate(world.value, { policy: "thompson", dispatches: 120, seed: 5 });
  deepEqual(a, b);
  equal(a.dispatches, 120);
  equal(a.runs, 6, "run_size 20: six runs");
  assert(a.ships > 0 && a.ships < 120);
  assert(a.wasted_agent_minutes > 0 && a.wasted_agent_minutes < a.agent_hours * 60);
  const c = simulate(world.value, { policy: "thompson", dispatches: 120, seed: 6 });
  assert(JSON.stringify(a) !== JSON.stringify(c), "another seed, another world");
});

Deno.test("the best fixed order has the least regret; thompson learns to beat the file's order on the Chump-like world", async () => {
  const world = await loadWorld(CHUMP);
  assert(world.ok);
  const total = (policy: SimPolicy, key: "regret" | "ships") =>
    [1, 2, 3].reduce(
      (s, seed) => s + simulate(world.value, { policy, dispatches: 300, seed })[key],
      0,
    );
  assert(total("best-fixed", "regret") < total("thompson", "regret"));
  assert(total("thompson", "regret") < total("fixed", "regret"));
  assert(total("thompson", "ships") > total("fixed", "ships"));
});

Deno.test("one long run learns within itself: every outcome counts for the next dispatch", async () => {
  // One run of 300 dispatches on the wrong table: what was read at its start is nothing.
  const world = await loadWorld(join(WORLDS, "wrong-long.yaml"));
  assert(world.ok, world.ok ? "" : world.error);
  equal(world.value.runSize, 500);
  const ships = (policy: SimPolicy) =>
    [1, 2, 3].reduce((s, seed) => {
      const r = simulate(world.value, { policy, dispatches: 300, seed });
      equal(r.runs, 1);
      return s + r.ships;
    }, 0);
  const learned = ships("thompson");
  const fixed = ships("fixed");
  assert(learned > 1.3 * fixed, `learned ${learned} ships, fixed ${fixed}`);
});

Deno.test("the adversarial world's best arm changes halfway; the learned order follows it", async () => {
  const world = await loadWorld(SHIFT);
  assert(world.ok, world.ok ? "" : world.error);
  deepEqual(world.value.shifts.map((s) => s.after), [250]);
  const regret = (policy: SimPolicy) =>
    [1, 2].reduce(
      (s, seed) => s + simulate(world.value, { policy, dispatches: 500, seed }).regret,
      0,
    );
  assert(regret("thompson") < regret("fixed"));
  assert(regret("thompson") < regret("best-fixed"), "no fixed order follows a change");
  const r = simulate(world.value, {
    policy: "fixed",
    dispatches: 100,
    seed: 1,
    adaptiveDeadlines: false,
  });
  equal(r.adaptiveDeadlines, false);
  equal(r.early_ends, 0, "no early end without adaptive deadlines");
});

Deno.test("a world's prices, speeds, drift, spread and extends: what each changes", async () => {
  await using dir = await scratch("chump-world-");
  const write = (name: string, text: string) => Deno.writeTextFile(join(dir.path, name), text);
  await write(
    "base.yaml",
    [
      `routing: ${join(WORLDS, "routing-right.yaml")}`,
      "gaps: { count: 300, efforts: { s: 1 } }",
      "durations: { s: { shipped: [8m, 0.3], failed: [10m, 0.3] } }",
      "hang: 0",
      "arms:",
      "  claude: { success: { default: 0.7 } }",
      "  chump-local/openai/gpt-oss-120b@GROQ: { success: { default: 0.4 } }",
      "  chump-local/meta-llama/Llama-3.3-70B-Instruct-Turbo-Free@TOGETHER: { success: { default: 0.2 } }",
    ].join("\n"),
  );
  await write(
    "priced.yaml",
    "extends: base.yaml\narms:\n  claude: { success: { default: 0.7 }, cost_per_hour: 6, duration_scale: 2 }\n",
  );
  await write(
    "drift.yaml",
    "extends: base.yaml\ndrift: { from: 0, to: 10, arms: { claude: { success: { default: 0 } } } }\n",
  );
  await write("spread.yaml", "extends: base.yaml\nsuccess_spread: 3\n");
  const load = async (name: string) => {
    const w = await loadWorld(join(dir.path, name));
    assert(w.ok, w.ok ? "" : w.error);
    return simulate(w.value, { policy: "fixed", dispatches: 100, seed: 3 });
  };
  const base = await load("base.yaml");
  equal(base.cost_usd, null, "no prices: no dollars");
  equal(base.ships_per_dollar, null);
  const priced = await load("priced.yaml");
  assert(priced.cost_usd! > 0);
  equal(priced.ships_per_dollar, Math.round(priced.ships / priced.cost_usd! * 1e4) / 1e4);
  assert(priced.agent_hours > 1.5 * base.agent_hours, "claude takes twice as long");
  const drift = await load("drift.yaml");
  assert(drift.ships < base.ships / 2, `claude drifts to 0: ${drift.ships} vs ${base.ships}`);
  const spread = await load("spread.yaml");
  assert(spread.ships !== base.ships, "gaps of one class differ");
  // The same gap on the same arm meets the same luck whichever policy sent it.
  const w = await loadWorld(join(dir.path, "base.yaml"));
  assert(w.ok);
  deepEqual(
    simulate(w.value, { policy: "fixed", dispatches: 100, seed: 3 }).arms,
    simulate(w.value, { policy: "best-fixed", dispatches: 100, seed: 3 }).arms,
    "the table is already the best order: the same attempts, the same ships",
  );
  for (
    const [bad, line] of [
      [
        "extends: base.yaml\narms:\n  claude: { success: { default: 0.7 }, cost_per_hour: -1 }\n",
        "bad.yaml:3: arms: claude: cost_per_hour: a number from 0",
      ],
      [
        "extends: base.yaml\ndrift: { from: 5, to: 5, arms: {} }\n",
        "bad.yaml:1: drift: { from: N, to: M (> N), arms: }",
      ],
      ["extends: nowhere.yaml\n", "nowhere.yaml: cannot read the world"],
    ]
  ) {
    await write("bad.yaml", bad);
    const r = await loadWorld(join(dir.path, "bad.yaml"));
    assert(!r.ok);
    assert(r.error.includes(line), r.error);
  }
});

Deno.test("adaptive deadlines end hung agents early and waste less than the configured ones", async () => {
  const world = await loadWorld(CHUMP);
  assert(world.ok);
  const waste = (adaptiveDeadlines: boolean) =>
    [1, 2].reduce((s, seed) => {
      const r = simulate(world.value, {
        policy: "thompson",
        dispatches: 300,
        seed,
        adaptiveDeadlines,
      });
      if (adaptiveDeadlines) assert(r.early_ends > 0);
      return s + r.wasted_agent_minutes;
    }, 0);
  assert(waste(true) < 0.85 * waste(false));
});

Deno.test("simulate on the CLI: text and --json; a malformed world is one line, exit 2", async () => {
  const text = await runMain(["simulate", "--world", CHUMP, "--dispatches", "40", "--seed", "2"]);
  equal(text.code, 0, text.stderr);
  match(
    text.stdout,
    /^.*chump\.yaml: policy thompson, seed 2, adaptive deadlines; 40 dispatches in 2 run\(s\), [\d.]+ h simulated\nships \d+ {2}agent-hours [\d.]+ {2}ships\/agent-hour [\d.]+ {2}spent \$[\d.]+ {2}ships\/dollar [\d.]+ {2}wasted agent-minutes [\d.]+ \(\d+ ended early\) {2}rate-limit hits \d+ {2}regret [\d.]+\n$/,
  );
  const json = await runMain([
    "simulate",
    "--world",
    CHUMP,
    "--dispatches",
    "40",
    "--seed",
    "2",
    "--policy",
    "best-fixed",
    "--json",
  ]);
  equal(json.code, 0, json.stderr);
  const r = JSON.parse(json.stdout);
  deepEqual(Object.keys(r).sort(), [
    "adaptiveDeadlines",
    "agent_hours",
    "arms",
    "cost_usd",
    "dispatches",
    "early_ends",
    "hours",
    "policy",
    "rate_limit_hits",
    "regret",
    "runs",
    "seed",
    "ships",
    "ships_per_agent_hour",
    "ships_per_dollar",
    "wasted_agent_minutes",
  ]);
  // A world that says how many dispatches it is about: the default.
  const short = await runMain(["simulate", "--world", join(WORLDS, "right-short.yaml")]);
  match(short.stdout, /; 50 dispatches in \d+ run\(s\)/);
  await using dir = await scratch("chump-world-");
  const bad = join(dir.path, "bad.yaml");
  await Deno.writeTextFile(
    bad,
    `routing: ${join(ROOT, "examples", "worlds", "routing-chump-v1.yaml")}\ngaps:\n  count: 0\n`,
  );
  const refused = await runMain(["simulate", "--world", bad]);
  equal(refused.code, 2);
  match(refused.stderr, /bad\.yaml:2: gaps: count: a number from 1\n$/);
  equal(refused.stderr.trim().split("\n").length, 1);
});
