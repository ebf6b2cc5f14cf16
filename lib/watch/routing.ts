/**
 * Routing inside a run: which agent a gap's next attempt runs
 * ({@linkcode chooseAgent}: the run's one agent command, or with a routing
 * table the next arm of the gap's cascade) and what an outcome means for the
 * cascade ({@linkcode afterOutcome}: the arm cools down after a rate limit,
 * the gap goes on to its next arm after a retryable failure).
 *
 * @module
 */
import { type AgentCommand, agentCommandFor, armAgent } from "../dispatch/agent.ts";
import type { Gap } from "../backlog/gap.ts";
import type { FailureClass } from "../learn/classify.ts";
import type { Next } from "./observer.ts";
import type { RunConfig } from "./state.ts";

/** The arm a routing table chose for an attempt, and which attempt of the gap it is. */
export interface ArmAttempt {
  arm: string;
  attempt: number;
}

/** What a gap's next attempt runs. */
export type Choice =
  | { kind: "agent"; agent: AgentCommand; arm?: ArmAttempt; lessons?: number }
  /** Every arm it may use cools down: it waits until `until`. */
  | { kind: "wait"; until: number }
  /** The arm's command could not be made (a bad `backends:` template). */
  | { kind: "error"; error: string };

/**
 * The agent of the gap's next attempt at `now`.
 *
 * @example
 * ```ts ignore
 * const choice = chooseAgent(config, gap, Date.now());
 * ```
 */
export function chooseAgent(
  config: Pick<RunConfig, "agent" | "routing" | "lessonsFor" | "lessonsOff">,
  gap: Gap,
  now: number,
): Choice {
  const { routing, lessonsOff } = config;
  const given = config.lessonsFor?.(gap) ?? [];
  const lessons = given.length > 0 || routing || lessonsOff ? given.length : undefined;
  const plain: Choice = {
    kind: "agent",
    agent: {
      ...agentCommandFor(config.agent, gap.id, given),
      remake: (prompt) => agentCommandFor(config.agent, gap.id, given, prompt),
    },
    lessons,
  };
  if (!routing) return plain;
  const next = routing.cascade.next(gap, now);
  if (next.kind === "none") return plain;
  if (next.kind === "wait") return { kind: "wait", until: next.until };
  const { pick, attempt } = next.attempt;
  const agent = armAgent(pick.candidate, gap.id, routing.backends, given);
  if (!agent.ok) return { kind: "error", error: agent.error };
  const remake = (prompt: string) => {
    const again = armAgent(pick.candidate, gap.id, routing.backends, given, prompt);
    return again.ok ? again.value : agent.value;
  };
  return {
    kind: "agent",
    agent: { ...agent.value, remake },
    arm: { arm: pick.arm, attempt },
    lessons,
  };
}

/** What an outcome of a routed attempt leads to. */
export interface After {
  /** What the observer says of it. */
  next: Next;
  /** When the gap's next attempt is due; undefined: it has none in this run. */
  retryAt?: number;
}

/**
 * The attempt of `gapId` on `arm` ended at `now` with failure class `cls`
 * (undefined: shipped or interrupted).
 *
 * @example
 * ```ts ignore
 * const { next, retryAt } = afterOutcome(routing, "A-1", arm, "rate_limited", false, now);
 * ```
 */
export function afterOutcome(
  routing: NonNullable<RunConfig["routing"]>,
  gapId: string,
  arm: ArmAttempt,
  cls: FailureClass | undefined,
  shipped: boolean,
  now: number,
): After {
  const o = routing.cascade.outcome(gapId, arm.arm, cls, shipped, now);
  const next: Next = {};
  if (o.cooling) next.cooling = { arm: o.cooling.arm, forMs: o.cooling.until - now };
  if (o.retryAt !== undefined) {
    next.retry = {
      attempt: arm.attempt,
      arm: arm.arm,
      cls: cls ?? "",
      waitMs: Math.max(0, o.retryAt - now),
    };
  }
  return { next, retryAt: o.retryAt };
}
