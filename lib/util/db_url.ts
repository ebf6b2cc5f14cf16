/**
 * The shared ledger's URL (`--ledger`, `CHUMP_LEDGER_URL`): what a usable
 * one looks like, checked before anything connects, and the host and port
 * it names (for the network permission).
 *
 * @module
 */
import { fail, ok, type Result } from "./result.ts";

/** What a ledger URL looks like, for messages. */
const SHAPE = "postgres://USER@HOST:PORT/DB";

/**
 * `url` when it is a PostgreSQL URL that names its server (a host, or a
 * socket directory in `?host=`), else why not: a URL of another scheme is
 * refused here rather than sent to a resolver, and a bare `postgres://` does
 * not silently mean this machine's port 5432. Only the scheme is echoed:
 * the rest of a URL may hold a password.
 *
 * @param url the URL as given
 * @param source where it came from (`--ledger`, `CHUMP_LEDGER_URL`), for the message
 * @example
 * ```ts
 * checkLedgerUrl("garbage://x", "--ledger").ok; // false
 * checkLedgerUrl("postgres://chump@db:5432/chump", "--ledger").ok; // true
 * ```
 */
export function checkLedgerUrl(url: string, source: string): Result<string> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return fail(`${source} is not a URL (want ${SHAPE})`);
  }
  if (u.protocol !== "postgres:" && u.protocol !== "postgresql:") {
    return fail(`${source} wants a PostgreSQL URL (${SHAPE}), got scheme '${u.protocol}'`);
  }
  if (u.hostname === "" && !u.searchParams.get("host")) {
    return fail(`${source} names no server (want ${SHAPE}, or ?host=SOCKET_DIR)`);
  }
  return ok(url);
}

/**
 * `host:port` of a PostgreSQL URL (port 5432 when it has none), or
 * undefined when it is not one or names no host (a socket directory).
 *
 * @example
 * ```ts
 * dbHostPort("postgres://u@db/chump"); // "db:5432"
 * ```
 */
export function dbHostPort(url: string): string | undefined {
  try {
    const u = new URL(url);
    if (u.protocol !== "postgres:" && u.protocol !== "postgresql:") return undefined;
    if (u.hostname === "") return undefined;
    return `${u.hostname.replace(/^\[|\]$/g, "")}:${u.port || "5432"}`;
  } catch {
    return undefined;
  }
}
