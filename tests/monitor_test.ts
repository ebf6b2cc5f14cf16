/** decideTick: one test per row of CONTRACT §4's table, plus the order between rows. */
import { deepEqual, equal, ok as assert } from "node:assert/strict";
import {
  awaitsProvider,
  decideAtStop,
  decideReaped,
  decideTick,
  PR_UNKNOWN,
  PROVIDER_DOWN_TICKS,
  type TickInput,
} from "../lib/watch/decide.ts";
import { classify } from "../lib/learn/classify.ts";
import { failingClass } from "../lib/watch/tick.ts";

const MIN = 60_000;

/** A running agent 1 minute into a 20-minute deadline, no PR: the quiet case. */
function tick(over: Partial<TickInput> = {}): TickInput {
  return {
    pr: { state: "none" },
    exitCode: null,
    ticksSinceExit: 0,
    elapsedMs: 1 * MIN,
    deadlineMs: 20 * MIN,
    maxWatchMs: 80 * MIN,
    exitGraceTicks: 2,
    warned: false,
    failedPolls: 0,
    ...over,
  };
}

Deno.test("row 1: a merged PR is shipped with its number", () => {
  deepEqual(decideTick(tick({ pr: { state: "merged", number: 12 } })), {
    kind: "terminal",
    outcome: "shipped",
    prNumber: 12,
    reason: "",
  });
});

Deno.test("row 1 wins over the exit code: exit 1 after the PR merged is still shipped", () => {
  deepEqual(
    decideTick(tick({ pr: { state: "merged", number: 7 }, exitCode: 1 })),
    { kind: "terminal", outcome: "shipped", prNumber: 7, reason: "" },
  );
});

Deno.test("row 2: a PR closed unmerged is ci_failed with its number", () => {
  deepEqual(decideTick(tick({ pr: { state: "closed", number: 13 }, exitCode: 0 })), {
    kind: "terminal",
    outcome: "ci_failed",
    prNumber: 13,
    reason: "PR #13 closed without merging",
  });
});

Deno.test("row 3: an open PR is watched, even past 2x the deadline and after the agent exited", () => {
  deepEqual(
    decideTick(
      tick({
        pr: { state: "open", number: 14 },
        elapsedMs: 50 * MIN,
        exitCode: 0,
        ticksSinceExit: 9,
      }),
    ),
    {
      kind: "watch",
    },
  );
});

Deno.test("row 3: an open PR past --max-watch is stalled, 'PR #N still open'", () => {
  deepEqual(decideTick(tick({ pr: { state: "open", number: 14 }, elapsedMs: 81 * MIN })), {
    kind: "terminal",
    outcome: "stalled",
    prNumber: 14,
    reason: "PR #14 still open",
  });
});

Deno.test("row 4: exited non-zero without a PR is killed, 'exit code N'", () => {
  deepEqual(decideTick(tick({ exitCode: 3 })), {
    kind: "terminal",
    outcome: "killed",
    reason: "exit code 3",
  });
});

Deno.test("row 5: exited 0 without a PR waits the exit grace, then is stalled", () => {
  deepEqual(decideTick(tick({ exitCode: 0, ticksSinceExit: 0 })), { kind: "watch" });
  deepEqual(decideTick(tick({ exitCode: 0, ticksSinceExit: 1 })), { kind: "watch" });
  deepEqual(decideTick(tick({ exitCode: 0, ticksSinceExit: 2 })), {
    kind: "terminal",
    outcome: "stalled",
    reason: "exited 0 without a PR",
  });
});

Deno.test("row 5: a PR that appears during the exit grace wins", () => {
  deepEqual(
    decideTick(tick({ exitCode: 0, ticksSinceExit: 1, pr: { state: "open", number: 3 } })),
    { kind: "watch" },
  );
});

Deno.test("row 6: running past 1x the deadline without a PR warns once and keeps watching", () => {
  deepEqual(decideTick(tick({ elapsedMs: 21 * MIN })), {
    kind: "warn",
    message: "running past its soft deadline (1200s) without a PR",
  });
  deepEqual(decideTick(tick({ elapsedMs: 21 * MIN, warned: true })), { kind: "watch" });
});

Deno.test("row 7: running past 2x the deadline without a PR is killed with the contract's reason", () => {
  deepEqual(decideTick(tick({ elapsedMs: 41 * MIN, warned: true })), {
    kind: "kill",
    reason: "soft-deadline exceeded (1200s x 2)",
  });
  // Even when the 1x warning was never emitted (a long pause between ticks).
  deepEqual(decideTick(tick({ elapsedMs: 41 * MIN })), {
    kind: "kill",
    reason: "soft-deadline exceeded (1200s x 2)",
  });
});

Deno.test("exactly at the deadline nothing happens yet (strictly greater)", () => {
  deepEqual(decideTick(tick({ elapsedMs: 20 * MIN })), { kind: "watch" });
  deepEqual(decideTick(tick({ elapsedMs: 40 * MIN, warned: true })), { kind: "watch" });
});

Deno.test("an unknown PR state (provider failed) concludes nothing before max-watch", () => {
  deepEqual(decideTick(tick({ pr: undefined, exitCode: 1, failedPolls: 1 })), { kind: "watch" });
  deepEqual(decideTick(tick({ pr: undefined, elapsedMs: 50 * MIN, failedPolls: 2 })), {
    kind: "watch",
  });
  deepEqual(decideTick(tick({ pr: undefined, elapsedMs: 81 * MIN })), {
    kind: "terminal",
    outcome: "stalled",
    reason: "PR state unknown: the provider kept failing",
  });
});

// The provider is down (PR state unknown): bounded waits, then the exit code or the deadline decides.

/** An unknown PR state: this tick's poll failed, and `failedPolls` in a row. */
function unknown(over: Partial<TickInput> = {}): TickInput {
  return tick({ pr: undefined, failedPolls: 1, ...over });
}

Deno.test("provider down: an agent that exited waits for the provider's answer, however late, until max-watch", () => {
  // Long past the exit grace: still waiting (a merged PR would outrank the exit code).
  deepEqual(decideTick(unknown({ exitCode: 1, ticksSinceExit: 50, failedPolls: 50 })), {
    kind: "watch",
  });
  deepEqual(decideTick(unknown({ exitCode: 0, ticksSinceExit: 50, elapsedMs: 80 * MIN })), {
    kind: "watch",
  });
  // The provider answers: the PR decides.
  deepEqual(decideTick(tick({ pr: { state: "merged", number: 4 }, exitCode: 1 })), {
    kind: "terminal",
    outcome: "shipped",
    prNumber: 4,
    reason: "",
  });
  assert(awaitsProvider(0, undefined) && !awaitsProvider(0, { state: "none" }));
  assert(!awaitsProvider(null, undefined), "a running agent holds its slot");
});

Deno.test("provider down past max-watch: an exited agent is settled by its exit code, noting the unknown PR", () => {
  deepEqual(decideTick(unknown({ exitCode: 1, elapsedMs: 81 * MIN })), {
    kind: "terminal",
    outcome: "killed",
    reason: "exit code 1",
  });
  deepEqual(decideTick(unknown({ exitCode: 0, elapsedMs: 81 * MIN })), {
    kind: "terminal",
    outcome: "stalled",
    reason: `exited 0; ${PR_UNKNOWN}`,
  });
  equal(PR_UNKNOWN, "PR state unknown: the provider kept failing");
});

Deno.test("provider down: a running agent past 2x its deadline is killed once 3 polls in a row failed", () => {
  const past2x = { elapsedMs: 41 * MIN, warned: true };
  deepEqual(decideTick(unknown({ ...past2x, failedPolls: PROVIDER_DOWN_TICKS - 1 })), {
    kind: "watch",
  });
  deepEqual(decideTick(unknown({ ...past2x, failedPolls: PROVIDER_DOWN_TICKS })), {
    kind: "kill",
    reason: "soft-deadline exceeded (1200s x 2)",
  });
  // Before 2x the deadline, a down provider alone kills nothing.
  deepEqual(decideTick(unknown({ elapsedMs: 39 * MIN, failedPolls: 50 })), { kind: "watch" });
});

Deno.test("at a stop, an agent that had exited is recorded by its exit code, not as interrupted", () => {
  deepEqual(decideAtStop(1, "SIGINT"), {
    kind: "terminal",
    outcome: "killed",
    reason: "exit code 1",
  });
  deepEqual(decideAtStop(0, "SIGTERM"), {
    kind: "terminal",
    outcome: "stalled",
    reason: "exited 0; PR state unknown: interrupted by SIGTERM",
  });
  deepEqual(decideAtStop(1, "SIGINT", { state: "open", number: 5 }), {
    kind: "terminal",
    outcome: "stalled",
    prNumber: 5,
    reason: "PR #5 still open",
  });
  equal(decideAtStop(null, "SIGINT"), undefined);
});

Deno.test("a reaped dispatch: a merged PR ships it, a closed one is ci_failed, else killed 'orchestrator lost'", () => {
  deepEqual(decideReaped({ state: "merged", number: 4 }, "orchestrator lost"), {
    kind: "terminal",
    outcome: "shipped",
    prNumber: 4,
    reason: "",
  });
  deepEqual(decideReaped({ state: "closed", number: 5 }, "orchestrator lost"), {
    kind: "terminal",
    outcome: "ci_failed",
    prNumber: 5,
    reason: "PR #5 closed without merging",
  });
  deepEqual(decideReaped({ state: "open", number: 6 }, "orchestrator lost"), {
    kind: "terminal",
    outcome: "killed",
    prNumber: 6,
    reason: "orchestrator lost (PR #6 still open)",
  });
  for (const pr of [{ state: "none" as const }, undefined]) {
    deepEqual(decideReaped(pr, "orchestrator lost"), {
      kind: "terminal",
      outcome: "killed",
      reason: "orchestrator lost",
    });
  }
});

Deno.test("idle rows: silent past --idle-timeout warns once, past twice that is killed 'idle for D'", () => {
  const idle = (idleMs: number, over: Partial<TickInput> = {}) =>
    decideTick(tick({ idleMs, idleTimeoutMs: 5 * MIN, ...over }));
  deepEqual(idle(4 * MIN), { kind: "watch" });
  equal(idle(6 * MIN).kind, "idle");
  deepEqual(idle(6 * MIN, { idleWarned: true }), { kind: "watch" });
  deepEqual(idle(11 * MIN, { idleWarned: true }), { kind: "kill", reason: "idle for 5m" });
  // Off by default: silence alone decides nothing.
  deepEqual(decideTick(tick({ idleMs: 600 * MIN })), { kind: "watch" });
  // An exited agent or an open PR is not idle: their own rows decide.
  deepEqual(idle(11 * MIN, { exitCode: 1 }), {
    kind: "terminal",
    outcome: "killed",
    reason: "exit code 1",
  });
  deepEqual(idle(11 * MIN, { pr: { state: "open", number: 3 } }), { kind: "watch" });
});

Deno.test("early end: past 1.2 x p90 of its kind's ships, an idle or quietly failing agent is killed; a busy one runs on", () => {
  const early = (over: Partial<TickInput>) =>
    decideTick(tick({ earlyEnd: { afterMs: 10 * MIN }, ...over }));
  // Before the early end: nothing, however silent.
  deepEqual(early({ elapsedMs: 9 * MIN, idleMs: 9 * MIN }), { kind: "watch" });
  // Past it and silent 5 minutes: killed, and the reason says why (the classifier's timeout).
  deepEqual(early({ elapsedMs: 16 * MIN, idleMs: 6 * MIN }), {
    kind: "kill",
    reason: "ended early: idle 6m past 10m (1.2 x p90 of shipped)",
  });
  equal(classify("killed", "ended early: idle 6m past 10m (1.2 x p90 of shipped)", []), "timeout");
  // A long silent tool call (3 minutes) is not idle; a longer --idle-timeout raises the bar.
  deepEqual(early({ elapsedMs: 16 * MIN, idleMs: 3 * MIN }), { kind: "watch" });
  deepEqual(early({ elapsedMs: 16 * MIN, idleMs: 6 * MIN, idleTimeoutMs: 30 * MIN }), {
    kind: "watch",
  });
  // Past it but still writing: it runs on (to its deadline).
  deepEqual(early({ elapsedMs: 11 * MIN, idleMs: 30_000 }), { kind: "watch" });
  // Its latest stderr shows a failure class and it has been quiet a minute: ended.
  const failing = { afterMs: 10 * MIN, failing: "transient" };
  deepEqual(decideTick(tick({ elapsedMs: 11 * MIN, idleMs: 90_000, earlyEnd: failing })), {
    kind: "kill",
    reason: "ended early: stderr shows transient past 10m (1.2 x p90 of shipped)",
  });
  // ... but not while it is still writing (it may be retrying its way out).
  deepEqual(decideTick(tick({ elapsedMs: 11 * MIN, idleMs: 5000, earlyEnd: failing })), {
    kind: "watch",
  });
  // Which stderr counts: the latest lines only, not an error recovered from in minute 1.
  equal(failingClass(["ERROR: 429 Too Many Requests"]), "rate_limited");
  equal(failingClass(["ERROR: read ECONNRESET", "compiling...", "running tests"]), undefined);
  equal(failingClass(["ERROR: tests failed"]), undefined, "an agent error is not stuck");
  equal(failingClass([]), undefined);
  // No early end where the deadline did not adapt: the 2x deadline row as before.
  deepEqual(decideTick(tick({ elapsedMs: 30 * MIN, idleMs: 30 * MIN })), {
    kind: "warn",
    message: "running past its soft deadline (1200s) without a PR",
  });
  // An exited agent or an open PR: their own rows first.
  equal(early({ elapsedMs: 16 * MIN, idleMs: 6 * MIN, exitCode: 1 }).kind, "terminal");
  deepEqual(early({ elapsedMs: 16 * MIN, idleMs: 6 * MIN, pr: { state: "open", number: 2 } }), {
    kind: "watch",
  });
});
