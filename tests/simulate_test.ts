/**
 * The simulator runs the real decision code on the shipped example worlds:
 * deterministic per seed, the oracle never behind, and a malformed world is
 * one line, exit 2.
 */
import { deepEqual, equal, match, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { loadWorld, simulate } from "../lib/sim/simulate.ts";
import { ROOT, runMain, scratch } from "./_helpers.ts";

const CHUMP = join(ROOT, "examples", "worlds", "chump.yaml");
const SHIFT = join(ROOT, "examples", "worlds", "shift.yaml");

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

Deno.test("the oracle has the least regret; thompson learns to beat the file's order on the Chump-like world", async () => {
  const world = await loadWorld(CHUMP);
  assert(world.ok);
  const total = (policy: "fixed" | "thompson" | "oracle", key: "regret" | "ships") =>
    [1, 2, 3].reduce(
      (s, seed) => s + simulate(world.value, { policy, dispatches: 300, seed })[key],
      0,
    );
  assert(total("oracle", "regret") < total("thompson", "regret"));
  assert(total("thompson", "regret") < total("fixed", "regret"));
  assert(total("thompson", "ships") > total("fixed", "ships"));
});

Deno.test("the adversarial world loads and its best arm changes halfway", async () => {
  const world = await loadWorld(SHIFT);
  assert(world.ok, world.ok ? "" : world.error);
  equal(world.value.shift?.after, 250);
  const r = simulate(world.value, {
    policy: "oracle",
    dispatches: 400,
    seed: 1,
    adaptiveDeadlines: false,
  });
  equal(r.adaptiveDeadlines, false);
  assert(r.regret < 5, "the oracle follows the change");
});

Deno.test("simulate on the CLI: text and --json; a malformed world is one line, exit 2", async () => {
  const text = await runMain(["simulate", "--world", CHUMP, "--dispatches", "40", "--seed", "2"]);
  equal(text.code, 0, text.stderr);
  match(
    text.stdout,
    /^.*chump\.yaml: policy thompson, seed 2, adaptive deadlines; 40 dispatches in 2 run\(s\), [\d.]+ h simulated\nships \d+ {2}agent-hours [\d.]+ {2}ships\/agent-hour [\d.]+ {2}wasted agent-minutes [\d.]+ {2}rate-limit hits \d+ {2}regret [\d.]+\n$/,
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
    "oracle",
    "--json",
  ]);
  equal(json.code, 0, json.stderr);
  const r = JSON.parse(json.stdout);
  deepEqual(Object.keys(r).sort(), [
    "adaptiveDeadlines",
    "agent_hours",
    "dispatches",
    "hours",
    "policy",
    "rate_limit_hits",
    "regret",
    "runs",
    "seed",
    "ships",
    "ships_per_agent_hour",
    "wasted_agent_minutes",
  ]);
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
