/**
 * One host's view of the shared ledger (`--ledger`): its claims
 * (pg/claims.ts) and the writer that records each outcome in the fleet's
 * reflection tables as well as in the local SQLite DB (which the contract's
 * readers depend on).
 *
 * Order of an outcome: the shared ledger first, in the transaction that ends
 * the shared lease (pg/reflections.ts); then the local DB. A lease another
 * host took over gets no reflection in either store (its local lease ends
 * with a note). A ledger that cannot be reached never loses a row: the row
 * goes to the local DB and to a spool next to it (`<db>.pg-spool.jsonl`),
 * replayed at each heartbeat until the ledger takes it (idempotent: a lease
 * remembers the reflection it ended with).
 *
 * @module
 */
import type { Ledger } from "../ledger.ts";
import { appendToSpool, parseSpoolLine, rewriteSpool, spoolLine, sqliteNow } from "../spool.ts";
import type { ReflectionWriter, WriteReceipt } from "../writer.ts";
import { errorMessage, ok, type Result } from "../../util/result.ts";
import type { DispatchReflection } from "../reflection.ts";
import { type Beat, type Claimed, type ClaimOptions, type Claims, openClaims } from "./claims.ts";
import type { PgLedger } from "./connect.ts";
import { recordShared } from "./reflections.ts";

/** How this host joins the fleet. */
export interface FleetOptions extends ClaimOptions {
  hostId: string;
  runId: string;
  /** Where rows the ledger could not take wait (`<db>.pg-spool.jsonl`). */
  spoolPath: string;
  /** Warnings and notes, one line each. */
  err: (line: string) => void;
}

/** The shared ledger as one run uses it. */
export interface Fleet extends Omit<Claims, "heartbeat"> {
  /** The claims' heartbeat, after replaying the spool (see {@linkcode Claims.heartbeat}). */
  heartbeat(held?: readonly number[], ended?: boolean): Promise<Result<Beat>>;
  /**
   * `local` with the fleet in front: an outcome of a shared lease goes to the
   * ledger first (see the module notes); `ledger` ends the local lease of an
   * outcome that lost its shared lease. `reflect: false` (`--no-reflect`)
   * ends shared leases without rows.
   */
  writer(local: ReflectionWriter, ledger?: Ledger, reflect?: boolean): ReflectionWriter;
  /** Replay the spool now: rows it moved to the ledger, rows left. */
  replay(): Promise<{ replayed: number; left: number }>;
}

/**
 * Join the fleet of the ledger at `url`: connect (one line on failure), then
 * replay what an earlier run of this host spooled.
 *
 * @example
 * ```ts ignore
 * const fleet = await openFleet(url, { hostId: "a", runId, spoolPath: `${db}.pg-spool.jsonl`, err });
 * ```
 */
export async function openFleet(url: string, options: FleetOptions): Promise<Result<Fleet>> {
  const opened = await openClaims(url, options.hostId, options.runId, options);
  if (!opened.ok) return opened;
  const fleet = new PgFleet(opened.value, options);
  await fleet.replay();
  return ok(fleet);
}

/** One run's fleet: its claims, its spool, its writer in front of the local one. */
class PgFleet implements Fleet {
  readonly #claims: Claims;
  readonly #spoolPath: string;
  readonly #err: (line: string) => void;

  constructor(claims: Claims, options: FleetOptions) {
    this.#claims = claims;
    this.#spoolPath = options.spoolPath;
    this.#err = options.err;
  }

  get pg(): PgLedger {
    return this.#claims.pg;
  }

  claim(gapId: string): Promise<Result<Claimed>> {
    return this.#claims.claim(gapId);
  }

  end(id: number, outcome: string): Promise<Result<void>> {
    return this.#claims.end(id, outcome);
  }

  liveGapIds(): Promise<Result<Set<string>>> {
    return this.#claims.liveGapIds();
  }

  close(): Promise<void> {
    return this.#claims.close();
  }

  async heartbeat(held?: readonly number[], ended?: boolean): Promise<Result<Beat>> {
    const beat = await this.#claims.heartbeat(held, ended);
    if (beat.ok) await this.replay();
    return beat;
  }

  async replay(): Promise<{ replayed: number; left: number }> {
    const pg = this.pg;
    let blocked = false;
    let counts;
    try {
      counts = await rewriteSpool(this.#spoolPath, async (line) => {
        const row = parseSpoolLine(line);
        if (row === undefined || row.reflection.sharedLeaseId === undefined) return "bad";
        if (row.db !== pg.name) return "foreign";
        if (blocked) return "keep";
        const { sharedLeaseId } = row.reflection;
        const done = await recordShared(pg, sharedLeaseId, row.reflection, row.createdAt);
        if (done.ok) return "drop";
        blocked = true;
        return "keep";
      });
    } catch (e) {
      this.#err(`warning: cannot replay ${this.#spoolPath}: ${errorMessage(e)}`);
      return { replayed: 0, left: 0 };
    }
    if (counts === undefined) return { replayed: 0, left: 0 };
    if (counts.drop > 0) {
      this.#err(`note: ${counts.drop} spooled reflection(s) replayed to the shared ledger`);
    }
    return { replayed: counts.drop, left: counts.keep };
  }

  writer(local: ReflectionWriter, ledger?: Ledger, reflect = true): ReflectionWriter {
    return {
      write: (r) => this.#write(local, ledger, reflect, r),
      close: () => local.close(),
    };
  }

  /** One outcome: to the shared ledger first (spooled when it does not answer), then the local DB. */
  async #write(
    local: ReflectionWriter,
    ledger: Ledger | undefined,
    reflect: boolean,
    r: DispatchReflection,
  ): Promise<WriteReceipt> {
    if (r.sharedLeaseId === undefined) return await local.write(r);
    if (!reflect) {
      const ended = await this.#claims.end(r.sharedLeaseId, r.outcome);
      if (!ended.ok) this.#err(`warning: ${ended.error}`);
      return await local.write(r);
    }
    const done = await recordShared(this.pg, r.sharedLeaseId, r);
    if (done.ok && done.value === "superseded") {
      if (r.leaseId !== undefined) {
        await ledger?.end(
          r.leaseId,
          null,
          "taken over by another host (shared ledger); no reflection from this host",
        );
      }
      return { stored: "superseded" };
    }
    if (!done.ok) await this.#spool(r, done.error);
    return await local.write(r);
  }

  async #spool(r: DispatchReflection, why: string): Promise<void> {
    try {
      await appendToSpool(this.#spoolPath, spoolLine(r, sqliteNow(), this.pg.name));
      this.#err(
        `warning: reflection for ${r.gapId} kept in ${this.#spoolPath} for the shared ledger ` +
          `(${why}); replayed when it answers again`,
      );
    } catch (e) {
      this.#err(
        `warning: reflection for ${r.gapId} reached only the local DB: the shared ledger failed ` +
          `(${why}) and ${this.#spoolPath} could not be written (${errorMessage(e)})`,
      );
    }
  }
}
