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
import type { GapBackoff } from "../backoff.ts";
import type { Ledger } from "../ledger.ts";
import { appendToSpool, parseSpoolLine, rewriteSpool, spoolLine, sqliteNow } from "../spool.ts";
import type { ReflectionWriter, WriteReceipt } from "../writer.ts";
import { errorMessage, ok, type Result } from "../../util/result.ts";
import type { DispatchReflection } from "../reflection.ts";
import { type Beat, type Claimed, type ClaimOptions, type Claims, openClaims } from "./claims.ts";
import type { PgLedger } from "./connect.ts";
import { recordShared } from "./reflections.ts";

/** What a replay of the spool did, row by row. */
export interface Replayed {
  /** Written to the ledger now, each with the end of its lease. */
  written: number;
  /** There already (a replay after a first write whose answer was lost). */
  present: number;
  /** Not written: the lease was taken over by another host, which records its own dispatch. */
  superseded: number;
  /** Still waiting (the ledger stopped answering during the replay). */
  left: number;
}

/**
 * What a replay says: what it wrote and what it could not, exactly.
 *
 * @example
 * ```ts
 * replayLines({ written: 3, present: 1, superseded: 0, left: 0 });
 * // ["note: 3 spooled reflection(s) replayed to the shared ledger (1 more was there already)"]
 * ```
 */
export function replayLines(r: Replayed): string[] {
  const lines: string[] = [];
  if (r.written > 0) {
    const also = r.present > 0 ? ` (${r.present} more was there already)` : "";
    lines.push(`note: ${r.written} spooled reflection(s) replayed to the shared ledger${also}`);
  } else if (r.present > 0) {
    lines.push(`note: ${r.present} spooled reflection(s) were in the shared ledger already`);
  }
  if (r.superseded > 0) {
    lines.push(
      `warning: ${r.superseded} spooled reflection(s) not written to the shared ledger: their ` +
        "leases were taken over by another host, which records its own dispatch (they stay in " +
        "the local DB)",
    );
  }
  return lines;
}

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
  /** Replay the spool now: what it wrote, found there already, could not write, left. */
  replay(): Promise<Replayed>;
  /** This ledger's rows waiting in the spool. */
  pending(): Promise<number>;
  /** Where rows the ledger could not take wait. */
  readonly spoolPath: string;
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

  spentByOthers(): Promise<Result<number>> {
    return this.#claims.spentByOthers();
  }

  heldBack(): Promise<Result<GapBackoff[]>> {
    return this.#claims.heldBack();
  }

  unpark(gapId: string): Promise<Result<GapBackoff | undefined>> {
    return this.#claims.unpark(gapId);
  }

  close(): Promise<void> {
    return this.#claims.close();
  }

  async heartbeat(held?: readonly number[], ended?: boolean): Promise<Result<Beat>> {
    const beat = await this.#claims.heartbeat(held, ended);
    if (!beat.ok) return beat;
    const { left } = await this.replay();
    return ok({ ...beat.value, spooled: left });
  }

  async replay(): Promise<Replayed> {
    const pg = this.pg;
    const done: Replayed = { written: 0, present: 0, superseded: 0, left: 0 };
    let blocked = false;
    try {
      const counts = await rewriteSpool(this.#spoolPath, async (line) => {
        const row = parseSpoolLine(line);
        if (row === undefined || row.reflection.sharedLeaseId === undefined) return "bad";
        if (row.db !== pg.name) return "foreign";
        if (blocked) return "keep";
        const { sharedLeaseId } = row.reflection;
        const r = await recordShared(pg, sharedLeaseId, row.reflection, row.createdAt);
        if (!r.ok) {
          blocked = true;
          return "keep";
        }
        done[r.value === "recorded" ? "written" : r.value]++;
        return "drop";
      });
      done.left = counts?.keep ?? 0;
    } catch (e) {
      this.#err(`warning: cannot replay ${this.#spoolPath}: ${errorMessage(e)}`);
      return done;
    }
    for (const line of replayLines(done)) this.#err(line);
    return done;
  }

  async pending(): Promise<number> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.#spoolPath);
    } catch {
      return 0;
    }
    return text.split("\n").filter((l) => parseSpoolLine(l)?.db === this.pg.name).length;
  }

  get spoolPath(): string {
    return this.#spoolPath;
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
