/**
 * One run's cascades: for each gap, its candidates in the order the policy
 * gave them (once, at its first attempt), which one each attempt used, and
 * whether an outcome sends the gap on to the next one. A `rate_limited` or
 * `transient` failure moves the gap to its next candidate after a backoff
 * (min(10 s x 2^(n-1), 5 min)), at most `maxAttempts` attempts per gap; a
 * rate-limited arm cools down for the whole run (no new dispatch to it until
 * its wait is over; a success resets it). The clock is given: the simulator
 * and the real loop drive the same code.
 *
 * @module
 */
import { backoffMs, type Cooldowns, type FailureClass, RETRYABLE } from "./classify.ts";
import {
  type Objective,
  orderCascade,
  type Policy,
  type Random,
  type Ranked,
  type Scores,
} from "./policy.ts";
import { routeGap, type RoutingTable } from "./routing.ts";

/** What a run's cascades are made from. */
export interface CascadeOptions {
  table: RoutingTable;
  scores: Scores;
  policy: Policy;
  /** What a learned order maximises (default ships per agent-hour). */
  objective?: Objective;
  random: Random;
  /** Attempts per gap per run (default 3). */
  maxAttempts: number;
  cooldowns: Cooldowns;
  /** Reorders a fresh cascade (the simulator's best fixed order, which knows the arms' odds). */
  order?: (ranked: Ranked[], taskClass: string) => Ranked[];
}

/** The arm a gap's next attempt goes to. */
export interface Attempt {
  pick: Ranked;
  /** 1 for the first attempt. */
  attempt: number;
  taskClass: string;
}

/** What {@linkcode Cascade.next} says. */
export type Next =
  | { kind: "attempt"; attempt: Attempt }
  /** Every candidate it may use cools down: ask again at `until`. */
  | { kind: "wait"; until: number }
  /** The table gives the gap no candidate: use the run's one agent command. */
  | { kind: "none" };

/** What {@linkcode Cascade.outcome} decides. */
export interface AfterOutcome {
  /** Set when the gap goes on to its next candidate: not before this time. */
  retryAt?: number;
  /** The arm now cooling down (a rate limit), and until when. */
  cooling?: { arm: string; until: number };
}

interface GapState {
  ranked: Ranked[];
  taskClass: string;
  /** Index in `ranked` of the last attempt's candidate; -1 before the first. */
  index: number;
  attempts: number;
}

/** The cascades of one run. */
export class Cascade {
  #o: CascadeOptions;
  #gaps = new Map<string, GapState>();

  constructor(options: CascadeOptions) {
    this.#o = options;
  }

  /**
   * The candidate of the gap's next attempt at `now`: the first one after the
   * last attempt's that is not cooling down.
   */
  next(gap: { id: string; priority: string; effort: string }, now: number): Next {
    let state = this.#gaps.get(gap.id);
    if (!state) {
      const routed = routeGap(gap, this.#o.table);
      if (routed.candidates.length === 0) return { kind: "none" };
      const ordered = orderCascade(
        routed.candidates,
        routed.taskClass,
        this.#o.scores,
        this.#o.policy,
        this.#o.random,
        { objective: this.#o.objective, effort: gap.effort },
      );
      const ranked = this.#o.order?.(ordered, routed.taskClass) ?? ordered;
      state = { ranked, taskClass: routed.taskClass, index: -1, attempts: 0 };
      this.#gaps.set(gap.id, state);
    }
    let wait = Infinity;
    for (let i = state.index + 1; i < state.ranked.length; i++) {
      const until = this.#o.cooldowns.coolingUntil(state.ranked[i].arm, now);
      if (until !== undefined) {
        wait = Math.min(wait, until);
        continue;
      }
      state.index = i;
      state.attempts++;
      return {
        kind: "attempt",
        attempt: { pick: state.ranked[i], attempt: state.attempts, taskClass: state.taskClass },
      };
    }
    // Only cooling candidates are left (or none, which the caller never asks after `outcome`).
    return { kind: "wait", until: Number.isFinite(wait) ? wait : now };
  }

  /** The gap's cascade as ordered at its first attempt (empty before it). */
  candidatesOf(gapId: string): readonly Ranked[] {
    return this.#gaps.get(gapId)?.ranked ?? [];
  }

  /**
   * The gap's attempt on `arm` ended at `now` (class undefined: shipped or
   * interrupted): cool the arm on a rate limit, reset it on a ship, and say
   * whether the gap goes on to its next candidate.
   */
  outcome(
    gapId: string,
    arm: string,
    cls: FailureClass | undefined,
    shipped: boolean,
    now: number,
  ): AfterOutcome {
    const out: AfterOutcome = {};
    if (shipped) this.#o.cooldowns.success(arm);
    if (cls === "rate_limited") out.cooling = { arm, until: this.#o.cooldowns.hit(arm, now) };
    const state = this.#gaps.get(gapId);
    if (
      state && cls !== undefined && RETRYABLE.has(cls) && state.attempts < this.#o.maxAttempts &&
      state.index + 1 < state.ranked.length
    ) {
      out.retryAt = now + backoffMs(state.attempts);
    }
    return out;
  }
}
