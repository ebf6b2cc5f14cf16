/** decideTick: one test per row of CONTRACT §4's table, plus the order between rows. */
import { deepEqual } from "node:assert/strict";
import { decideTick, type TickInput } from "../lib/watch/decide.ts";

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
  deepEqual(decideTick(tick({ pr: undefined, exitCode: 1 })), { kind: "watch" });
  deepEqual(decideTick(tick({ pr: undefined, elapsedMs: 50 * MIN })), { kind: "watch" });
  deepEqual(decideTick(tick({ pr: undefined, elapsedMs: 81 * MIN })), {
    kind: "terminal",
    outcome: "stalled",
    reason: "PR state unknown: the provider kept failing",
  });
});
