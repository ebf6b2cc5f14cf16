/**
 * `serve`: the dashboard, a web page of the fleet, on loopback by default
 * (another address needs `--token`, checked on every request for data, the
 * event stream included; the page's static script, style and icon are not
 * data). Routes:
 *
 * - `/`: the page with the fleet drawn in (dashboard/page.ts, render.ts);
 *   `/app.js`, `/app.css`, `/favicon.svg` (and `/favicon.ico`);
 * - `/api/events`: server-sent events, `status` (JSON) and `view` (the
 *   page's fragments) whenever the fleet changes, from ONE shared poller
 *   (dashboard/feed.ts), at most `--max-streams` at once (503 past it);
 * - `/api/status`: the same status once, as JSON (dashboard/data.ts);
 * - `/api/log/<lease>?lines=N`: the last lines of an agent's output;
 * - `/api/reflections`: the newest reflections as JSON;
 * - `/metrics`: Prometheus' text format.
 *
 * GET and HEAD only (405 otherwise). Every answer says what a browser may do
 * with it: a Content-Security-Policy that allows only this origin's script,
 * style and connections, no framing (`X-Frame-Options: DENY`), and no
 * Referer (a token can be in the address).
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
import { dashboardStatus, metricsText } from "../dashboard/data.ts";
import { ok, type Result } from "../util/result.ts";
import { FAVICON, pageHtml, SCRIPT, STYLE } from "../dashboard/page.ts";
import { renderView } from "../dashboard/render.ts";
import { StatusFeed } from "../dashboard/feed.ts";
import { lastLines } from "../process/log_read.ts";
import { findLease } from "../store/ledger.ts";
import { processLiveness } from "../process/liveness.ts";
import { agentFiles } from "../process/waiter.ts";

/**
 * Serve the dashboard until SIGINT/SIGTERM; returns the exit code.
 *
 * @example
 * ```ts ignore
 * await runDashboard({ port: 8377, host: "127.0.0.1", limit: 50, maxStreams: 100 }, io);
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
  const feed = new StatusFeed({
    read: async () => {
      const source = await reflections();
      return source.ok ? await dashboardStatus(db, options.limit, source.value) : source;
    },
    lookMs: STREAM_LOOK_MS,
    keepAliveMs: KEEPALIVE_MS,
    maxStreams: options.maxStreams,
    stop: stop.signal,
  });
  try {
    const server = Deno.serve({
      hostname: options.host,
      port: options.port,
      signal: stop.signal,
      onListen: ({ port }) => {
        const query = options.token === undefined ? "" : "?token=<your token>";
        io.out(`dashboard of ${db} at http://${options.host}:${port}/${query} (Ctrl-C to stop)`);
      },
      onError: (e) => answer(`error: ${String(e).split("\n")[0]}\n`, 500),
    }, async (request) => {
      const response = await route(request, { db, reflections, feed, options });
      for (const [k, v] of Object.entries(SECURITY_HEADERS)) response.headers.set(k, v);
      return response;
    });
    await server.finished;
    await fleet?.close();
    return ok(EXIT.ok);
  } catch (e) {
    return runtimeError(`cannot serve the dashboard: ${String(e).split("\n")[0]}`);
  }
}

/** What every answer carries: what a browser may do with it. */
const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; " +
    "img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; " +
    "frame-ancestors 'none'",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "x-content-type-options": "nosniff",
};

/** The page's static parts: no data, so no token needed. */
const ASSETS: Readonly<Record<string, { body: string; type: string }>> = {
  "/app.js": { body: SCRIPT, type: "text/javascript; charset=utf-8" },
  "/app.css": { body: STYLE, type: "text/css; charset=utf-8" },
  "/favicon.svg": { body: FAVICON, type: "image/svg+xml" },
  "/favicon.ico": { body: FAVICON, type: "image/svg+xml" },
};

/** How often `serve --ledger` re-reads the fleet's reflections. */
const FLEET_REFRESH_MS = 5000;

/** What a request is served from. */
interface Served {
  db: string;
  /** Where the reflections list comes from: the DB, or the fleet's (`--ledger`). */
  reflections: () => Promise<Result<ReflectionSource>>;
  feed: StatusFeed;
  options: DashboardOptions;
}

/** The method, the token, then the route. */
function route(request: Request, served: Served): Response | Promise<Response> {
  if (request.method !== "GET" && request.method !== "HEAD") {
    return answer("405 method not allowed: GET or HEAD\n", 405, { allow: "GET, HEAD" });
  }
  const path = new URL(request.url).pathname;
  const asset = Object.hasOwn(ASSETS, path) ? ASSETS[path] : undefined;
  if (asset) {
    return answer(asset.body, 200, { "content-type": asset.type, "cache-control": "no-cache" });
  }
  const { token } = served.options;
  if (token !== undefined && !authorized(request, token)) {
    return answer("401 unauthorized: give the token (?token=T or a Bearer header)\n", 401, {
      "www-authenticate": "Bearer",
    });
  }
  return handle(request, served);
}

/** A text answer (`content-type` text/plain unless `headers` say otherwise). */
function answer(body: string, status: number, headers: Record<string, string> = {}): Response {
  return new Response(body, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", ...headers },
  });
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

async function handle(request: Request, served: Served): Promise<Response> {
  const url = new URL(request.url);
  const path = url.pathname;
  const { db, feed } = served;
  if (path === "/api/events") {
    return request.method === "HEAD" ? new Response(null, EVENT_STREAM) : events(feed);
  }
  if (path === "/api/reflections") {
    const source = await served.reflections();
    if (!source.ok) return unavailable(source.error);
    const rows = queryReflections(source.value, { limit: served.options.limit });
    return rows.ok ? Response.json(rows.value) : unavailable(rows.error);
  }
  const log = /^\/api\/log\/(\d+)$/.exec(path);
  if (log) return await logTail(db, log[1], Number(url.searchParams.get("lines") ?? "40"));
  if (path !== "/" && path !== "/api/status" && path !== "/metrics") {
    return answer("not found\n", 404);
  }
  const status = await feed.status();
  if (path === "/") {
    const html = status.ok ? pageHtml(renderView(status.value)) : pageHtml(undefined, status.error);
    return answer(html, status.ok ? 200 : 503, { "content-type": "text/html; charset=utf-8" });
  }
  if (!status.ok) return unavailable(status.error);
  if (path === "/metrics") {
    return answer(metricsText(status.value), 200, {
      "content-type": "text/plain; version=0.0.4",
    });
  }
  return Response.json(status.value);
}

function unavailable(why: string): Response {
  return answer(`${why}\n`, 503);
}

/** How often the shared poller looks at the DB while anyone listens. */
const STREAM_LOOK_MS = 1000;
/** A comment line this often keeps idle connections (and proxies) open. */
const KEEPALIVE_MS = 15_000;

/** An event stream of the shared feed, or 503 when `--max-streams` are open. */
function events(feed: StatusFeed): Response {
  const body = feed.open();
  if (!body) {
    return answer(
      `503 too many live pages (${feed.streams} event streams open; see --max-streams)\n`,
      503,
      { "retry-after": "10" },
    );
  }
  return new Response(body, EVENT_STREAM);
}

const EVENT_STREAM: ResponseInit = {
  headers: { "content-type": "text/event-stream", "cache-control": "no-store" },
};

/** The last `lines` lines of lease `id`'s stdout and stderr, as text. */
async function logTail(db: string, id: string, lines: number): Promise<Response> {
  const found = await findLease(db, id, processLiveness());
  if (!found.ok) return answer(`${found.error}\n`, 404);
  const lease = found.value;
  if (lease.logBase === null) return answer(`lease ${id} kept no log files\n`, 200);
  const n = Number.isInteger(lines) && lines > 0 ? Math.min(lines, 1000) : 40;
  const files = agentFiles(lease.logBase);
  const parts: string[] = [];
  for (const path of [files.out, files.err]) {
    parts.push(`==> ${path} <==`, ...(await lastLines(path, n, 256 << 10)).lines);
  }
  return answer(parts.join("\n") + "\n", 200);
}
