/**
 * When a run starts what: the pure scheduling of its attempts, which the run
 * loop (watch/fill.ts) and the simulator (sim/simulate.ts) both follow. A
 * fill takes one {@linkcode fillStep} after another: while a slot and the
 * run's `--max-total` budget allow, a gap whose next attempt is due goes
 * first (it was picked already), then new gaps are picked; a shared ledger
 * that is full or silent holds new picks (not the due retries: trying them
 * is how the run learns it freed up); once the budget is spent, the gaps
 * waiting for another attempt get none in this run.
 *
 * @module
 */
import type { Gap } from "../backlog/gap.ts";

/** A gap waiting for its next attempt (a retry's backoff, every arm cooling, the fleet). */
export interface Waiting {
  gap: Gap;
  /** Not before this time (ms, the run's clock). */
  at: number;
}

/** The room a run has now. */
export interface Room {
  /** Free agent slots (`--max-parallel` minus the agents in flight). */
  free: number;
  /** Attempts the run may still make (`--max-total` minus its attempts); undefined: no cap. */
  left?: number;
}

/** What a fill does next. */
export type FillStep =
  /** Start the next attempt of this waiting gap (remove it from the waiting list first). */
  | { kind: "retry"; gap: Gap }
  /** Pick at most `limit` new gaps and start them in order. */
  | { kind: "pick"; limit: number }
  /** Nothing more now: no free slot, or the shared ledger holds new picks. */
  | { kind: "done" }
  /** The budget is spent: what waits for another attempt is left for a later run. */
  | { kind: "spent" };

/**
 * The next step of a fill.
 *
 * @param room free slots and attempts left
 * @param waiting gaps waiting for their next attempt, in the order they began waiting
 * @param now the run's clock
 * @param held the shared ledger is full or silent: no new pick can be claimed
 * @example
 * ```ts
 * fillStep({ free: 2 }, new Map(), 0, false); // { kind: "pick", limit: 2 }
 * fillStep({ free: 2, left: 0 }, new Map(), 0, false); // { kind: "spent" }
 * fillStep({ free: 0 }, new Map(), 0, false); // { kind: "done" }
 * ```
 */
export function fillStep(
  room: Room,
  waiting: ReadonlyMap<string, Waiting>,
  now: number,
  held: boolean,
): FillStep {
  const budget = room.left === undefined ? room.free : Math.min(room.free, room.left);
  if (budget <= 0) {
    return room.left !== undefined && room.left <= 0 ? { kind: "spent" } : { kind: "done" };
  }
  for (const w of waiting.values()) if (w.at <= now) return { kind: "retry", gap: w.gap };
  if (held) return { kind: "done" };
  return { kind: "pick", limit: budget };
}

/**
 * When the first waiting gap is due (Infinity when none waits).
 *
 * @example
 * ```ts
 * nextDue(new Map()); // Infinity
 * ```
 */
export function nextDue(waiting: ReadonlyMap<string, Waiting>): number {
  let first = Infinity;
  for (const w of waiting.values()) first = Math.min(first, w.at);
  return first;
}
