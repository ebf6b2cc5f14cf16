/**
 * The scoreboard: what each arm's record says, per arm and per arm x task
 * class, built from reflection rows (their notes' `backend=`, `model=` and
 * `provider=` lines name the arm) and kept up to date within a run
 * ({@linkcode Scoreboard.add}: every outcome counts for the next dispatch).
 *
 * Old evidence fades per arm, not by a global window: each of an arm's rows
 * weighs half as much after {@linkcode HALF_LIFE_ROWS} newer rows of the same
 * arm (a specialist arm used rarely keeps its record), and half as much
 * after {@linkcode HALF_LIFE_DAYS} days. When the last
 * {@linkcode CHANGE_WINDOW} outcomes of an arm in a task class break from
 * the evidence before them (a change), that older evidence is cut to a
 * quarter (a shift in the mix of classes is not a change). A rate limit says the arm is busy, not
 * bad: it counts toward the arm's availability, never its quality. Odd rows
 * (no backend line, an outcome that is not one of the contract's) are
 * skipped, never an error. Pure over the rows.
 *
 * @module
 */
import { armLabel, decodeNotes } from "../store/notes.ts";
import { classify } from "./classify.ts";
import type { ArmRecord, ArmUsage, Scores } from "./policy.ts";
import { type RoutingTable, taskClassOf } from "./routing.ts";

/** What the scoreboard reads of a reflection. */
export interface ScoredRow {
  gapId: string;
  outcome: string;
  notes: string;
  /** SQLite's `YYYY-MM-DD HH:MM:SS` (UTC); "" when unknown (no ageing). */
  createdAt: string;
  /** How long the dispatch ran (null or absent: unknown). */
  durationS?: number | null;
  /** The gap's effort (absent: unknown), for the hours an attempt of it takes. */
  effort?: string;
}

/** A scoreboard: {@linkcode Scores}, the rows it counted, and new outcomes as they come. */
export interface Scoreboard extends Scores {
  /** Rows counted (quality or availability). */
  readonly rows: number;
  /** Count one more row, newer than all before it. */
  add(row: ScoredRow, nowMs?: number): void;
}

/** An arm's row weighs half after this many newer rows of the same arm. */
export const HALF_LIFE_ROWS = 150;
/** ... and half after this many days. */
export const HALF_LIFE_DAYS = 60;
/** Outcomes compared against the arm's record to detect a change. */
export const CHANGE_WINDOW = 12;
/** A change: the window's share of ships this many standard errors from the record. */
const CHANGE_Z = 3;
/** On a change, older evidence keeps this share of its weight. */
const CHANGE_KEEP = 0.25;
/** Availability forgets faster: half after this many newer attempts. */
const AVAILABILITY_HALF_LIFE = 20;

const OUTCOMES = new Set(["shipped", "ci_failed", "stalled", "killed"]);
const DAY_MS = 86_400_000;

/** Agent-hours and dollars of attempts (weighted sums). */
interface Spent {
  hours: number;
  timed: number;
  usd: number;
  /** Hours of the attempts whose cost is known. */
  costedHours: number;
}

/** A task class's record, with its latest outcomes apart (what a change is tested on). */
interface Cell extends ArmRecord {
  /** The last {@linkcode CHANGE_WINDOW} outcomes and their weights now. */
  recent: { shipped: boolean; weight: number }[];
}

interface ArmState extends ArmRecord {
  cells: Map<string, Cell>;
  ok: number;
  limited: number;
  /** Per effort. */
  spent: Map<string, Spent>;
  /** All efforts. */
  all: Spent;
}

/** An arm's mean hours for an effort leans on all arms' mean with this many pseudo-rows. */
const HOURS_PRIOR_ROWS = 10;

/**
 * Count `rows` (oldest first, unless `newestFirst`) per arm and task class
 * (`--learn-window` is the learning's: learn/learner.ts).
 *
 * @example
 * ```ts
 * const row = { gapId: "COG-1", outcome: "shipped", notes: "backend=claude", createdAt: "" };
 * scoreboardOf([row]).cell("claude", "cognition"); // { successes: 1, failures: 0 }
 * ```
 */
export function scoreboardOf(
  rows: readonly ScoredRow[],
  options: BoardOptions & {
    nowMs?: number;
    /** The rows come newest first (as the DB reads them). */
    newestFirst?: boolean;
  } = {},
): Scoreboard {
  const board = new Board(options);
  for (const r of options.newestFirst ? [...rows].reverse() : rows) board.add(r, options.nowMs);
  return board;
}

/** What a board counts by. */
interface BoardOptions {
  table?: Pick<RoutingTable, "taskClasses">;
}

class Board implements Scoreboard {
  #arms = new Map<string, ArmState>();
  /** All arms' spend per effort. */
  #efforts = new Map<string, Spent>();
  #counted = 0;

  constructor(readonly options: BoardOptions) {}

  get rows(): number {
    return this.#counted;
  }

  add(r: ScoredRow, nowMs?: number): void {
    if (!OUTCOMES.has(r.outcome)) return;
    const n = decodeNotes(String(r.notes ?? ""));
    if (n.backend === undefined) return;
    const arm = armLabel({ ...n, backend: n.backend });
    const at = createdMs(r.createdAt);
    const shipped = r.outcome === "shipped";
    const [reason = "", ...tail] = n.text;
    const cls = shipped ? undefined : n.class ?? classify("killed", reason, tail);
    if (!shipped && saysNothingOf(reason, cls)) return;
    const weight = nowMs !== undefined && Number.isFinite(at)
      ? Math.pow(0.5, Math.max(0, nowMs - at) / (HALF_LIFE_DAYS * DAY_MS))
      : 1;
    const s = this.#stateOf(arm);
    this.#counted++;
    const effort = String(r.effort ?? "").toLowerCase();
    for (const into of [s.all, spentOf(s.spent, effort), spentOf(this.#efforts, effort)]) {
      spend(into, r, n.cost?.usd, weight);
    }
    const busy = Math.pow(0.5, 1 / AVAILABILITY_HALF_LIFE);
    s.ok *= busy;
    s.limited *= busy;
    if (cls === "rate_limited") return void (s.limited += weight);
    s.ok += weight;
    quality(s, taskClassOf(String(r.gapId), this.options.table), shipped, weight);
  }

  cell(arm: string, taskClass: string): ArmRecord {
    const c = this.#arms.get(arm)?.cells.get(taskClass);
    return c ? { successes: c.successes, failures: c.failures } : none();
  }

  arm(arm: string): ArmRecord {
    const s = this.#arms.get(arm);
    return s ? { successes: s.successes, failures: s.failures } : none();
  }

  usage(arm: string, effort = ""): ArmUsage {
    const s = this.#arms.get(arm);
    const everyone = this.#efforts.get(effort.toLowerCase());
    const mean = everyone && everyone.timed > 0 ? everyone.hours / everyone.timed : undefined;
    const own = s?.spent.get(effort.toLowerCase());
    const k = mean === undefined ? 0 : HOURS_PRIOR_ROWS;
    const timed = (own?.timed ?? 0) + k;
    return {
      // Laplace: an arm never tried is available; one always limited nearly never.
      available: s ? (s.ok + 1) / (s.ok + s.limited + 1) : 1,
      hours: timed > 0 ? ((own?.hours ?? 0) + k * (mean ?? 0)) / timed : undefined,
      usdPerHour: s && s.all.costedHours > 0 ? s.all.usd / s.all.costedHours : undefined,
      timedRows: own?.timed ?? 0,
    };
  }

  #stateOf(arm: string): ArmState {
    let s = this.#arms.get(arm);
    if (!s) {
      s = {
        successes: 0,
        failures: 0,
        cells: new Map(),
        ok: 0,
        limited: 0,
        spent: new Map(),
        all: noSpend(),
      };
      this.#arms.set(arm, s);
    }
    return s;
  }
}

function none(): ArmRecord {
  return { successes: 0, failures: 0 };
}

function spentOf(m: Map<string, Spent>, effort: string): Spent {
  let s = m.get(effort);
  if (!s) m.set(effort, s = noSpend());
  return s;
}

function noSpend(): Spent {
  return { hours: 0, timed: 0, usd: 0, costedHours: 0 };
}

/** An attempt's time and cost, for the means (a rate limit's too: it took time). */
function spend(into: Spent, r: ScoredRow, usd: number | undefined, weight: number): void {
  if (typeof r.durationS !== "number" || !(r.durationS >= 0)) return;
  const fade = Math.pow(0.5, 1 / HALF_LIFE_ROWS);
  const hours = r.durationS / 3600;
  into.hours = into.hours * fade + weight * hours;
  into.timed = into.timed * fade + weight;
  into.usd *= fade;
  into.costedHours *= fade;
  if (usd !== undefined) {
    into.usd += weight * usd;
    into.costedHours += weight * hours;
  }
}

/**
 * One quality outcome: older evidence fades (the arm's, every class's), the
 * row counts, and when its class's latest outcomes break from what came
 * before them (a change), that older evidence is cut.
 */
function quality(s: ArmState, taskClass: string, shipped: boolean, weight: number): void {
  const keep = Math.pow(0.5, 1 / HALF_LIFE_ROWS);
  s.successes *= keep;
  s.failures *= keep;
  for (const c of s.cells.values()) {
    c.successes *= keep;
    c.failures *= keep;
    for (const r of c.recent) r.weight *= keep;
  }
  let cell = s.cells.get(taskClass);
  if (!cell) s.cells.set(taskClass, cell = { successes: 0, failures: 0, recent: [] });
  if (shipped) {
    s.successes += weight;
    cell.successes += weight;
  } else {
    s.failures += weight;
    cell.failures += weight;
  }
  cell.recent.push({ shipped, weight });
  if (cell.recent.length > CHANGE_WINDOW) cell.recent.shift();
  const cut = changeCut(cell);
  if (cut) {
    // The class's older evidence goes, and with it the arm's share of it.
    cell.successes -= cut.successes;
    cell.failures -= cut.failures;
    s.successes = Math.max(0, s.successes - cut.successes);
    s.failures = Math.max(0, s.failures - cut.failures);
  }
}

/**
 * What a change cuts from a class's record: its latest {@linkcode CHANGE_WINDOW}
 * outcomes' share of ships this many standard errors ({@linkcode CHANGE_Z})
 * from the share of the evidence before them; then that older evidence
 * keeps {@linkcode CHANGE_KEEP} of its weight. Undefined: no change.
 */
function changeCut(cell: Cell): ArmRecord | undefined {
  if (cell.recent.length < CHANGE_WINDOW) return undefined;
  let winS = 0;
  let winF = 0;
  for (const r of cell.recent) {
    if (r.shipped) winS += r.weight;
    else winF += r.weight;
  }
  const oldS = Math.max(0, cell.successes - winS);
  const oldF = Math.max(0, cell.failures - winF);
  if (oldS + oldF < 2 * CHANGE_WINDOW) return undefined;
  const p = (oldS + 1) / (oldS + oldF + 2);
  const share = cell.recent.filter((r) => r.shipped).length / CHANGE_WINDOW;
  if (Math.abs(share - p) <= CHANGE_Z * Math.sqrt(p * (1 - p) / CHANGE_WINDOW)) return undefined;
  // Tested once per window: the next change needs a window of its own.
  cell.recent = [];
  return { successes: oldS * (1 - CHANGE_KEEP), failures: oldF * (1 - CHANGE_KEEP) };
}

/**
 * A reflection's `created_at` (SQLite's `YYYY-MM-DD HH:MM:SS`, UTC) in ms
 * since the epoch; NaN when unreadable.
 *
 * @example
 * ```ts
 * createdMs("2026-12-06 10:00:00"); // 1796551200000
 * ```
 */
export function createdMs(createdAt: string): number {
  return Date.parse(`${String(createdAt).replace(" ", "T")}Z`);
}

/**
 * A failure that says nothing of the arm's quality: an interrupted stop, a
 * lost orchestrator, an operator's stop, a take-over, or a transient error
 * (the classifier's own rule: learn/classify.ts). A rate limit is the arm's
 * availability, counted apart.
 *
 * @example
 * ```ts
 * saysNothingOfTheArm("interrupted by SIGINT\nbackend=claude"); // true
 * saysNothingOfTheArm("exit code 1\nbackend=claude\nERROR: read ECONNRESET"); // true
 * saysNothingOfTheArm("exit code 1\nbackend=claude\nERROR: tests failed"); // false
 * ```
 */
export function saysNothingOfTheArm(notes: string): boolean {
  const n = decodeNotes(notes);
  const [reason = "", ...tail] = n.text;
  return saysNothingOf(reason, n.class ?? classify("killed", reason, tail));
}

function saysNothingOf(reason: string, cls: string | undefined): boolean {
  if (/^stopped by the operator|^lease taken over/.test(reason)) return true;
  return cls === undefined || cls === "transient";
}
