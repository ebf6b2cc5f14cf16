/**
 * Chump's newest routing table, in its own format, routes here as Chump
 * routes it: ids upper-cased before their task class is read, match values
 * compared trimmed and case-insensitively, lists for every match key, a
 * route's `model_class` as its claude arms' `--model`, Chump's built-in
 * table by name, and a free-tier-only route that never reaches claude.
 */
import { deepEqual, equal, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { Cascade } from "../lib/learn/cascade.ts";
import { Cooldowns } from "../lib/learn/classify.ts";
import { seededRandom } from "../lib/learn/policy.ts";
import {
  armOf,
  BUILTIN_ROUTING_NAME,
  loadRouting,
  parseRouting,
  routeGap,
  type RoutingTable,
} from "../lib/learn/routing.ts";
import { armAgent } from "../lib/dispatch/agent.ts";
import { ROOT, runMain, scratch } from "./_helpers.ts";

const NEWEST = join(ROOT, "tests", "fixtures", "routing", "chump-routing-resilient154.yaml");
const GROQ = "chump-local/openai/gpt-oss-120b@GROQ";
const TOGETHER = "chump-local/meta-llama/Llama-3.3-70B-Instruct-Turbo-Free@TOGETHER";

const gap = (id: string, priority: string, effort: string) => ({ id, priority, effort });
const arms = (table: RoutingTable, g: { id: string; priority: string; effort: string }) =>
  routeGap(g, table).candidates.map(armOf);

async function newest(): Promise<RoutingTable> {
  const t = await loadRouting(NEWEST);
  assert(t.ok, t.ok ? "" : t.error);
  deepEqual(t.value.warnings, []);
  return t.value;
}

Deno.test("a lower-case id is routed by its upper-cased task class: cog-7 goes to claude only", async () => {
  const table = await newest();
  deepEqual(arms(table, gap("cog-7", "P2", "xs")), ["claude/sonnet"]);
  deepEqual(arms(table, gap(" eval-3", "P2", "s")), ["claude/sonnet"]);
  equal(routeGap(gap("infra-1", "P2", "m"), table).taskClass, "coord");
});

Deno.test("effort and priority match case-insensitively: effort XS stays on the free tier", async () => {
  const table = await newest();
  deepEqual(arms(table, gap("AUTO-1", "P1", "XS")), [GROQ, TOGETHER]);
  deepEqual(arms(table, gap("AUTO-2", "P1", " S ")), [GROQ, TOGETHER]);
  deepEqual(arms(table, gap("AUTO-3", "p1", "XL")), ["claude/sonnet"]);
  // No xs or s gap of any id reaches claude through the defaults.
  for (const effort of ["xs", "XS", "Xs", "s", "S"]) {
    assert(!arms(table, gap("AUTO-9", "P0", effort)).some((a) => a.startsWith("claude")), effort);
  }
});

Deno.test("task_class and priority may be lists, as Chump accepts; a class route never matches a gap with none", () => {
  const t = parseRouting(
    [
      "default_candidates: [{ backend: chump-local }]",
      "routes:",
      "  - match: { task_class: [Cognition, research], priority: [P0, p1] }",
      "    candidates: [{ backend: claude, model: opus }]",
      "  - match: { task_class: [coord] }",
      "    candidates: [{ backend: claude }]",
    ].join("\n"),
    "r.yaml",
  );
  assert(t.ok, t.ok ? "" : t.error);
  deepEqual(arms(t.value, gap("COG-1", "P1", "s")), ["claude/opus"]);
  deepEqual(arms(t.value, gap("EVAL-1", "P0", "s")), ["claude/opus"]);
  deepEqual(arms(t.value, gap("COG-2", "P2", "s")), ["chump-local"], "P2 is not in the list");
  deepEqual(arms(t.value, gap("AUTO-1", "P0", "s")), ["chump-local"], "no task class");
  deepEqual(arms(t.value, gap("INFRA-1", "P2", "s")), ["claude"]);
  const bad = parseRouting(
    "routes:\n  - match: { priority: [P0, { a: 1 }] }\n    candidates: [{ backend: claude }]\n",
    "r.yaml",
  );
  deepEqual(bad, {
    ok: false,
    error: "r.yaml:2: routes[0]: match: priority: must be a string or a list of strings",
  });
});

Deno.test("model_class: sonnet runs the route's claude arm with --model sonnet; a candidate's own model wins", async () => {
  const table = await newest();
  const [cog] = routeGap(gap("COG-1", "P1", "m"), table).candidates;
  const agent = armAgent(cog, "COG-1", table.backends);
  assert(agent.ok);
  const at = agent.value.argv.indexOf("--model");
  assert(at > 0, agent.value.argv.join(" "));
  equal(agent.value.argv[at + 1], "sonnet");
  const own = parseRouting(
    "routes:\n  - match: {}\n    model_class: sonnet\n    candidates: [{ backend: claude, model: opus }, { backend: chump-local }]\n",
    "r.yaml",
  );
  assert(own.ok);
  deepEqual(arms(own.value, gap("A-1", "P1", "s")), ["claude/opus", "chump-local"]);
  const notString = parseRouting(
    "routes:\n  - model_class: [sonnet]\n    candidates: [{ backend: claude }]\n",
    "r.yaml",
  );
  deepEqual(notString, {
    ok: false,
    error: "r.yaml:2: routes[0]: model_class: must be a string (haiku, sonnet, opus)",
  });
});

Deno.test("Chump's built-in table by name: xs and the rest to the cheap tier, P1 large work to claude", async () => {
  const t = await loadRouting(BUILTIN_ROUTING_NAME);
  assert(t.ok, t.ok ? "" : t.error);
  deepEqual(arms(t.value, gap("AUTO-1", "P1", "XS")), ["chump-local"]);
  deepEqual(arms(t.value, gap("AUTO-2", "P1", "l")), ["claude"]);
  deepEqual(arms(t.value, gap("AUTO-3", "P2", "xl")), ["chump-local"]);
  deepEqual(arms(t.value, gap("AUTO-4", "P1", "m")), ["chump-local"]);
  await using dir = await scratch("chump-route-");
  await Deno.mkdir(join(dir.path, "docs"));
  await Deno.writeTextFile(
    join(dir.path, "docs", "gaps.yaml"),
    "gaps:\n  - { id: AUTO-9, title: t, priority: P1, effort: XL, status: open }\n",
  );
  const ran = await runMain([
    "route",
    "AUTO-9",
    "--routing",
    "builtin",
    "--learn",
    "fixed",
    "--repo-root",
    dir.path,
  ]);
  equal(ran.code, 0, ran.stderr);
  assert(ran.stdout.includes("frontier (high-stakes large work)"), ran.stdout);
});

Deno.test("a free-tier-only route never falls through to paid claude, whatever its arms do", async () => {
  const table = await newest();
  const none = { successes: 0, failures: 0 };
  const cascade = new Cascade({
    table,
    scores: { cell: () => none, arm: () => none },
    policy: "thompson",
    random: seededRandom(3),
    maxAttempts: 10,
    cooldowns: new Cooldowns(),
  });
  const tried: string[] = [];
  let now = 0;
  for (let i = 0; i < 10; i++) {
    const next = cascade.next(gap("auto-5", "P0", "XS"), now);
    if (next.kind === "wait") {
      now = next.until;
      continue;
    }
    if (next.kind !== "attempt") break;
    tried.push(next.attempt.pick.arm);
    const after = cascade.outcome("auto-5", next.attempt.pick.arm, "rate_limited", false, now);
    if (after.retryAt === undefined) break;
    now = after.retryAt;
  }
  deepEqual(tried.sort(), [GROQ, TOGETHER].sort());
});
