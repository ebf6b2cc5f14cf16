/**
 * A simulated world (`simulate --world FILE`, YAML): the routing table to
 * use, how its backlog is drawn, the arms' hidden success probabilities,
 * rate limits, speeds and prices, how the odds change (shifts, a drift),
 * how much gaps of a class differ, how long agents take, and the
 * parallelism; `extends:` another world and change some keys. {@linkcode loadWorld}
 * reads and checks one; a malformed world is one line, `file:line: what`.
 * {@linkcode worldGaps} draws its backlog from a seed.
 *
 * @module
 */
import { dirname, resolve } from "../util/path.ts";
import type { Gap } from "../backlog/gap.ts";
import { parseYaml } from "../backlog/yaml.ts";
import { isRecord } from "../util/record.ts";
import { type Deadlines, DEFAULT_DEADLINES, parseDuration } from "../util/duration.ts";
import { errorMessage, fail, ok, type Result } from "../util/result.ts";
import { seededRandom } from "../learn/policy.ts";
import { BUILTIN_ROUTING_NAME, loadRouting, type RoutingTable } from "../learn/routing.ts";

/** One arm of a world: its hidden success probability per task class, rate limit, speed, price. */
export interface WorldArm {
  /** Task class -> probability; `default` for the others. */
  success: Record<string, number>;
  rateLimit?: { requests: number; windowMs: number };
  /** Its attempts take this times the world's durations (default 1). */
  durationScale?: number;
  /** Dollars per agent-hour; absent: unknown (its attempts carry no cost). */
  costPerHour?: number;
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
  /** From each `after`-th dispatch on, these arms' success probabilities replace theirs. */
  shifts: { after: number; arms: Record<string, WorldArm> }[];
  /** A gradual change: from dispatch `from` to `to` the arms' odds move linearly to these. */
  drift?: { from: number; to: number; arms: Record<string, WorldArm> };
  /** How much gaps of one task class differ (logit sd of a gap's difficulty; 0: not at all). */
  spread: number;
  /** Dispatches a simulation of this world makes by default. */
  dispatches?: number;
}

const MINUTE = 60_000;

/** Reads the values of one world file, each failure one `file:line: what`. */
class Reader {
  constructor(readonly path: string, readonly lineOf: (o: unknown) => number) {}

  bad(o: unknown, what: string): { ok: false; error: string } {
    return fail(`${this.path}:${this.lineOf(o)}: ${what}`);
  }

  /** A mapping of names to weights >= 0. */
  weights(at: unknown, v: unknown, what: string): Result<[string, number][]> {
    if (!isRecord(v) || Object.keys(v).length === 0) {
      return this.bad(at, `${what}: a mapping of weights`);
    }
    const out: [string, number][] = [];
    for (const [k, w] of Object.entries(v)) {
      if (num(w, 0, 1e9) === undefined) {
        return this.bad(v, `${what}: ${k}: a weight is a number >= 0`);
      }
      out.push([k, w as number]);
    }
    return ok(out);
  }

  /** A duration (`20m`) or a number of minutes. */
  duration(at: unknown, v: unknown, what: string): Result<number> {
    if (typeof v === "number") return ok(v * MINUTE);
    const d = typeof v === "string" ? parseDuration(v) : fail("");
    return d.ok ? d : this.bad(at, `${what}: a duration (e.g. 20m) or minutes`);
  }
}

/** `v` when it is a number within [min, max]. */
function num(v: unknown, min: number, max: number): number | undefined {
  return typeof v === "number" && v >= min && v <= max ? v : undefined;
}

/**
 * Read and check a world file (YAML); one line `file:line: what` when it is malformed.
 *
 * @example
 * ```ts ignore
 * const world = await loadWorld("examples/worlds/chump.yaml");
 * ```
 */
export async function loadWorld(path: string): Promise<Result<World>> {
  const read = await readWorld(path, 0);
  if (!read.ok) return read;
  const { doc, reader } = read.value;
  if (typeof doc.routing !== "string") {
    return reader.bad(doc, "routing: the routing table's path");
  }
  const table = await loadRouting(doc.routing);
  if (!table.ok) return table;
  return worldOf(reader, doc, table.value);
}

/** A world file's mapping, with what it `extends:` under it (its routing path made absolute). */
async function readWorld(
  path: string,
  depth: number,
): Promise<Result<{ doc: Record<string, unknown>; reader: Reader }>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    return fail(`${path}: cannot read the world: ${errorMessage(e)}`);
  }
  const parsed = parseYaml(text);
  if (!parsed.ok) {
    return fail(`${path}:${parsed.error.line ?? 1}: not valid YAML: ${parsed.error.reason}`);
  }
  const doc = parsed.value.value;
  const reader = new Reader(
    path,
    (o) => (o && typeof o === "object" ? parsed.value.lineOf(o) : undefined) ?? 1,
  );
  if (!isRecord(doc)) {
    return reader.bad(doc, "a world is a mapping (routing:, gaps:, arms:, durations:)");
  }
  const own = { ...doc };
  if (typeof own.routing === "string" && own.routing !== BUILTIN_ROUTING_NAME) {
    own.routing = resolve(dirname(path), own.routing);
  }
  if (own.extends === undefined) return ok({ doc: own, reader });
  if (typeof own.extends !== "string" || depth >= 4) {
    return reader.bad(doc, "extends: the path of the world this one changes (at most 4 deep)");
  }
  const base = await readWorld(resolve(dirname(path), own.extends), depth + 1);
  if (!base.ok) return base;
  delete own.extends;
  // The keys this file sets replace the base's, whole.
  return ok({ doc: { ...base.value.doc, ...own }, reader });
}

/** The world of a checked mapping and its routing table. */
function worldOf(
  read: Reader,
  doc: Record<string, unknown>,
  table: RoutingTable,
): Result<World> {
  const gaps = gapsOf(read, doc);
  if (!gaps.ok) return gaps;
  const deadlines = deadlinesOf(read, doc);
  if (!deadlines.ok) return deadlines;
  const durations = durationsOf(read, doc);
  if (!durations.ok) return durations;
  const arms = armsOf(read, doc, doc.arms, "arms");
  if (!arms.ok) return arms;
  const shifts = shiftsOf(read, doc);
  if (!shifts.ok) return shifts;
  const drift = driftOf(read, doc);
  if (!drift.ok) return drift;
  const spread = num(doc.success_spread ?? 0, 0, 5);
  if (spread === undefined) return read.bad(doc, "success_spread: a number from 0 to 5");
  const dispatches = doc.dispatches === undefined ? undefined : num(doc.dispatches, 1, 1e6);
  if (doc.dispatches !== undefined && dispatches === undefined) {
    return read.bad(doc, "dispatches: a number from 1");
  }
  const maxParallel = num(doc.max_parallel ?? 4, 1, 1000);
  const runSize = num(doc.run_size ?? 20, 1, 1e6);
  const hang = num(doc.hang ?? 0.3, 0, 1);
  const transient = num(doc.transient ?? 0, 0, 1);
  if (
    maxParallel === undefined || runSize === undefined || hang === undefined ||
    transient === undefined
  ) {
    return read.bad(
      doc,
      "max_parallel, run_size: numbers from 1; hang, transient: shares from 0 to 1",
    );
  }
  return ok({
    table,
    maxParallel,
    runSize,
    gaps: gaps.value,
    deadlines: deadlines.value,
    durations: durations.value,
    hang,
    transient,
    arms: arms.value,
    shifts: shifts.value,
    drift: drift.value,
    spread,
    dispatches,
  });
}

/** `gaps:` how the backlog is drawn. */
function gapsOf(read: Reader, doc: Record<string, unknown>): Result<World["gaps"]> {
  const g = doc.gaps;
  if (!isRecord(g)) {
    return read.bad(doc, "gaps: a mapping (count:, priorities:, efforts:, domains:)");
  }
  const count = num(g.count, 1, 1e6);
  if (count === undefined) return read.bad(g, "gaps: count: a number from 1");
  const priorities = read.weights(doc, g.priorities ?? { P1: 1 }, "gaps: priorities");
  if (!priorities.ok) return priorities;
  const efforts = read.weights(doc, g.efforts ?? { s: 1 }, "gaps: efforts");
  if (!efforts.ok) return efforts;
  const domains = read.weights(doc, g.domains ?? { AUTO: 1 }, "gaps: domains");
  if (!domains.ok) return domains;
  const depends = num(g.depends ?? 0, 0, 1);
  if (depends === undefined) return read.bad(g, "gaps: depends: a share from 0 to 1");
  return ok({
    count,
    priorities: priorities.value,
    efforts: efforts.value,
    domains: domains.value,
    depends,
  });
}

/** `deadlines:` the configured soft deadlines, per effort. */
function deadlinesOf(read: Reader, doc: Record<string, unknown>): Result<Deadlines> {
  const deadlines: Record<string, number> = { ...DEFAULT_DEADLINES };
  if (doc.deadlines === undefined) return ok(deadlines as Deadlines);
  if (!isRecord(doc.deadlines)) return read.bad(doc, "deadlines: a mapping of effort to duration");
  for (const [effort, v] of Object.entries(doc.deadlines)) {
    const d = read.duration(doc, v, `deadlines: ${effort}`);
    if (!d.ok) return d;
    deadlines[effort] = d.value;
  }
  return ok(deadlines as Deadlines);
}

/** `durations:` per effort, the lognormal of shipped and failed attempts. */
function durationsOf(read: Reader, doc: Record<string, unknown>): Result<World["durations"]> {
  if (!isRecord(doc.durations)) {
    return read.bad(doc, "durations: per effort, { shipped: [median, sigma], failed: [...] }");
  }
  const durations: World["durations"] = {};
  for (const [effort, v] of Object.entries(doc.durations)) {
    const pair = (p: unknown, what: string): Result<[number, number]> => {
      if (!Array.isArray(p) || p.length !== 2 || num(p[1], 0, 10) === undefined) {
        return read.bad(v, `durations: ${effort}: ${what}: [median, sigma]`);
      }
      const m = read.duration(doc, p[0], `durations: ${effort}: ${what}`);
      return m.ok ? ok([m.value, p[1]]) : m;
    };
    if (!isRecord(v)) return read.bad(doc.durations, `durations: ${effort}: { shipped:, failed: }`);
    const s = pair(v.shipped, "shipped");
    if (!s.ok) return s;
    const f = pair(v.failed, "failed");
    if (!f.ok) return f;
    durations[effort] = { shipped: s.value, failed: f.value };
  }
  return ok(durations);
}

/** `arms:` (or `shift: arms:`) each arm's hidden odds and rate limit. */
function armsOf(
  read: Reader,
  doc: unknown,
  v: unknown,
  what: string,
): Result<Record<string, WorldArm>> {
  if (!isRecord(v)) return read.bad(doc, `${what}: a mapping of arm -> { success:, rate_limit: }`);
  const out: Record<string, WorldArm> = {};
  for (const [arm, a] of Object.entries(v)) {
    if (!isRecord(a) || !isRecord(a.success)) {
      return read.bad(v, `${what}: ${arm}: success: { default: p, <task class>: p }`);
    }
    for (const [k, p] of Object.entries(a.success)) {
      if (num(p, 0, 1) === undefined) {
        return read.bad(a, `${what}: ${arm}: success: ${k}: a probability`);
      }
    }
    const one: WorldArm = { success: a.success as Record<string, number> };
    for (
      const [key, field, min] of [["duration_scale", "durationScale", 0.01], [
        "cost_per_hour",
        "costPerHour",
        0,
      ]] as const
    ) {
      if (a[key] === undefined) continue;
      const v = num(a[key], min, 1e6);
      if (v === undefined) return read.bad(a, `${what}: ${arm}: ${key}: a number from ${min}`);
      one[field] = v;
    }
    if (a.rate_limit !== undefined) {
      const r = a.rate_limit;
      if (!isRecord(r) || num(r.requests, 1, 1e9) === undefined) {
        return read.bad(a, `${what}: ${arm}: rate_limit: { requests: N, window: D }`);
      }
      const w = read.duration(doc, r.window, `${what}: ${arm}: rate_limit: window`);
      if (!w.ok) return w;
      one.rateLimit = { requests: r.requests as number, windowMs: w.value };
    }
    out[arm] = one;
  }
  return ok(out);
}

/** `shift:` (or a list `shifts:`) from which dispatch on which arms change. */
function shiftsOf(read: Reader, doc: Record<string, unknown>): Result<World["shifts"]> {
  const list = doc.shifts !== undefined ? doc.shifts : doc.shift === undefined ? [] : [doc.shift];
  if (!Array.isArray(list)) return read.bad(doc, "shifts: a list of { after: N, arms: }");
  const out: World["shifts"] = [];
  for (const sh of list) {
    if (!isRecord(sh) || num(sh.after, 0, 1e9) === undefined) {
      return read.bad(doc, "shift: { after: N, arms: }");
    }
    const arms = armsOf(read, doc, sh.arms, "shift: arms");
    if (!arms.ok) return arms;
    out.push({ after: sh.after as number, arms: arms.value });
  }
  return ok(out.sort((a, b) => a.after - b.after));
}

/** `drift:` the arms' odds move linearly from dispatch `from` to `to`. */
function driftOf(read: Reader, doc: Record<string, unknown>): Result<World["drift"]> {
  const d = doc.drift;
  if (d === undefined) return ok(undefined);
  const from = isRecord(d) ? num(d.from, 0, 1e9) : undefined;
  const to = isRecord(d) ? num(d.to, 0, 1e9) : undefined;
  if (!isRecord(d) || from === undefined || to === undefined || to <= from) {
    return read.bad(doc, "drift: { from: N, to: M (> N), arms: }");
  }
  const arms = armsOf(read, doc, d.arms, "drift: arms");
  if (!arms.ok) return arms;
  return ok({ from, to, arms: arms.value });
}

/**
 * The backlog of a world, drawn from its seed.
 *
 * @example
 * ```ts ignore
 * const gaps = worldGaps(world, 1);
 * ```
 */
export function worldGaps(world: World, seed: number): Gap[] {
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
    });
  }
  return gaps;
}
