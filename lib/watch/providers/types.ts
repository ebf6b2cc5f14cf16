/**
 * What the monitor asks a PR provider, and what it gets back. A provider
 * answers for ALL watched branches in one poll (one `gh` call per tick, not
 * one per branch) and never throws: a failure is a value, logged by the
 * monitor and retried next tick. A poll is bounded: it gives up after
 * `timeoutMs` and at once when `signal` aborts (an operator's Ctrl-C must
 * never wait for a hung `gh` or `git fetch`).
 *
 * @module
 */
import type { Result } from "../../util/result.ts";

/** The PR state of one branch at one tick. */
export type PrState =
  | { state: "none" }
  | { state: "open" | "merged" | "closed"; number?: number; review?: PrReview };

/** What an open PR says beyond its state (the gh provider; the git provider has no checks). */
export interface PrReview {
  /** The head commit's checks: all completed and passing, all completed with failures, still running, or none. */
  checks: "passing" | "failing" | "pending" | "none";
  /** The failed checks (with their workflow run, for its log). */
  failing: { name: string; runId?: number }[];
  /** It conflicts with its base (`mergeable: CONFLICTING`). */
  conflicting: boolean;
  /** `CHANGES_REQUESTED`, `APPROVED`, `REVIEW_REQUIRED`; absent when none. */
  reviewDecision?: string;
  /** The latest reviews' and review comments' bodies (owners', members' and collaborators'), oldest first (bounded). */
  comments: string[];
  /** The head commit. */
  headSha?: string;
}

/** The base branch's head commit, as the last poll saw it. */
export interface BaseState {
  /** Its checks completed with a failure. */
  red: boolean;
  /** The failed checks' names. */
  failing: string[];
}

/** A branch the monitor watches. */
export interface WatchedBranch {
  /** e.g. `claude/auto-013` */
  branch: string;
  /** The commit the branch was created at (the base ref's commit at dispatch). */
  startCommit: string;
  /** When the dispatch started (ms since the epoch); PRs of earlier attempts are older. */
  startedAt: number;
}

/** Bounds of one poll. */
export interface PollOptions {
  /** Give up (fail the poll) after this long; the provider's own default when absent. */
  timeoutMs?: number;
  /** Give up at once when this aborts (the run is stopping). */
  signal?: AbortSignal;
}

/** Answers "what is the PR state of each of these branches?" in one go. */
export interface PrProvider {
  /** `gh` or `git`, for logs. */
  readonly name: string;
  /**
   * PR state of every branch given (branches with no PR map to `{ state: "none" }`).
   * Never throws: a failure, a timeout or an abort is `{ ok: false, error: "<one line>" }`.
   */
  poll(
    branches: readonly WatchedBranch[],
    options?: PollOptions,
  ): Promise<Result<Map<string, PrState>>>;
  /** The base branch as the last successful poll saw it (a provider that reads checks), if known. */
  base?(): BaseState | undefined;
  /** The end of a failed workflow run's log (at most `maxBytes`), for a fix round's prompt. */
  failedLog?(
    runId: number,
    options: { maxBytes: number; signal?: AbortSignal },
  ): Promise<Result<string>>;
  /** Ask the PR to merge by itself once its requirements pass (`gh pr merge --auto --squash`). */
  requestAutoMerge?(pr: number): Promise<Result<void>>;
}
