/**
 * What the monitor asks a PR provider, and what it gets back. A provider
 * answers for ALL watched branches in one poll (one `gh` call per tick, not
 * one per branch) and never throws: a failure is a value, logged by the
 * monitor and retried next tick.
 *
 * @module
 */
import type { Result } from "../../util/result.ts";

/** The PR state of one branch at one tick. */
export type PrState =
  | { state: "none" }
  | { state: "open" | "merged" | "closed"; number?: number };

/** A branch the monitor watches. */
export interface WatchedBranch {
  /** e.g. `claude/auto-013` */
  branch: string;
  /** The commit the branch was created at (the base ref's commit at dispatch). */
  startCommit: string;
  /** When the dispatch started (ms since the epoch); PRs created well before it are old attempts. */
  startedAt: number;
}

/** Answers "what is the PR state of each of these branches?" in one go. */
export interface PrProvider {
  /** `gh` or `git`, for logs. */
  readonly name: string;
  /**
   * PR state of every branch given (branches with no PR map to `{ state: "none" }`).
   * Never throws: a failure is `{ ok: false, error: "<one line>" }`.
   */
  poll(branches: readonly WatchedBranch[]): Promise<Result<Map<string, PrState>>>;
}
