/**
 * `serve`: the dashboard, a web page of the fleet, on loopback by default
 * (another address needs `--token`, checked on every request). The
 * page (`/`) redraws itself from `/api/status` every two seconds: each
 * lease's gap, state, who watches it, agent pid and liveness, elapsed time,
 * outcome and log file, with totals; `/metrics` is the same in Prometheus'
 * text format; `/api/reflections` the newest reflections as JSON. Read-only, like `status`: it opens the DB read-only and works
 * while runs go on in other terminals (or none: detached agents).
 *
 * @module
 */
import { EXIT, type Io } from "../cli/io.ts";
import { stopOnSignals } from "../cli/interrupt.ts";
import { type DashboardOptions, PROGRAM } from "../cli/parse.ts";
import { resolvePaths } from "../cli/paths.ts";
import { queryReflections } from "../store/query.ts";
import { readStatusRows, type StatusRow } from "./status.ts";

/** What `/api/status` returns. */
export interface DashboardStatus {
  db: string;
  generatedAt: string;
  leases: StatusRow[];
  /** Leases per watch state (`watched`, `adopted`, `orphaned`, ...). */
  byWatch: Record<string, number>;
  /** Reflections per outcome (all time). */
  outcomes: Record<string, number>;
}

/**
 * Serve the dashboard until SIGINT/SIGTERM; returns the exit code.
 *
 * @example
 * ```ts ignore
 * await runDashboard({ port: 8377, host: "127.0.0.1", limit: 50 }, io);
 * ```
 */
export async function runDashboard(options: DashboardOptions, io: Io): Promise<number> {
  const { db } = await resolvePaths(options);
  using stop = stopOnSignals();
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
      return handle(request, db, options.limit);
    });
    await server.finished;
    return EXIT.ok;
  } catch (e) {
    io.err(`${PROGRAM}: error: cannot serve the dashboard: ${String(e).split("\n")[0]}`);
    return EXIT.failure;
  }
}

/**
 * Does `request` carry `token` (`Authorization: Bearer T`, or `?token=T` for
 * a browser)? Compared in constant time.
 */
export function authorized(request: Request, token: string): boolean {
  const bearer = /^Bearer (.+)$/.exec(request.headers.get("authorization") ?? "")?.[1];
  const given = bearer ?? new URL(request.url).searchParams.get("token") ?? "";
  const a = new TextEncoder().encode(given);
  const b = new TextEncoder().encode(token);
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) diff |= (a[i] ?? 0) ^ b[i];
  return diff === 0;
}

async function handle(request: Request, db: string, limit: number): Promise<Response> {
  const path = new URL(request.url).pathname;
  if (path === "/") return new Response(PAGE, { headers: { "content-type": "text/html" } });
  if (path === "/api/reflections") {
    const rows = queryReflections(db, { limit });
    return rows.ok ? Response.json(rows.value) : new Response(`${rows.error}\n`, { status: 503 });
  }
  if (path !== "/api/status" && path !== "/metrics") {
    return new Response("not found\n", { status: 404 });
  }
  const status = await dashboardStatus(db, limit);
  if (!status.ok) return new Response(`${status.error}\n`, { status: 503 });
  if (path === "/metrics") {
    return new Response(metricsText(status.value), {
      headers: { "content-type": "text/plain; version=0.0.4" },
    });
  }
  return Response.json(status.value);
}

/**
 * The fleet now, from the DB at `db`.
 *
 * @example
 * ```ts
 * const dir = Deno.makeTempDirSync();
 * (await dashboardStatus(`${dir}/none.db`, 10)).ok; // true (no leases)
 * ```
 */
export async function dashboardStatus(
  db: string,
  limit: number,
): Promise<{ ok: true; value: DashboardStatus } | { ok: false; error: string }> {
  const rows = await readStatusRows(db, limit);
  if (!rows.ok) return rows;
  const reflections = queryReflections(db, { limit: Number.MAX_SAFE_INTEGER });
  if (!reflections.ok) return reflections;
  const leases = rows.value ?? [];
  // Keys in alphabetical order: the page and /metrics list them stably.
  const count = (keys: string[]) => {
    const out: Record<string, number> = {};
    for (const k of [...keys].sort()) out[k] = (out[k] ?? 0) + 1;
    return out;
  };
  return {
    ok: true,
    value: {
      db,
      generatedAt: new Date().toISOString(),
      leases,
      byWatch: count(leases.map((l) => l.watch)),
      outcomes: count(reflections.value.map((r) => r.outcome)),
    },
  };
}

/**
 * The status in Prometheus' text exposition format.
 *
 * @example
 * ```ts
 * metricsText({ db: "x", generatedAt: "", leases: [], byWatch: { watched: 2 }, outcomes: {} });
 * // includes 'chump_leases{watch="watched"} 2'
 * ```
 */
export function metricsText(s: DashboardStatus): string {
  const lines = [
    "# HELP chump_leases Leases among the newest listed, by who watches them.",
    "# TYPE chump_leases gauge",
  ];
  for (const [watch, n] of Object.entries(s.byWatch)) {
    lines.push(`chump_leases{watch="${watch}"} ${n}`);
  }
  lines.push(
    "# HELP chump_agents_alive Agents whose recorded process is alive.",
    "# TYPE chump_agents_alive gauge",
    `chump_agents_alive ${s.leases.filter((l) => l.state !== "ended" && l.pidAlive).length}`,
    "# HELP chump_reflections_total Dispatch reflections written, by outcome.",
    "# TYPE chump_reflections_total counter",
  );
  for (const outcome of ["shipped", "ci_failed", "stalled", "killed"]) {
    lines.push(`chump_reflections_total{outcome="${outcome}"} ${s.outcomes[outcome] ?? 0}`);
  }
  return lines.join("\n") + "\n";
}

/** The page: static HTML whose script redraws the table from /api/status. */
const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>chump-orchestrator fleet</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; }
th, td { padding: 0.3em 0.7em; border-bottom: 1px solid #ddd; text-align: left; }
.watched, .adopted { color: #0a6; } .orphaned { color: #c60; } .settled { color: #888; }
#error { color: #c00; }
</style>
</head>
<body>
<h1>Fleet</h1>
<p id="totals">loading...</p>
<p id="error"></p>
<table>
<thead><tr><th>lease</th><th>gap</th><th>state</th><th>watch</th><th>pid</th><th>alive</th>
<th>elapsed</th><th>outcome</th><th>log</th></tr></thead>
<tbody id="leases"></tbody>
</table>
<script>
const cell = (text, cls) => {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
};
const elapsed = (s) => s < 60 ? s + "s" : s < 7200 ? Math.floor(s / 60) + "m" : Math.floor(s / 3600) + "h";
async function draw() {
  try {
    const token = new URLSearchParams(location.search).get("token");
    const url = "/api/status" + (token ? "?token=" + encodeURIComponent(token) : "");
    const s = await (await fetch(url)).json();
    const body = document.getElementById("leases");
    body.replaceChildren(...s.leases.map((l) => {
      const tr = document.createElement("tr");
      tr.dataset.gap = l.gap;
      tr.append(cell(l.lease), cell(l.gap), cell(l.state), cell(l.watch, l.watch),
        cell(l.pid ?? ""), cell(l.pid === null ? "" : l.pidAlive ? "yes" : "no"),
        cell(elapsed(l.elapsedS)), cell(l.outcome ?? ""), cell(l.log ?? ""));
      return tr;
    }));
    const watch = Object.entries(s.byWatch).map(([k, n]) => k + " " + n).join(", ");
    const out = Object.entries(s.outcomes).map(([k, n]) => k + " " + n).join(", ");
    document.getElementById("totals").textContent =
      s.leases.length + " lease(s): " + (watch || "none") + "; outcomes: " + (out || "none");
    document.getElementById("error").textContent = "";
  } catch (e) {
    document.getElementById("error").textContent = "cannot read the status: " + e;
  }
}
draw();
setInterval(draw, 2000);
</script>
</body>
</html>
`;
