/**
 * Whose dispatches are alive: this orchestrator's identity (what its leases
 * record) and the liveness policy the lease ledger applies (store/ledger.ts
 * takes it as a {@linkcode Liveness}, so the data layer never lists
 * processes itself). Liveness is decided by pid AND recorded identity (see
 * process/table.ts), never by process name, so a reused pid is never
 * mistaken for ours; a lease of another host is assumed alive (its pids mean
 * nothing here).
 *
 * @module
 */
import { hostName } from "../util/env.ts";
import { Processes, type ProcessTable, selfStartTime } from "./table.ts";

/** Who an orchestrator is: pid, start (an identity, see process/table.ts), host. */
export interface Identity {
  pid: number;
  start: string | null;
  host: string;
}

/** What liveness reads of a lease. */
export interface LeaseFacts {
  state: string;
  host: string;
  orchestratorPid: number;
  orchestratorStart: string | null;
  pid: number | null;
  pidStart: string | null;
}

/**
 * This process's identity.
 *
 * @example
 * ```ts
 * selfIdentity().pid === Deno.pid; // true
 * ```
 */
export function selfIdentity(): Identity {
  // Without --allow-sys=hostname (host ""), leases are still checked by pid + start time.
  return { pid: Deno.pid, start: selfStartTime(), host: hostName() };
}

/**
 * This process's identity with its exact start (see process/table.ts): what
 * a run records in its leases, so that the next run can tell for sure
 * whether it is still alive.
 *
 * @example
 * ```ts
 * import { Processes } from "./table.ts";
 *
 * (await exactSelfIdentity(new Processes())).pid === Deno.pid; // true
 * ```
 */
export async function exactSelfIdentity(processes: Processes): Promise<Identity> {
  const self = selfIdentity();
  return { ...self, start: await processes.identify(self.pid, self.start ?? selfStartTime()) };
}

/**
 * Is the orchestrator of `lease` still running? Leases of other hosts are
 * assumed alive: their pids mean nothing here.
 *
 * @example
 * ```ts
 * import { readTable } from "./table.ts";
 *
 * declare const lease: LeaseFacts;
 * orchestratorAlive(lease, selfIdentity(), await readTable());
 * ```
 */
export function orchestratorAlive(lease: LeaseFacts, self: Identity, table: ProcessTable): boolean {
  if (lease.host !== "" && self.host !== "" && lease.host !== self.host) return true;
  return table.alive(lease.orchestratorPid, lease.orchestratorStart);
}

/**
 * Is the agent of `lease` still running (same pid, same start time)?
 *
 * @example
 * ```ts
 * import { readTable } from "./table.ts";
 *
 * declare const lease: LeaseFacts;
 * agentAlive(lease, await readTable());
 * ```
 */
export function agentAlive(lease: LeaseFacts, table: ProcessTable): boolean {
  if (lease.pid === null) return false;
  return table.alive(lease.pid, lease.pidStart);
}

/**
 * Is this lease holding its gap? Active leases hold while their orchestrator
 * or their agent lives; detached ones (dispatched without --watch) while the agent lives.
 */
function leaseIsLive(lease: LeaseFacts, self: Identity, table: ProcessTable): boolean {
  switch (lease.state) {
    case "starting":
    case "running":
      return orchestratorAlive(lease, self, table) || agentAlive(lease, table);
    case "detached":
      return agentAlive(lease, table);
    default:
      return false;
  }
}

/** One look at the processes, as the ledger asks it. */
export interface LeaseLook {
  /** The listing could not be taken: nothing may be called gone. */
  readonly unknown: boolean;
  /** The lease holds its gap. */
  holds(lease: LeaseFacts): boolean;
  /** Its orchestrator is gone (this host only). */
  orphaned(lease: LeaseFacts): boolean;
}

/** How the ledger learns whose leases are alive. */
export interface Liveness {
  /** This orchestrator: recorded in the leases it begins and takes over. */
  readonly self: Identity;
  /** A fresh look at the processes. */
  look(): Promise<LeaseLook>;
}

/**
 * Liveness from this host's process table.
 *
 * @param self who this orchestrator is (default {@linkcode selfIdentity})
 * @param processes the process table to ask (default a new one)
 * @example
 * ```ts
 * const liveness = processLiveness();
 * (await liveness.look()).unknown; // false where ps or /proc can be read
 * ```
 */
export function processLiveness(
  self: Identity = selfIdentity(),
  processes: Processes = new Processes(),
): Liveness {
  return {
    self,
    async look() {
      const table = await processes.table({ fresh: true });
      return {
        unknown: table.unknown,
        holds: (l) => leaseIsLive(l, self, table),
        orphaned: (l) => !table.unknown && !orchestratorAlive(l, self, table),
      };
    },
  };
}
