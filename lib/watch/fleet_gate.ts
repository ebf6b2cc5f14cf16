/**
 * The shared ledger's gate (`--ledger`, store/pg/): what a run asks of the
 * fleet before it dispatches (a claim: won, held by another host, wait for a
 * slot or for the ledger to answer, or give up after
 * {@linkcode CLAIM_GIVE_UP_MS} of failures), and its heartbeat (re-own this
 * run's leases; learn which another host took over, and which leases of the
 * fleet are suspect). The gate remembers whether the ledger is down or full,
 * and says each change once.
 *
 * @module
 */
import type { TakenOver } from "../store/pg/claims.ts";
import { sleep } from "../util/sleep.ts";
import type { RunObserver } from "./observer.ts";
import type { Flight, SharedClaims } from "./state.ts";

/** How long claims may keep failing (the shared ledger down) before a gap is given up. */
const CLAIM_GIVE_UP_MS = 5 * 60_000;

/** What a claim came to. */
export type Claim =
  /** Ours; `tookOver` when it was another host's suspect lease. */
  | { kind: "won"; leaseId: number; tookOver?: TakenOver }
  /** Another host holds the gap: not an attempt, pick the next gap. */
  | { kind: "held" }
  /** The fleet is full or the ledger silent: try the gap again at `at`. */
  | { kind: "wait"; at: number }
  /** Claims failed for too long: the gap fails. */
  | { kind: "give_up"; error: string };

/** The shared ledger as one run sees it. */
export class FleetGate {
  readonly #shared: SharedClaims;
  readonly #report: RunObserver;
  readonly #now: () => number;
  /** Since when claims fail (undefined: the last one answered). */
  #failingSince?: number;
  #down = false;
  #full = false;
  /** Suspect leases already reported. */
  readonly #suspects = new Set<number>();

  constructor(shared: SharedClaims, report: RunObserver, now: () => number) {
    this.#shared = shared;
    this.#report = report;
    this.#now = now;
  }

  /** The ledger is full or silent: no claim can succeed until a later tick. */
  get holds(): boolean {
    return this.#full || this.#down;
  }

  /** Live leases of every host (empty when the ledger does not answer). */
  async liveGapIds(): Promise<Set<string>> {
    const ids = await this.#shared.liveGapIds();
    return ids.ok ? ids.value : new Set();
  }

  /**
   * Claim `gapId`; a wait is due after a tick (at least a second).
   *
   * @param tickMs the run's tick
   */
  async claim(gapId: string, tickMs: number): Promise<Claim> {
    const claimed = await this.#shared.claim(gapId);
    const at = this.#now() + Math.max(tickMs, 1000);
    if (!claimed.ok) {
      this.#failingSince ??= this.#now();
      if (this.#now() - this.#failingSince > CLAIM_GIVE_UP_MS) {
        return { kind: "give_up", error: claimed.error };
      }
      if (!this.#down) this.#report.report({ kind: "claims_failing", error: claimed.error });
      this.#down = true;
      return { kind: "wait", at };
    }
    this.#failingSince = undefined;
    this.#answered();
    const c = claimed.value;
    if (!c.won && c.why === "fleet-full") {
      if (!this.#full) this.#report.report({ kind: "fleet_full" });
      this.#full = true;
      return { kind: "wait", at };
    }
    if (!c.won) {
      // Held, not full: the fleet had room when it answered (the cap is checked first), so
      // new picks may be claimed again; a run that stayed "full" here would quit with gaps open.
      this.#full = false;
      this.#report.report({ kind: "held_elsewhere", gapId });
      return { kind: "held" };
    }
    this.#full = false;
    if (c.tookOver) {
      this.#report.report({
        kind: "taken_over",
        gapId,
        fromGeneration: c.tookOver.generation,
        fields: { from_host: c.tookOver.host, generation: c.generation },
      });
    }
    return { kind: "won", leaseId: c.id, tookOver: c.tookOver };
  }

  /** End a claim whose gap was not dispatched after all. */
  async release(leaseId: number): Promise<void> {
    await this.#shared.end(leaseId, "not dispatched");
  }

  /**
   * Heartbeat: re-own the leases of `flights`; each flight whose lease
   * another host took over is marked (`lostTo`), reported and returned, for
   * the run to end without a reflection. Suspect leases are said once.
   *
   * @param ended the run is ending (its last heartbeat)
   */
  async beat(flights: readonly Flight[], ended: boolean): Promise<Flight[]> {
    const held = flights
      .filter((f) => !f.ending && f.dispatch.sharedLeaseId !== undefined)
      .map((f) => f.dispatch.sharedLeaseId!);
    const beat = await this.#shared.heartbeat(held, ended);
    if (!beat.ok) {
      if (!this.#down) this.#report.report({ kind: "ledger_down", error: beat.error });
      this.#down = true;
      return [];
    }
    this.#answered();
    const lost: Flight[] = [];
    for (const l of beat.value.lost) {
      const flight = flights.find((f) => f.dispatch.sharedLeaseId === l.id && !f.ending);
      if (!flight) continue;
      const by = l.takenBy ?? "another host";
      flight.lostTo = by;
      this.#report.report({
        kind: "lost",
        gapId: l.gapId,
        leaseId: flight.dispatch.leaseId,
        by,
        fields: { taken_by: l.takenBy, pid: flight.dispatch.process.pid },
      });
      lost.push(flight);
    }
    for (const s of beat.value.suspect) {
      if (this.#suspects.has(s.id)) continue;
      this.#suspects.add(s.id);
      this.#report.report({
        kind: "suspect",
        gapId: s.gapId,
        fields: { host: s.host, suspect_ms: s.suspectMs },
      });
    }
    return lost;
  }

  /**
   * The run ends: its last heartbeat. While outcomes of this host wait in
   * its spool for the ledger (it did not answer when they came), try again
   * every second for up to `waitMs`; then say loudly what is left, for its
   * leases still look live to the fleet.
   *
   * @returns flights whose lease another host took over meanwhile
   */
  async end(flights: readonly Flight[], waitMs: number): Promise<Flight[]> {
    const lost = await this.beat(flights, true);
    const until = this.#now() + waitMs;
    let pending = await this.#pending();
    while (pending > 0 && this.#now() < until) {
      await sleep(Math.min(1000, until - this.#now()));
      lost.push(...await this.beat(flights, true));
      pending = await this.#pending();
    }
    if (pending > 0) {
      this.#report.report({
        kind: "ledger_unsettled",
        pending,
        spool: this.#shared.spoolPath ?? "the spool",
        waitedMs: waitMs,
      });
    }
    return lost;
  }

  async #pending(): Promise<number> {
    return await this.#shared.pending?.() ?? 0;
  }

  /** The ledger answered: say so once when it had not. */
  #answered(): void {
    if (this.#down) this.#report.report({ kind: "ledger_back" });
    this.#down = false;
  }
}
