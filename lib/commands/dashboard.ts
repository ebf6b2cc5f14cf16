/**
 * `serve`: the dashboard, a web page of the fleet, on loopback by default
 * (another address needs `--token`, checked on every request, the event
 * stream included). Routes:
 *
 * - `/`: the page (dashboard/page.ts, in the program: no network);
 * - `/api/events`: server-sent events, a `status` event whenever the fleet
 *   changes (looked at every second), which the page redraws from;
 * - `/api/status`: the same status once, as JSON (dashboard/data.ts);
 * - `/api/log/<lease>?lines=N`: the last lines of an agent's output;
 * - `/api/reflections`: the newest reflections as JSON;
 * - `/metrics`: Prometheus' text format.
 *
 * Read-only, like `status`: it opens the DB read-only and works while runs go
 * on in other terminals (or none: detached agents).
 *
 * @module
 */
import { EXIT, type Exit, type Io, runtimeError } from "../cli/io.ts";
import type { DashboardOptions } from "../cli/commands.ts";
import { stopOnSignals } from "../process/interrupt.ts";
import { resolvePaths } from "./paths.ts";
import { queryReflections, type ReflectionSource } from "../store/query.ts";
import { type DashboardStatus, dashboardStatus, metricsText } from "../dashboard/data.ts";
import { ok, type Result } from "../util/result.ts";
import { PAGE } from "../dashboard/page.ts";
import { sleep } from "../util/sleep.ts";
import { lastLines } from "../process/log_read.ts";
import { findLease } from "../store/ledger.ts";
import { processLiveness } from "../process/liveness.ts";
import { agentFiles } from "../process/waiter.ts";

/**
 * Serve the dashboard until SIGINT/SIGTERM; returns the exit code.
 *
 * @example
 * ```ts ignore
 * await runDashboard({ port: 8377, host: "127.0.0.1", limit: 50 }, io);
 * ```
 */
export async function runDashboard(options: DashboardOptions, io: Io): Promise<Exit> {
  const { db } = await resolvePaths(options);
  using stop = stopOnSignals();
  const fleet = options.ledger === undefined
    ? undefined
    : (await import("../store/pg/reflections.ts")).fleetReflectionsCache(
      options.ledger,
      FLEET_REFRESH_MS,
    );
  const reflections = async (): Promise<Result<ReflectionSource>> =>
    fleet ? await fleet.get() : ok(db);
  try {
    const server = Deno.serve({
      hostname: options.host,
      port: options.port,
      signal: stop.signal,
      onListen: ({ port }) => {
        const query = options.token === undefined ? "" : "?token=<your token>";
        io.out(`dashboard of ${db} at http://${options.host}:${port}/${query} (Ctrl-C to stop)`);
      },
      onError: (e) => new Response(`error: ${String(e).split("\n")[0]}\n`, { status: 500 }),
    }, (request) => {
      if (options.token !== undefined && !authorized(request, options.token)) {
        return new Response("401 unauthorized: give the token (?token=T or a Bearer header)\n", {
          status: 401,
          headers: { "www-authenticate": "Bearer" },
        });
      }
      return handle(request, { db, reflections, limit: options.limit, stop: stop.signal });
    });
    await server.finished;
    await fleet?.close();
    return ok(EXIT.ok);
  } catch (e) {
    return runtimeError(`cannot serve the dashboard: ${String(e).split("\n")[0]}`);
  }
}

/**
 * Does `request` carry `token` (`Authorization: Bearer T`, or `?token=T` for
 * a browser)? Compared in constant time.
 */
function authorized(request: Request, token: string): boolean {
  const bearer = /^Bearer (.+)$/.exec(request.headers.get("authorization") ?? "")?.[1];
  const given = bearer ?? new URL(request.url).searchParams.get("token") ?? "";
  const a = new TextEncoder().encode(given);
  const b = new TextEncoder().encode(token);
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) diff |= (a[i] ?? 0) ^ b[i];
  return diff === 0;
}

/** How often `serve --ledger` re-reads the fleet's reflections. */
const FLEET_REFRESH_MS = 5000;

/** What a request is served from. */
interface Served {
  db: string;
  /** Where outcomes and charts come from: the DB, or the fleet's reflections (`--ledger`). */
  reflections: () => Promise<Result<ReflectionSource>>;
  limit: number;
  /** Aborted when the server stops: event streams end with it. */
  stop: AbortSignal;
}

async function handle(request: Request, served: Served): Promise<Response> {
  const url = new URL(request.url);
  const path = url.pathname;
  const { db, limit } = served;
  if (path === "/") return new Response(PAGE, { headers: { "content-type": "text/html" } });
  if (path === "/api/events") return eventStream(served);
  if (path === "/api/reflections") {
    const source = await served.reflections();
    if (!source.ok) return unavailable(source.error);
    const rows = queryReflections(source.value, { limit });
    return rows.ok ? Response.json(rows.value) : unavailable(rows.error);
  }
  const log = /^\/api\/log\/(\d+)$/.exec(path);
  if (log) return await logTail(db, log[1], Number(url.searchParams.get("lines") ?? "40"));
  if (path !== "/api/status" && path !== "/metrics") {
    return new Response("not found\n", { status: 404 });
  }
  const status = await statusOf(served);
  if (!status.ok) return unavailable(status.error);
  if (path === "/metrics") {
    return new Response(metricsText(status.value), {
      headers: { "content-type": "text/plain; version=0.0.4" },
    });
  }
  return Response.json(status.value);
}

/** The status the page and /metrics show, with the reflections of the served source. */
async function statusOf(served: Served): Promise<Result<DashboardStatus>> {
  const source = await served.reflections();
  if (!source.ok) return source;
  return await dashboardStatus(served.db, served.limit, source.value);
}

function unavailable(why: string): Response {
  return new Response(`${why}\n`, { status: 503 });
}

/** How often the event stream looks at the DB. */
const STREAM_LOOK_MS = 1000;
/** A comment line this often keeps idle connections (and proxies) open. */
const KEEPALIVE_MS = 15_000;

/**
 * Server-sent events: a `status` event with the whole status whenever it
 * differs from the last one sent (its time aside), a `failure` event when the
 * DB cannot be read; until the client goes or the server stops.
 */
function eventStream(served: Served): Response {
  // The client going away cancels the body (request.signal is not used: it
  // aborts on completion, not on a client that leaves).
  const gone = new AbortController();
  const done = AbortSignal.any([gone.signal, served.stop]);
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    cancel() {
      gone.abort();
    },
    async start(controller) {
      const send = (text: string) => {
        try {
          controller.enqueue(encoder.encode(text));
        } catch {
          gone.abort(); // closed under us
        }
      };
      let last = "";
      let quietSince = Date.now();
      send("retry: 2000\n\n");
      while (!done.aborted) {
        const status = await statusOf(served);
        if (done.aborted) break;
        if (!status.ok) {
          send(`event: failure\ndata: ${JSON.stringify(status.error)}\n\n`);
        } else {
          const key = JSON.stringify({ ...status.value, generatedAt: "" });
          if (key !== last) {
            last = key;
            quietSince = Date.now();
            send(`event: status\ndata: ${JSON.stringify(status.value)}\n\n`);
          } else if (Date.now() - quietSince >= KEEPALIVE_MS) {
            quietSince = Date.now();
            send(": keep-alive\n\n");
          }
        }
        await sleep(STREAM_LOOK_MS, done);
      }
      if (!gone.signal.aborted) controller.close();
    },
  });
  return new Response(body, {
    headers: {
      "content-type": "text/event-stream",
      "cache-control": "no-store",
    },
  });
}

/** The last `lines` lines of lease `id`'s stdout and stderr, as text. */
async function logTail(db: string, id: string, lines: number): Promise<Response> {
  const found = await findLease(db, id, processLiveness());
  if (!found.ok) return new Response(`${found.error}\n`, { status: 404 });
  const lease = found.value;
  if (lease.logBase === null) return new Response(`lease ${id} kept no log files\n`);
  const n = Number.isInteger(lines) && lines > 0 ? Math.min(lines, 1000) : 40;
  const files = agentFiles(lease.logBase);
  const parts: string[] = [];
  for (const path of [files.out, files.err]) {
    parts.push(`==> ${path} <==`, ...(await lastLines(path, n, 256 << 10)).lines);
  }
  return new Response(parts.join("\n") + "\n", {
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}
