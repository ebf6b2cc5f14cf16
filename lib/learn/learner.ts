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
import type { Result } from "../util/result.ts";
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
  /** Re-read the reflections at most this often (default 30 s). */
  refreshMs?: number;
  now: () => number;
  /** Told when a re-read fails. */
  warn?: (message: string) => void;
}

/** A run's learning, current as of its last outcome. */
export class Learned {
  #o: LearnedOptions;
  #rows: LearnRow[] = [];
  #board!: Scoreboard;
  #deadlines?: AdaptiveDeadlines;
  #lessons = new Map<string, string[]>();
  /** Each row's arm, read from its notes once. */
  #durations = new WeakMap<LearnRow, DurationRow>();
  #readAt = 0;
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

  /** Re-read the reflections when the last read is `refreshMs` old (the run's heartbeat). */
  async refresh(): Promise<void> {
    if (!this.#o.reload || this.#o.now() - this.#readAt < (this.#o.refreshMs ?? 30_000)) return;
    this.#readAt = this.#o.now();
    const read = await this.#o.reload();
    if (read.ok) this.#replace(read.value);
    else this.#o.warn?.(`${read.error}; learning from what was read before`);
  }

  #replace(rows: readonly LearnRow[]): void {
    const now = this.#o.now();
    this.#readAt = now;
    const sinceMs = this.#o.windowMs === undefined ? undefined : now - this.#o.windowMs;
    this.#rows = sinceMs === undefined
      ? [...rows]
      : rows.filter((r) => createdMs(r.createdAt) >= sinceMs);
    this.#board = scoreboardOf(this.#rows, {
      table: this.#o.table,
      nowMs: now,
      newestFirst: true,
    });
    this.#deadlines = undefined;
    this.#lessons.clear();
  }
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
