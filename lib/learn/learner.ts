/**
 * What a run has learned so far, kept up to date as it goes: the
 * scoreboard its cascades order by, the adaptive deadlines and the
 * lessons its prompts carry. Every outcome of the run counts for its next
 * dispatch ({@linkcode Learned.record}); what other orchestrators recorded
 * (with a shared ledger, other hosts) comes in when the run's heartbeat
 * re-reads the reflections ({@linkcode Learned.refresh}, at most every
 * `refreshMs`). The simulator drives the same object.
 *
 * @module
 */
import { armOfNotes } from "../store/notes.ts";
import type { Deadlines } from "../util/duration.ts";
import { errorMessage, type Result } from "../util/result.ts";
import { type AdaptiveDeadlines, adaptiveDeadlines, type DurationRow } from "./deadlines.ts";
import { promptLessons } from "./lessons.ts";
import type { ArmRecord, ArmUsage, Scores } from "./policy.ts";
import type { RoutingTable } from "./routing.ts";
import { createdMs, type Scoreboard, scoreboardOf, type ScoredRow } from "./scoreboard.ts";

/** One reflection as the learning reads it. */
export interface LearnRow extends ScoredRow {
  effort: string;
  domain: string;
  durationS: number | null;
}

/** How a run learns. */
export interface LearnedOptions {
  /** The reflections at the start, newest first (the DB's order). */
  rows: readonly LearnRow[];
  /** Read them again (the heartbeat's refresh); an error keeps what was known. */
  reload?: () => Promise<Result<LearnRow[]>>;
  table?: Pick<RoutingTable, "taskClasses">;
  /** The deadlines configured (what adaptive ones start from and never exceed). */
  configured: Deadlines;
  /** `--learn-window`: only rows this recent count. */
  windowMs?: number;
  /** Re-read the reflections at most this often (default {@linkcode REFRESH_MS}). */
  refreshMs?: number;
  now: () => number;
  /** Told when a re-read fails. */
  warn?: (message: string) => void;
}

/** How often a run re-reads the reflections by default (a whole copy of the fleet's with --ledger). */
export const REFRESH_MS = 60_000;

/** A run's learning, current as of its last outcome. */
export class Learned {
  #o: LearnedOptions;
  #rows: LearnRow[] = [];
  #board!: Scoreboard;
  #deadlines?: AdaptiveDeadlines;
  #lessons = new Map<string, string[]>();
  /** Each row as the deadlines read it (its arm decoded from its notes once). */
  #durations = new WeakMap<LearnRow, DurationRow>();
  #readAt = 0;
  /** A re-read under way, and the outcomes recorded since it began. */
  #reading?: { done: Promise<void>; recorded: LearnRow[] };
  /** The scores a cascade orders by: always the current scoreboard's. */
  readonly scores: Scores & { readonly rows: number };

  constructor(options: LearnedOptions) {
    this.#o = options;
    this.#replace(options.rows);
    const board = () => this.#board;
    this.scores = {
      get rows() {
        return board().rows;
      },
      cell: (arm: string, taskClass: string): ArmRecord => board().cell(arm, taskClass),
      arm: (arm: string): ArmRecord => board().arm(arm),
      usage: (arm: string, effort?: string): ArmUsage =>
        board().usage?.(arm, effort) ?? { available: 1, hours: undefined, usdPerHour: undefined },
    };
  }

  /** An outcome of this run: it counts for the next dispatch. */
  record(row: LearnRow): void {
    this.#reading?.recorded.push(row);
    this.#rows.unshift(row);
    this.#board.add(row, this.#o.now());
    this.#deadlines = undefined;
    this.#lessons.clear();
  }

  /** The adaptive deadlines as of now. */
  deadlines(): AdaptiveDeadlines {
    return this.#deadlines ??= adaptiveDeadlines(
      this.#rows.map((r) => {
        let d = this.#durations.get(r);
        if (!d) this.#durations.set(r, d = durationRow(r));
        return d;
      }),
      this.#o.configured,
    );
  }

  /** The lessons of a domain's prompts as of now. */
  lessons(domain: string): string[] {
    let l = this.#lessons.get(domain);
    if (!l) this.#lessons.set(domain, l = promptLessons(this.#rows, domain));
    return l;
  }

  /** The rows counted (newest first). */
  get rows(): readonly LearnRow[] {
    return this.#rows;
  }

  /**
   * Re-read the reflections when the last read is `refreshMs` old (the
   * run's heartbeat): in the background, one read at a time, never holding
   * up the caller; an outcome recorded while it reads is kept, once. The
   * promise (of the read, or an already resolved one) is for tests.
   */
  refresh(): Promise<void> {
    const due = this.#o.now() - this.#readAt >= (this.#o.refreshMs ?? REFRESH_MS);
    if (this.#reading || !this.#o.reload || !due) {
      return this.#reading?.done ?? Promise.resolve();
    }
    this.#readAt = this.#o.now();
    const recorded: LearnRow[] = [];
    const keep = (why: string) => this.#o.warn?.(`${why}; learning from what was read before`);
    const done = this.#o.reload().then(
      (read) => {
        if (!read.ok) return keep(read.error);
        const stored = new Set(read.value.map(rowKey));
        const missing = recorded.filter((r) => !stored.has(rowKey(r))).reverse();
        this.#replace(read.value, missing);
      },
      (e) => keep(errorMessage(e)),
    ).finally(() => this.#reading = undefined);
    this.#reading = { done, recorded };
    return done;
  }

  /**
   * Learn from `rows` as read (within the window) and `fresh`, outcomes this
   * run recorded that the read did not see (just now: within any window).
   */
  #replace(rows: readonly LearnRow[], fresh: readonly LearnRow[] = []): void {
    const now = this.#o.now();
    this.#readAt = now;
    const sinceMs = this.#o.windowMs === undefined ? undefined : now - this.#o.windowMs;
    const read = sinceMs === undefined
      ? rows
      : rows.filter((r) => createdMs(r.createdAt) >= sinceMs);
    this.#rows = [...fresh, ...read];
    this.#board = scoreboardOf(this.#rows, {
      table: this.#o.table,
      nowMs: now,
      newestFirst: true,
    });
    this.#deadlines = undefined;
    this.#lessons.clear();
  }
}

/** What tells a recorded outcome from the same row read back. */
function rowKey(r: LearnRow): string {
  return `${r.gapId}\u0000${r.outcome}\u0000${r.durationS}\u0000${r.notes}`;
}

function durationRow(r: LearnRow): DurationRow {
  return {
    effort: r.effort,
    domain: r.domain,
    arm: armOfNotes(String(r.notes ?? "")),
    outcome: r.outcome,
    durationS: r.durationS,
  };
}
