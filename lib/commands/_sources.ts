/**
 * What commands read before they work, shared by them: the backlog (its
 * warnings said), the agent template, the shared ledger (joining it: a run,
 * `watch`, `reap`), and where a reading command (`reflections`, `lessons`,
 * `route`, and a run's learning) takes its reflections from: the local DB,
 * or with `--ledger` the whole fleet's. The PostgreSQL driver is loaded only
 * then. Each failure comes back as a {@linkcode Failure} for the CLI edge.
 *
 * @module
 */
import { type Backlog, loadBacklog } from "../backlog/load.ts";
import { type AgentTemplate, resolveAgentTemplate } from "../dispatch/agent.ts";
import type { DispatchOptions } from "../cli/catalog.ts";
import { type Failure, type Io, runtimeError, usageError } from "../cli/io.ts";
import type { Fleet } from "../store/pg/fleet.ts";
import type { ReflectionSource } from "../store/query.ts";
import { checkLedgerUrl } from "../util/db_url.ts";
import { hostName } from "../util/env.ts";
import { ok, type Result } from "../util/result.ts";

/** Warnings printed per run before they are summarised (a 100k-gap backlog can have thousands). */
const MAX_WARNINGS_SHOWN = 50;

/**
 * Load a backlog and print its warnings.
 *
 * @param isDefault the path is the default one (the error then says how to give another)
 * @example
 * ```ts ignore
 * const backlog = await loadAndWarn("docs/gaps.yaml", io);
 * ```
 */
export async function loadAndWarn(
  path: string,
  io: Io,
  isDefault = false,
): Promise<Result<Backlog, Failure>> {
  const loaded = await loadBacklog(path);
  if (!loaded.ok) {
    const hint = isDefault && loaded.error.startsWith("backlog not found")
      ? " (the default is docs/gaps.yaml under the repo root; pass --backlog PATH)"
      : "";
    return usageError(`${loaded.error}${hint}`);
  }
  const { warnings } = loaded.value;
  for (const w of warnings.slice(0, MAX_WARNINGS_SHOWN)) io.err(`warning: ${w}`);
  if (warnings.length > MAX_WARNINGS_SHOWN) {
    io.err(`warning: ... and ${warnings.length - MAX_WARNINGS_SHOWN} more warnings`);
  }
  return loaded;
}

/**
 * The run's agent template (`--agent-cmd`, `CHUMP_AGENT_CMD`, the backend
 * preset), its warning printed.
 *
 * @example
 * ```ts ignore
 * const template = agentTemplate(options, io);
 * ```
 */
export function agentTemplate(
  options: Pick<DispatchOptions, "agentCmd"> & Partial<Pick<DispatchOptions, "agentFormat">>,
  io: Io,
): Result<AgentTemplate, Failure> {
  const agent = resolveAgentTemplate({
    agentCmd: options.agentCmd,
    format: options.agentFormat,
    envCmd: io.env("CHUMP_AGENT_CMD"),
    backend: io.env("CHUMP_DISPATCH_BACKEND"),
  });
  if (!agent.ok) return usageError(agent.error);
  if (agent.value.warning) io.err(`warning: ${agent.value.warning}`);
  return agent;
}

/** Reflections opened for reading; disposing releases what was opened (the fleet's copy). */
export interface OpenReflections extends Disposable {
  source: ReflectionSource;
}

/**
 * The reflections of `db`, or of the fleet when `ledger` is given.
 *
 * @example
 * ```ts ignore
 * const opened = await openReflections(undefined, "/repo/sessions/chump_memory.db");
 * if (!opened.ok) return opened;
 * using reflections = opened.value;
 * ```
 */
export async function openReflections(
  ledger: string | undefined,
  db: string,
): Promise<Result<OpenReflections, Failure>> {
  if (ledger === undefined) return ok({ source: db, [Symbol.dispose]() {} });
  const { readFleetReflections }: typeof import("../store/pg/reflections.ts") = await import(
    pgModule("reflections")
  );
  const fleet = await readFleetReflections(ledger);
  if (!fleet.ok) return runtimeError(fleet.error);
  return ok({ source: fleet.value, [Symbol.dispose]: () => fleet.value.db.close() });
}

/**
 * The shared ledger's URL: `--ledger` (checked by its flag), else
 * `CHUMP_LEDGER_URL` (checked here); undefined: none.
 */
export function ledgerUrl(
  options: Pick<DispatchOptions, "ledger">,
  io: Io,
): Result<string | undefined, Failure> {
  if (options.ledger !== undefined) return ok(options.ledger);
  const env = io.env("CHUMP_LEDGER_URL") || undefined;
  if (env === undefined) return ok(undefined);
  const checked = checkLedgerUrl(env, "CHUMP_LEDGER_URL");
  return checked.ok ? checked : usageError(checked.error);
}

/** This host's name in the shared ledger: `--host-id`, else the host name. */
function hostIdOf(options: Pick<DispatchOptions, "hostId">): string {
  return options.hostId ?? (hostName() || "unknown-host");
}

/**
 * Join the shared ledger of `--ledger` / `CHUMP_LEDGER_URL` (undefined:
 * none). Rows it cannot take wait in `<db>.pg-spool.jsonl`.
 *
 * @example
 * ```ts ignore
 * const fleet = await joinFleet(options, io, runId, db);
 * ```
 */
export async function joinFleet(
  options:
    & Pick<DispatchOptions, "ledger" | "hostId">
    & Partial<Pick<DispatchOptions, "leaseTtlMs" | "takeOverAfterMs" | "fleetMax">>,
  io: Io,
  runId: string,
  db: string,
): Promise<Result<Fleet | undefined, Failure>> {
  const given = ledgerUrl(options, io);
  if (!given.ok) return given;
  const url = given.value;
  if (url === undefined) {
    const fleetOnly = [
      options.leaseTtlMs !== undefined && "--lease-ttl",
      options.takeOverAfterMs !== undefined && "--take-over-after",
      options.fleetMax !== undefined && "--fleet-max",
    ].filter(Boolean);
    if (fleetOnly.length > 0) {
      io.err(
        `warning: ${
          fleetOnly.join(", ")
        } apply to a shared ledger; without --ledger they do nothing`,
      );
    }
    return ok(undefined);
  }
  const { openFleet }: typeof import("../store/pg/fleet.ts") = await import(pgModule("fleet"));
  const fleet = await openFleet(url, {
    hostId: hostIdOf(options),
    runId,
    spoolPath: `${db}.pg-spool.jsonl`,
    err: io.err,
    leaseTtlMs: options.leaseTtlMs,
    takeOverAfterMs: options.takeOverAfterMs,
    fleetMax: options.fleetMax,
  });
  return fleet.ok ? fleet : runtimeError(fleet.error);
}

/**
 * A module of the shared ledger's, by a computed specifier: Deno reads a
 * literal `import()`'s whole graph at start (the PostgreSQL driver's too),
 * and a run without `--ledger` never needs it. `deno compile` includes
 * them by name (scripts/compile.ts).
 */
function pgModule(name: string): string {
  return new URL(`../store/pg/${name}.ts`, import.meta.url).href;
}
