/**
 * Everything a run reports, said once per transition: {@linkcode render}
 * (pure) turns a {@linkcode Transition} into its plain lines (stdout or
 * stderr) and its JSON event; {@linkcode RunObserver} writes them and redraws
 * the live view. No step of the run writes a line, an event or a frame itself.
 *
 * @module
 */
import { formatDuration } from "../util/duration.ts";
import { oneLine } from "../util/text.ts";
import type { EventFields, EventIds, EventName, Events } from "./events.ts";
import type { LiveRow, LiveTotals, LiveView } from "./live.ts";
import { outcomeLine, type OutcomeRecord } from "./summary.ts";
import { describeReceipt, type WriteReceipt } from "../store/writer.ts";
import type { EndedEscapee } from "../process/escaped.ts";
import { type GapBackoff, heldBackWhy } from "../store/backoff.ts";
import { roundUsd } from "../cost/prices.ts";

/** One transition of a run, with what its report needs. */
export type Transition =
  | { kind: "adopted"; ids: EventIds } & Fields<"adopted">
  | { kind: "dispatched"; gapId: string; leaseId: number | null } & Fields<"dispatched">
  | { kind: "dispatch_failed"; gapId: string; reason: string }
  | { kind: "taken_locally"; gapId: string; leaseId: number; orchestratorPid: number }
  | { kind: "cooling_wait"; gapId: string; inMs: number }
  | { kind: "claims_failing"; error: string }
  | { kind: "fleet_full" }
  | { kind: "held_elsewhere"; gapId: string }
  | { kind: "taken_over"; gapId: string; fromGeneration: number } & Fields<"taken_over">
  | { kind: "ledger_down"; error: string }
  | { kind: "ledger_back" }
  | { kind: "ledger_unsettled"; pending: number; spool: string; waitedMs: number }
  | { kind: "watching_pr"; gapId: string; from: string; pr?: string; error?: string }
  | { kind: "lost"; gapId: string; leaseId: number | null; by: string } & Fields<"lost">
  | { kind: "suspect"; gapId: string } & Fields<"suspect">
  | { kind: "provider_failed" } & Fields<"retry">
  | { kind: "pr_seen"; ids: EventIds } & Fields<"pr_seen">
  | { kind: "deadline_warning"; ids: EventIds; message: string; quietS: number }
    & Fields<
      "deadline_warning"
    >
  | { kind: "output_idle"; ids: EventIds; message: string } & Fields<"output_idle">
  | { kind: "killing"; gapId: string; reason: string; pid: number }
  | { kind: "group_survived"; gapId: string; pgid: number; reason?: string }
  | { kind: "escaped"; ended: EndedEscapee; leaseId: number | null }
  | { kind: "stopped_here"; gapId: string; leaseId: number | null }
  | { kind: "stored"; gapId: string; leaseId: number | null; receipt: WriteReceipt }
  | { kind: "outcome"; record: OutcomeRecord; leaseId: number | null; next: Next }
  | { kind: "no_retry"; gapId: string }
  | { kind: "leases_unread"; error: string }
  | { kind: "not_dispatched"; gapId: string; why?: "budget" }
  | { kind: "usage"; ids: EventIds } & Fields<"usage">
  | { kind: "held_back"; backoff: GapBackoff; now: number }
  | { kind: "fix_round"; ids: EventIds; text: string } & Fields<"fix_round">
  | { kind: "auto_merge"; ids: EventIds; pr: number; error?: string }
  | { kind: "paused"; message: string }
  | { kind: "resumed" }
  | { kind: "budget"; message: string } & Fields<"budget">
  | { kind: "interrupted" } & Fields<"interrupted">;

/** What follows an outcome with a routing table (watch/routing.ts). */
export interface Next {
  /** The arm now cooling down (a rate limit), and for how long. */
  cooling?: { arm: string; forMs: number };
  /** The gap goes on to the next arm of its cascade after `waitMs`. */
  retry?: { attempt: number; arm: string; cls: string; waitMs: number };
}

type Fields<N extends EventName> = { fields: EventFields<N> };

/** The lines and the event of one transition. */
export interface Rendered {
  out: string[];
  err: string[];
  events: { name: EventName; ids: EventIds; fields: Record<string, unknown> }[];
}

type Renderers = { [K in Transition["kind"]]: (t: Extract<Transition, { kind: K }>) => Rendered };

const said = (out: string[], err: string[] = [], events: Rendered["events"] = []): Rendered => ({
  out,
  err,
  events,
});
const event = <N extends EventName>(name: N, ids: EventIds, fields: EventFields<N>) => ({
  name,
  ids,
  fields,
});

const RENDERERS: Renderers = {
  adopted: (t) => said([], [], [event("adopted", t.ids, t.fields)]),
  dispatched: (t) =>
    said([`DISPATCHED: ${oneLine(t.gapId)} in ${t.fields.worktree} as PID ${t.fields.pid}`], [], [
      event("dispatched", { gapId: t.gapId, leaseId: t.leaseId }, t.fields),
    ]),
  dispatch_failed: (t) => said([`DISPATCH-FAILED: ${oneLine(t.gapId)}: ${oneLine(t.reason, 500)}`]),
  taken_locally: (t) =>
    said([], [
      `note: ${oneLine(t.gapId)} was just taken by another orchestrator (lease ${t.leaseId}, ` +
      `orchestrator PID ${t.orchestratorPid}); picking the next gap`,
    ]),
  cooling_wait: (t) =>
    said([
      `WAITING: ${oneLine(t.gapId)}: every arm left in its cascade cools down; next try in ${
        formatDuration(Math.max(0, t.inMs))
      }`,
    ]),
  claims_failing: (t) => said([], [`warning: ${t.error}; claims are retried every tick`]),
  fleet_full: () => said([`FLEET-FULL: the whole fleet is at --fleet-max; waiting for a slot`]),
  held_elsewhere: (t) =>
    said([], [
      `note: ${oneLine(t.gapId)} is held by another host's orchestrator (shared ledger); ` +
      "picking the next gap",
    ]),
  taken_over: (t) =>
    said(
      [
        `TAKEOVER: ${oneLine(t.gapId)} from ${oneLine(t.fields.from_host)} (its orchestrator ` +
        `stopped heartbeating; generation ${t.fromGeneration} -> ${t.fields.generation})`,
      ],
      [],
      [event("taken_over", { gapId: t.gapId }, t.fields)],
    ),
  ledger_down: (t) => said([], [`warning: ${t.error}; retried every tick`]),
  ledger_back: () => said([], ["note: the shared ledger answers again"]),
  ledger_unsettled: (t) =>
    said([], [
      `warning: SHARED LEDGER NOT UPDATED: ${t.pending} outcome(s) of this host wait in ` +
      `${t.spool}, and their leases still look live in the shared ledger (it did not answer ` +
      `within ${formatDuration(t.waitedMs)} of this run's end); this host's next run with ` +
      "--ledger replays them; until then another host may take their gaps over (it asks the " +
      "PR provider first)",
    ]),
  watching_pr: (t) =>
    said([
      t.pr !== undefined
        ? `WATCHING: ${oneLine(t.gapId)}: ${oneLine(t.from)}'s dispatch left PR ${t.pr}; its ` +
          "outcome is taken from the PR, the gap is not dispatched again"
        : `WATCHING: ${oneLine(t.gapId)}: whether ${oneLine(t.from)}'s dispatch left a PR is ` +
          `not known (${oneLine(t.error ?? "", 300)}); not dispatched again until the PR ` +
          "provider answers",
    ]),
  lost: (t) =>
    said(
      [
        `LOST: ${oneLine(t.gapId)}: ${oneLine(t.by)} took over its lease in the shared ledger; ` +
        `ending its agent (PID ${t.fields.pid}), no reflection from this host`,
      ],
      [],
      [event("lost", { gapId: t.gapId, leaseId: t.leaseId }, t.fields)],
    ),
  suspect: (t) =>
    said(
      [
        `SUSPECT: ${oneLine(t.gapId)} is held by ${oneLine(t.fields.host)}, whose orchestrator ` +
        "stopped heartbeating; not dispatched here while it is suspect",
      ],
      [],
      [event("suspect", { gapId: t.gapId }, t.fields)],
    ),
  provider_failed: (t) =>
    said([], [
      `warning: PR provider ${t.fields.provider} failed: ${t.fields.reason}; retrying next tick`,
    ], [event("retry", {}, t.fields)]),
  pr_seen: (t) => said([], [], [event("pr_seen", t.ids, t.fields)]),
  deadline_warning: (t) =>
    said([], [
      `warning: STALLED: ${t.ids.gapId} ${t.message}; last output ${t.quietS}s ago ` +
      `(PID ${t.fields.pid})`,
    ], [event("deadline_warning", t.ids, t.fields)]),
  output_idle: (t) =>
    said([], [`warning: IDLE: ${t.ids.gapId} ${t.message} (PID ${t.fields.pid})`], [
      event("output_idle", t.ids, t.fields),
    ]),
  killing: (t) => said([`KILLING: ${t.gapId} (${t.reason}): PID ${t.pid}`]),
  group_survived: (t) =>
    said([], [
      `warning: process group ${t.pgid} of ${t.gapId} did not go away` +
      (t.reason ? `: ${oneLine(t.reason, 300)}` : ""),
    ]),
  escaped: (t) => {
    const e = t.ended;
    const ids = { gapId: e.gapId, leaseId: t.leaseId };
    const fields = { pid: e.pid, ended: e.gone };
    return e.gone
      ? said([escapedLine(e)], [], [event("escaped", ids, fields)])
      : said([], [escapedLine(e)], [event("escaped", ids, fields)]);
  },
  stopped_here: (t) =>
    said([], [
      `note: ${oneLine(t.gapId)} (lease ${t.leaseId}) was stopped by the operator ('stop'), ` +
      "which records its outcome",
    ]),
  stored: (t) => {
    const note = describeReceipt(t.receipt, t);
    return said([], note === undefined ? [] : [note]);
  },
  outcome: renderOutcome,
  no_retry: (t) =>
    said([
      `NO-RETRY: ${
        oneLine(t.gapId)
      }: --max-total reached; its next attempt is left for a later run`,
    ]),
  leases_unread: (t) =>
    said([], [
      `warning: ${t.error}; picking as if no gap were leased (a held gap is still refused ` +
      "when its lease is taken)",
    ]),
  not_dispatched: (t) =>
    t.why === "budget"
      ? said([], [
        `note: ${oneLine(t.gapId)} was not dispatched again: the budget is spent (its next ` +
        "attempt is left for a later run)",
      ])
      : said([], [
        `note: ${oneLine(t.gapId)} was not dispatched: it waits (for a fleet slot, the shared ` +
        "ledger or a cooling arm), and a run without --watch does not wait",
      ]),
  interrupted: (t) => said([], [], [event("interrupted", {}, t.fields)]),
  usage: (t) => said([], [], [event("usage", t.ids, t.fields)]),
  fix_round: (t) =>
    said(
      [
        `FIX: ${oneLine(t.ids.gapId ?? "")} round ${t.fields.round}/${t.fields.rounds}: ` +
        `${oneLine(t.text, 300)}${t.fields.resumed ? " (its session resumed)" : ""}`,
      ],
      [],
      [event("fix_round", t.ids, t.fields)],
    ),
  auto_merge: (t) =>
    t.error === undefined
      ? said([
        `AUTO-MERGE: ${oneLine(t.ids.gapId ?? "")} PR #${t.pr}: auto-merge requested (squash)`,
      ])
      : said([], [
        `warning: auto-merge of PR #${t.pr} (${oneLine(t.ids.gapId ?? "")}) not requested: ` +
        oneLine(t.error, 300),
      ]),
  paused: (t) => said([`PAUSED: ${t.message}`]),
  resumed: () => said(["RESUMED: the base branch is green again; dispatching goes on"]),
  held_back: (t) => {
    const b = t.backoff;
    const fields = {
      failures: b.failures,
      parked: b.parked,
      retry_in_ms: b.parked ? null : Math.max(0, b.retryAtMs - t.now),
      reason: b.reason,
    };
    const event_ = event("held_back", { gapId: b.gapId }, fields);
    if (b.parked) {
      return said(
        [
          `PARKED: ${oneLine(b.gapId)} after ${b.failures} failures: ${oneLine(b.reason, 300)} ` +
          `(no host dispatches it until 'unpark ${oneLine(b.gapId)}')`,
        ],
        [],
        [event_],
      );
    }
    return said(
      [
        `BACKOFF: ${oneLine(b.gapId)}: ${heldBackWhy(b, t.now) ?? "its wait is over"}; no host ` +
        "dispatches it before then",
      ],
      [],
      [event_],
    );
  },
  budget: (t) => said([`BUDGET: ${t.message}`], [], [event("budget", {}, t.fields)]),
};

/**
 * What became of a process that left its agent's group (process/escaped.ts):
 * `ESCAPED: PID n of GAP ended ...`, or a warning when it did not go away.
 *
 * @example
 * ```ts
 * escapedLine({ pid: 7, gapId: "A-1", gone: true, escalated: false });
 * // "ESCAPED: PID 7 of A-1 ended (it had left its agent's process group)"
 * ```
 */
export function escapedLine(e: EndedEscapee): string {
  return e.gone
    ? `ESCAPED: PID ${e.pid} of ${oneLine(e.gapId)} ended (it had left its agent's process group)`
    : `warning: ESCAPED: PID ${e.pid} of ${oneLine(e.gapId)} left its agent's process group ` +
      `and did not go away${e.reason ? `: ${oneLine(e.reason, 300)}` : ""}`;
}

/** A terminal outcome: its OUTCOME line, then what the cascade does next. */
function renderOutcome(t: Extract<Transition, { kind: "outcome" }>): Rendered {
  const { record, next } = t;
  const ids = { gapId: record.gapId, leaseId: t.leaseId };
  const out = [outcomeLine(record)];
  const events: Rendered["events"] = [];
  if (next.cooling) {
    out.push(
      `COOLDOWN: ${next.cooling.arm} is rate limited: no new dispatch to it for ${
        formatDuration(Math.max(0, next.cooling.forMs))
      }`,
    );
  }
  if (next.retry) {
    const r = next.retry;
    out.push(
      `RETRY: ${oneLine(record.gapId)}: attempt ${r.attempt} on ${r.arm} was ${r.cls}; ` +
        `the next arm of its cascade in ${formatDuration(r.waitMs)}`,
    );
    events.push(
      event("requeued", ids, { attempt: r.attempt, class: r.cls, arm: r.arm, wait_ms: r.waitMs }),
    );
  }
  const c = record.cost;
  events.push(event("outcome", ids, {
    outcome: record.outcome,
    duration_s: record.durationS,
    pr_number: record.prNumber ?? null,
    reason: record.reason,
    worktree_kept: record.kept ?? null,
    cost_usd: c?.usd === undefined ? null : roundUsd(c.usd),
    tokens_in: c?.tokensIn ?? null,
    tokens_out: c?.tokensOut ?? null,
    tokens_cache_read: c?.cacheRead ?? null,
    tokens_cache_write: c?.cacheWrite ?? null,
    turns: c?.turns ?? null,
    session: c?.session ?? null,
  }));
  return said(out, [], events);
}

/** The lines and events of a transition (pure). */
function render(t: Transition): Rendered {
  return (RENDERERS[t.kind] as (t: Transition) => Rendered)(t);
}

/** What the live view shows now. */
export interface Frame {
  rows: LiveRow[];
  totals: LiveTotals;
}

/** Where a run's reports go. */
export interface ObserverSinks {
  out: (line: string) => void;
  err: (line: string) => void;
  events: Events;
  live?: LiveView;
}

/** Writes each transition's lines and events, then redraws the live view. */
export class RunObserver {
  #sinks: ObserverSinks;
  #frame: () => Frame;

  /**
   * @param sinks the plain lines' outputs, the events, the live view (if any)
   * @param frame what the live view shows now (called only when there is one)
   */
  constructor(sinks: ObserverSinks, frame: () => Frame) {
    this.#sinks = sinks;
    this.#frame = frame;
  }

  /** Report one transition. */
  report(t: Transition): void {
    const r = render(t);
    for (const line of r.out) this.#sinks.out(line);
    for (const line of r.err) this.#sinks.err(line);
    for (const e of r.events) {
      this.#sinks.events.emit(e.name, e.ids, e.fields as EventFields<typeof e.name>);
    }
    this.redraw();
  }

  /** Redraw the live view (when there is one): the run's state changed. */
  redraw(): void {
    const live = this.#sinks.live;
    if (!live) return;
    const { rows, totals } = this.#frame();
    live.frame(rows, totals);
  }
}
