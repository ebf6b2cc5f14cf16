/**
 * The fleet's leases as `status` and the dashboard show them: each lease
 * with whether its agent and its orchestrator are alive, who watches it
 * (watched, adopted, unwatched, orphaned, settled), how long its agent has
 * been silent and its last stderr line. Read-only: the DB is opened for
 * reading and nothing is created.
 *
 * @module
 */
import { readTable } from "../process/table.ts";
import {
  agentAlive,
  orchestratorAlive,
  processLiveness,
  selfIdentity,
} from "../process/liveness.ts";
import { agentFiles } from "../process/waiter.ts";
import { lastLines } from "../process/log_read.ts";
import { type Lease, openLedgerIfExists } from "../store/ledger.ts";
import { ok, type Result } from "../util/result.ts";
import { oneLine } from "../util/text.ts";
import { heldBackReasons } from "../store/backoff.ts";

/** One lease as `status` (and the dashboard) shows it. */
export interface StatusRow {
  lease: number;
  gap: string;
  state: string;
  outcome: string | null;
  pid: number | null;
  pidAlive: boolean;
  orchestratorPid: number;
  orchestratorAlive: boolean | null;
  generation: number;
  /** Who watches it: see {@linkcode watchState}. */
  watch: string;
  elapsedS: number;
  worktree: string;
  branch: string;
  log: string | null;
  startedAt: string;
  /** The soft deadline it was dispatched with, in seconds; null when unknown. */
  deadlineS: number | null;
  /** Seconds since its last output (live leases with log files; else null). */
  idleS: number | null;
  /** The last line of its stderr (live leases with log files; else null). */
  lastLine: string | null;
  /** Its PR as its watcher last saw it (`#12 open`), or null. */
  pr: string | null;
  /** What it has cost so far (final once ended), in dollars; null without a structured session or a price. */
  costUsd: number | null;
  /** Its tokens in and out so far; null without a structured session. */
  tokensIn: number | null;
  tokensOut: number | null;
  /** The fix round its agent is in (its PR went back to it); null: none. */
  fixRound: number | null;
}

/**
 * The newest `limit` leases of the DB at `db`, newest first, with liveness;
 * undefined when nothing was ever recorded there; or one line saying why
 * the ledger cannot be read.
 *
 * @example
 * ```ts
 * const dir = Deno.makeTempDirSync();
 * await readStatusRows(`${dir}/none.db`, 20); // { ok: true, value: undefined }
 * ```
 */
export async function readStatusRows(
  db: string,
  limit: number,
): Promise<Result<StatusRow[] | undefined>> {
  const self = selfIdentity();
  const opened = openLedgerIfExists(db, processLiveness(self));
  if (!opened.ok) return opened;
  if (!opened.value) return ok(undefined);
  const ledger = opened.value;
  try {
    const table = await readTable();
    const now = Date.now();
    const leases = await ledger.list(limit);
    if (!leases.ok) return leases;
    const activity = await Promise.all(leases.value.map((l) => activityOf(l, now)));
    return ok(leases.value.map((l, i) => {
      const owner = l.state === "ended" ? null : orchestratorAlive(l, self, table);
      return {
        lease: l.id,
        gap: l.gapId,
        state: l.state,
        outcome: l.outcome,
        pid: l.pid,
        pidAlive: agentAlive(l, table),
        orchestratorPid: l.orchestratorPid,
        orchestratorAlive: owner,
        generation: l.generation,
        watch: watchState(l, owner),
        elapsedS: Math.round(((l.state === "ended" ? l.updatedMs : now) - l.startedMs) / 1000),
        worktree: l.worktree,
        branch: l.branch,
        log: l.logBase === null ? null : agentFiles(l.logBase).out,
        startedAt: new Date(l.startedMs).toISOString(),
        deadlineS: l.deadlineMs === null ? null : Math.round(l.deadlineMs / 1000),
        ...activity[i],
        pr: l.pr,
        costUsd: l.cost?.usd ?? null,
        tokensIn: l.cost?.tokensIn ?? null,
        tokensOut: l.cost?.tokensOut ?? null,
        fixRound: l.fixRound,
      };
    }));
  } finally {
    ledger.close();
  }
}

/** Bytes of a live agent's stderr read for its last line. */
const LAST_LINE_WINDOW = 4096;

/** How long a live lease's agent has been silent, and its last stderr line, from its files. */
async function activityOf(
  l: Lease,
  now: number,
): Promise<{ idleS: number | null; lastLine: string | null }> {
  if (l.state === "ended" || l.logBase === null) return { idleS: null, lastLine: null };
  const files = agentFiles(l.logBase);
  const mtimes = await Promise.all(
    [files.out, files.err].map((p) => Deno.stat(p).then((s) => s.mtime?.getTime() ?? 0, () => 0)),
  );
  const last = Math.max(l.startedMs, ...mtimes);
  const { lines } = await lastLines(files.err, 1, LAST_LINE_WINDOW);
  return {
    idleS: Math.max(0, Math.round((now - last) / 1000)),
    lastLine: lines.length === 0 ? null : oneLine(lines[0], 300),
  };
}

/**
 * Who watches a lease: `settled` (ended, its outcome recorded), `watched` by
 * the run that dispatched it, `adopted` by a later run, `unwatched`
 * (dispatched without --watch), or `orphaned` (its orchestrator is gone:
 * `watch` adopts it, `reap` ends it).
 */
function watchState(l: Lease, ownerAlive: boolean | null): string {
  if (l.state === "ended") return "settled";
  if (l.state === "detached") return "unwatched";
  if (ownerAlive === false) return "orphaned";
  return l.generation > 0 ? "adopted" : "watched";
}

/**
 * The gaps held back in the DB at `db` after failures in a row, each with
 * why (`parked after 3 failures: exit code 1`, `retry after 14m (...)`);
 * none when the DB or its table does not exist yet.
 *
 * @example
 * ```ts
 * const dir = Deno.makeTempDirSync();
 * await readHeldBack(`${dir}/none.db`); // []
 * ```
 */
export async function readHeldBack(db: string): Promise<{ gapId: string; why: string }[]> {
  const opened = openLedgerIfExists(db, processLiveness(selfIdentity()));
  if (!opened.ok || !opened.value) return [];
  try {
    const held = await opened.value.heldBack();
    return [...heldBackReasons(held.ok ? held.value : [], Date.now())]
      .map(([gapId, why]) => ({ gapId, why }));
  } finally {
    opened.value.close();
  }
}
