/**
 * The simulator: the real decision code (picker, routing table, scoreboard,
 * policy, adaptive deadlines, cascade retries and cool-downs) against a
 * simulated clock and simulated agents whose hidden success probabilities
 * the world file declares; no processes, no git. Runs follow each other
 * (`run_size` dispatches each, like `--max-total`), and each run reads the
 * scoreboard and deadlines from the reflections of the runs before it, as a
 * real run reads its DB. Deterministic for a seed; each dispatch's luck comes
 * from its own stream, so two policies on one seed meet the same world.
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import type { Gap } from "../backlog/load.ts";
import { pickGaps } from "../backlog/picker.ts";
import { parseYaml } from "../backlog/yaml.ts";
import { gapDomain } from "../store/reflection.ts";
import { deadlineFor, type Deadlines, DEFAULT_DEADLINES, parseDuration } from "../util/duration.ts";
import { fail, ok, type Result } from "../util/result.ts";
import { Cascade } from "./cascade.ts";
import { classify, Cooldowns } from "./classify.ts";
import { adaptiveDeadlines } from "./deadlines.ts";
import { normal, type Ranked, seededRandom } from "./policy.ts";
import { loadRouting, type RoutingTable } from "./routing.ts";
import { scoreboardOf, type ScoredRow } from "./scoreboard.ts";

/** One arm of a world: its hidden success probability per task class, and its rate limit. */
export interface WorldArm {
  /** Task class -> probability; `default` for the others. */
  success: Record<string, number>;
  rateLimit?: { requests: number; windowMs: number };
}

/** A world: the backlog, the arms, how long agents take, the parallelism. */
export interface World {
  table: RoutingTable;
  maxParallel: number;
  runSize: number;
  gaps: {
    count: number;
    priorities: [string, number][];
    efforts: [string, number][];
    domains: [string, number][];
    depends: number;
  };
  deadlines: Deadlines;
  /** Per effort: lognormal (median ms, sigma) of shipped and failed attempts. */
  durations: Record<string, { shipped: [number, number]; failed: [number, number] }>;
  /** Share of failures that hang until killed at twice the deadline. */
  hang: number;
  /** Chance an attempt dies of a transient error in its first minute. */
  transient: number;
  arms: Record<string, WorldArm>;
  /** From this dispatch on, these arms' success probabilities replace theirs. */
  shift?: { after: number; arms: Record<string, WorldArm> };
}

/** The policies the simulator compares: the two of `--learn`, and one that knows the world. */
export type SimPolicy = "fixed" | "thompson" | "oracle";

/** What a simulation measured. */
export interface SimResult {
  policy: SimPolicy;
  seed: number;
  adaptiveDeadlines: boolean;
  dispatches: number;
  runs: number;
  ships: number;
  agent_hours: number;
  ships_per_agent_hour: number;
  wasted_agent_minutes: number;
  rate_limit_hits: number;
  /** Expected ships lost against always taking the best arm of the cascade (hidden probabilities). */
  regret: number;
  /** Simulated wall-clock hours. */
  hours: number;
}

const MINUTE = 60_000;

/**
 * Read and check a world file (YAML); one line `file:line: what` when it is malformed.
 *
 * @example
 * ```ts ignore
 * const world = await loadWorld("examples/worlds/chump.yaml");
 * ```
 */
export async function loadWorld(path: string): Promise<Result<World>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    return fail(`${path}: cannot read the world: ${e instanceof Error ? e.message : e}`);
  }
  const parsed = parseYaml(text);
  if (!parsed.ok) {
    return fail(`${path}:${parsed.error.line ?? 1}: not valid YAML: ${parsed.error.reason}`);
  }
  const doc = parsed.value.value as Record<string, unknown>;
  const lineOf = (o: unknown) =>
    (o && typeof o === "object" ? parsed.value.lineOf(o) : undefined) ?? 1;
  const bad = (o: unknown, what: string) => fail(`${path}:${lineOf(o)}: ${what}`);
  if (!isMap(doc)) return bad(doc, "a world is a mapping (routing:, gaps:, arms:, durations:)");
  if (typeof doc.routing !== "string") return bad(doc, "routing: the routing table's path");
  const table = await loadRouting(resolve(dirname(path), doc.routing));
  if (!table.ok) return table;

  const num = (v: unknown, min: number, max: number) =>
    typeof v === "number" && v >= min && v <= max ? v : undefined;
  const weights = (v: unknown, what: string): Result<[string, number][]> => {
    if (!isMap(v) || Object.keys(v).length === 0) return bad(doc, `${what}: a mapping of weights`);
    const out: [string, number][] = [];
    for (const [k, w] of Object.entries(v)) {
      if (num(w, 0, 1e9) === undefined) return bad(v, `${what}: ${k}: a weight is a number >= 0`);
      out.push([k, w as number]);
    }
    return ok(out);
  };
  const dur = (v: unknown, what: string): Result<number> => {
    if (typeof v === "number") return ok(v * MINUTE);
    const d = typeof v === "string" ? parseDuration(v) : fail("");
    return d.ok ? d : bad(doc, `${what}: a duration (e.g. 20m) or minutes`);
  };

  const g = doc.gaps;
  if (!isMap(g)) return bad(doc, "gaps: a mapping (count:, priorities:, efforts:, domains:)");
  const count = num(g.count, 1, 1e6);
  if (count === undefined) return bad(g, "gaps: count: a number from 1");
  const priorities = weights(g.priorities ?? { P1: 1 }, "gaps: priorities");
  if (!priorities.ok) return priorities;
  const efforts = weights(g.efforts ?? { s: 1 }, "gaps: efforts");
  if (!efforts.ok) return efforts;
  const domains = weights(g.domains ?? { AUTO: 1 }, "gaps: domains");
  if (!domains.ok) return domains;
  const depends = num(g.depends ?? 0, 0, 1);
  if (depends === undefined) return bad(g, "gaps: depends: a share from 0 to 1");

  const deadlines: Record<string, number> = { ...DEFAULT_DEADLINES };
  if (doc.deadlines !== undefined) {
    if (!isMap(doc.deadlines)) return bad(doc, "deadlines: a mapping of effort to duration");
    for (const [effort, v] of Object.entries(doc.deadlines)) {
      const d = dur(v, `deadlines: ${effort}`);
      if (!d.ok) return d;
      deadlines[effort] = d.value;
    }
  }

  if (!isMap(doc.durations)) {
    return bad(doc, "durations: per effort, { shipped: [median, sigma], failed: [...] }");
  }
  const durations: World["durations"] = {};
  for (const [effort, v] of Object.entries(doc.durations)) {
    const pair = (p: unknown, what: string): Result<[number, number]> => {
      if (!Array.isArray(p) || p.length !== 2 || num(p[1], 0, 10) === undefined) {
        return bad(v, `durations: ${effort}: ${what}: [median, sigma]`);
      }
      const m = dur(p[0], `durations: ${effort}: ${what}`);
      return m.ok ? ok([m.value, p[1]]) : m;
    };
    if (!isMap(v)) return bad(doc.durations, `durations: ${effort}: { shipped:, failed: }`);
    const s = pair(v.shipped, "shipped");
    if (!s.ok) return s;
    const f = pair(v.failed, "failed");
    if (!f.ok) return f;
    durations[effort] = { shipped: s.value, failed: f.value };
  }

  const arms = (v: unknown, what: string): Result<Record<string, WorldArm>> => {
    if (!isMap(v)) return bad(doc, `${what}: a mapping of arm -> { success:, rate_limit: }`);
    const out: Record<string, WorldArm> = {};
    for (const [arm, a] of Object.entries(v)) {
      if (!isMap(a) || !isMap(a.success)) {
        return bad(v, `${what}: ${arm}: success: { default: p, <task class>: p }`);
      }
      for (const [k, p] of Object.entries(a.success)) {
        if (num(p, 0, 1) === undefined) {
          return bad(a, `${what}: ${arm}: success: ${k}: a probability`);
        }
      }
      const arm_: WorldArm = { success: a.success as Record<string, number> };
      if (a.rate_limit !== undefined) {
        const r = a.rate_limit;
        if (!isMap(r) || num(r.requests, 1, 1e9) === undefined) {
          return bad(a, `${what}: ${arm}: rate_limit: { requests: N, window: D }`);
        }
        const w = dur(r.window, `${what}: ${arm}: rate_limit: window`);
        if (!w.ok) return w;
        arm_.rateLimit = { requests: r.requests as number, windowMs: w.value };
      }
      out[arm] = arm_;
    }
    return ok(out);
  };
  const armsOf = arms(doc.arms, "arms");
  if (!armsOf.ok) return armsOf;
  let shift: World["shift"];
  if (doc.shift !== undefined) {
    const sh = doc.shift;
    if (!isMap(sh) || num(sh.after, 0, 1e9) === undefined) {
      return bad(doc, "shift: { after: N, arms: }");
    }
    const a = arms(sh.arms, "shift: arms");
    if (!a.ok) return a;
    shift = { after: sh.after as number, arms: a.value };
  }
  const maxParallel = num(doc.max_parallel ?? 4, 1, 1000);
  const runSize = num(doc.run_size ?? 20, 1, 1e6);
  const hang = num(doc.hang ?? 0.3, 0, 1);
  const transient = num(doc.transient ?? 0, 0, 1);
  if (
    maxParallel === undefined || runSize === undefined || hang === undefined ||
    transient === undefined
  ) {
    return bad(doc, "max_parallel, run_size: numbers from 1; hang, transient: shares from 0 to 1");
  }
  return ok({
    table: table.value,
    maxParallel,
    runSize,
    gaps: {
      count,
      priorities: priorities.value,
      efforts: efforts.value,
      domains: domains.value,
      depends,
    },
    deadlines: deadlines as Deadlines,
    durations,
    hang,
    transient,
    arms: armsOf.value,
    shift,
  });
}

function isMap(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** The backlog of a world, drawn from its seed. */
function worldGaps(world: World, seed: number): Gap[] {
  const random = seededRandom(seed ^ 0x5bd1e995);
  const pick = (weights: [string, number][]) => {
    const total = weights.reduce((a, [, w]) => a + w, 0);
    let x = random() * total;
    for (const [k, w] of weights) if ((x -= w) < 0) return k;
    return weights[weights.length - 1][0];
  };
  const gaps: Gap[] = [];
  for (let i = 0; i < world.gaps.count; i++) {
    const id = `${pick(world.gaps.domains)}-${i + 1}`;
    const dependsOn = i > 0 && random() < world.gaps.depends
      ? [gaps[Math.floor(random() * i)].id]
      : [];
    gaps.push({
      id,
      title: id,
      priority: pick(world.gaps.priorities),
      effort: pick(world.gaps.efforts),
      status: "open",
      dependsOn,
      file: "world",
      line: i + 1,
      fields: {},
    });
  }
  return gaps;
}

/** An attempt in flight. */
interface SimAttempt {
  gap: Gap;
  arm: string;
  attempt: number;
  startAt: number;
  endAt: number;
  outcome: "shipped" | "killed";
  reason: string;
  tail: string[];
}

/**
 * Simulate `dispatches` dispatches of `world` under `policy`.
 *
 * @example
 * ```ts ignore
 * const r = simulate(world, { policy: "thompson", dispatches: 500, seed: 1 });
 * console.log(r.ships_per_agent_hour);
 * ```
 */
export function simulate(
  world: World,
  options: {
    policy: SimPolicy;
    dispatches: number;
    seed: number;
    adaptiveDeadlines?: boolean;
    maxAttempts?: number;
  },
): SimResult {
  const { policy, seed } = options;
  const adaptive = options.adaptiveDeadlines ?? true;
  const gaps = worldGaps(world, seed);
  const rows: (ScoredRow & { effort: string; domain: string; durationS: number })[] = [];
  const shipped = new Set<string>();
  const armStarts = new Map<string, number[]>();
  let now = 0;
  let dispatches = 0;
  let runs = 0;
  let ships = 0;
  let agentMs = 0;
  let wastedMs = 0;
  let rateLimitHits = 0;
  let regret = 0;

  const hidden = (arm: string, taskClass: string, at: number): number => {
    const a = (world.shift && at >= world.shift.after ? world.shift.arms[arm] : undefined) ??
      world.arms[arm];
    if (!a) return 0;
    return a.success[taskClass] ?? a.success.default ?? 0;
  };
  const lognormal = (random: () => number, [median, sigma]: [number, number]) =>
    Math.exp(Math.log(median) + sigma * normal(random));

  while (dispatches < options.dispatches) {
    runs++;
    const policyRandom = seededRandom(seed * 7919 + runs);
    const scores = scoreboardOf(rows, { table: world.table });
    const oracleOrder = (ranked: Ranked[], taskClass: string) =>
      [...ranked].sort((a, b) =>
        hidden(b.arm, taskClass, dispatches) - hidden(a.arm, taskClass, dispatches)
      );
    const cascade = new Cascade({
      table: world.table,
      scores,
      policy: policy === "thompson" ? "thompson" : "fixed",
      random: policyRandom,
      maxAttempts: options.maxAttempts ?? 3,
      cooldowns: new Cooldowns(),
      order: policy === "oracle" ? oracleOrder : undefined,
    });
    const deadlines = adaptive ? adaptiveDeadlines(rows, world.deadlines) : undefined;
    const deadlineOf = (g: Gap) =>
      deadlines ? deadlines.of(g.effort, gapDomain(g.id)) : deadlineFor(g.effort, world.deadlines);
    const dispatched = new Set<string>();
    const waiting = new Map<string, { gap: Gap; at: number }>();
    const inflight: SimAttempt[] = [];
    let attemptsThisRun = 0;

    const start = (gap: Gap): boolean => {
      const next = cascade.next(gap, now);
      if (next.kind === "wait") {
        waiting.set(gap.id, { gap, at: next.until });
        return false;
      }
      if (next.kind === "none") return false;
      const { pick, attempt, taskClass } = next.attempt;
      const luck = seededRandom(seed * 1_000_003 + dispatches * 31 + attempt);
      const deadline = deadlineOf(gap);
      const starts = (armStarts.get(pick.arm) ?? []).filter((t) =>
        t > now - (world.arms[pick.arm]?.rateLimit?.windowMs ?? 0)
      );
      const limit = world.arms[pick.arm]?.rateLimit;
      const p = hidden(pick.arm, taskClass, dispatches);
      const best = Math.max(
        ...cascade.candidatesOf(gap.id).map((r) => hidden(r.arm, taskClass, dispatches)),
      );
      let a: SimAttempt;
      const effortDur = world.durations[gap.effort.toLowerCase()] ??
        Object.values(world.durations)[0];
      if (limit && starts.length >= limit.requests) {
        rateLimitHits++;
        a = {
          gap,
          arm: pick.arm,
          attempt,
          startAt: now,
          endAt: now + 20_000,
          outcome: "killed",
          reason: "exit code 1",
          tail: ["ERROR: API Error: 429 rate limit"],
        };
      } else if (luck() < world.transient) {
        a = {
          gap,
          arm: pick.arm,
          attempt,
          startAt: now,
          endAt: now + 10_000 + 50_000 * luck(),
          outcome: "killed",
          reason: "exit code 1",
          tail: ["ERROR: read ECONNRESET"],
        };
      } else {
        regret += best - p;
        const succeeds = luck() < p;
        const hangs = !succeeds && luck() < world.hang;
        const took = hangs
          ? Infinity
          : lognormal(luck, succeeds ? effortDur.shipped : effortDur.failed);
        const killAt = 2 * deadline;
        if (took > killAt) {
          a = {
            gap,
            arm: pick.arm,
            attempt,
            startAt: now,
            endAt: now + killAt,
            outcome: "killed",
            reason: `soft-deadline exceeded (${Math.round(deadline / 1000)}s x 2)`,
            tail: [],
          };
        } else {
          a = {
            gap,
            arm: pick.arm,
            attempt,
            startAt: now,
            endAt: now + took,
            outcome: succeeds ? "shipped" : "killed",
            reason: succeeds ? "" : "exit code 1",
            tail: succeeds ? [] : ["ERROR: tests failed"],
          };
        }
      }
      armStarts.set(pick.arm, [...starts, now]);
      inflight.push(a);
      dispatches++;
      attemptsThisRun++;
      return true;
    };

    const fill = () => {
      while (
        inflight.length < world.maxParallel && attemptsThisRun < world.runSize &&
        dispatches < options.dispatches
      ) {
        const due = [...waiting.values()].find((w) => w.at <= now);
        if (due) {
          waiting.delete(due.gap.id);
          start(due.gap);
          continue;
        }
        const [gap] = pickGaps(gaps, { limit: 1, dispatched, shipped });
        if (!gap) return;
        dispatched.add(gap.id);
        start(gap);
      }
      // The run's budget is spent: what waits for another attempt is left for a later run.
      if (attemptsThisRun >= world.runSize || dispatches >= options.dispatches) waiting.clear();
    };

    fill();
    if (inflight.length === 0 && waiting.size === 0) break; // nothing left to pick: all shipped or blocked
    while (inflight.length > 0 || waiting.size > 0) {
      const nextEnd = Math.min(...inflight.map((a) => a.endAt));
      // A waiting gap moves the clock only when it could start (a slot is free).
      const nextWait = inflight.length < world.maxParallel
        ? Math.min(...[...waiting.values()].map((w) => w.at))
        : Infinity;
      now = Math.max(now, Math.min(nextEnd, nextWait));
      for (const a of inflight.filter((x) => x.endAt <= now)) {
        inflight.splice(inflight.indexOf(a), 1);
        const took = a.endAt - a.startAt;
        agentMs += took;
        const cls = classify(a.outcome, a.reason, a.tail);
        if (a.outcome === "shipped") {
          ships++;
          shipped.add(a.gap.id);
        } else wastedMs += took;
        const [name, model, provider] = splitArm(a.arm);
        rows.push({
          gapId: a.gap.id,
          outcome: a.outcome,
          notes: [
            a.reason,
            `backend=${name}`,
            model ? `model=${model}` : "",
            provider ? `provider=${provider}` : "",
          ]
            .filter((l) => l !== "").join("\n"),
          createdAt: "",
          effort: a.gap.effort,
          domain: gapDomain(a.gap.id),
          durationS: Math.round(took / 1000),
        });
        const after = cascade.outcome(a.gap.id, a.arm, cls, a.outcome === "shipped", now);
        if (after.retryAt !== undefined) waiting.set(a.gap.id, { gap: a.gap, at: after.retryAt });
      }
      fill();
    }
  }
  const hours = agentMs / 3_600_000;
  return {
    policy,
    seed,
    adaptiveDeadlines: adaptive,
    dispatches,
    runs,
    ships,
    agent_hours: round(hours, 3),
    ships_per_agent_hour: round(hours > 0 ? ships / hours : 0, 4),
    wasted_agent_minutes: round(wastedMs / MINUTE, 1),
    rate_limit_hits: rateLimitHits,
    regret: round(regret, 2),
    hours: round(now / 3_600_000, 2),
  };
}

/** `backend/model@provider` -> its parts (the model may hold slashes). */
function splitArm(arm: string): [string, string, string] {
  const at = arm.lastIndexOf("@");
  const provider = at > 0 ? arm.slice(at + 1) : "";
  const rest = at > 0 ? arm.slice(0, at) : arm;
  const slash = rest.indexOf("/");
  return slash > 0 ? [rest.slice(0, slash), rest.slice(slash + 1), provider] : [rest, "", provider];
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
