/**
 * Dashboard under many live pages: 500 `/api/events` streams held open
 * (and read, as browsers read them) on one `serve`, none on another, both
 * over the same DB (20 live agents, 1,000 reflections). Alternating rounds
 * time `/api/status` on each: the ratio is what the open streams cost an API
 * request. Also measured: each server's resident memory and open file
 * descriptors with the streams open, and the loaded one's descriptors once
 * the pages have gone (they must come back to the idle server's count).
 *
 * @module
 */
import { startAgents } from "./adopt.ts";
import { fleetDb, serve } from "./dashboard.ts";
import { alternate, killGroups, ratioRow, type Row, runProcess, timed } from "./_util.ts";
import { waitFor } from "../testkit/process.ts";

const STREAMS = 500;
const AGENTS = 20;
const ROUNDS = 15;
const MAX_RATIO = 3;

/** The deno process that serves (the task's process relaunches itself once). */
async function serverPid(pid: number): Promise<number> {
  for (;;) {
    const out = await runProcess("cat", [`/proc/${pid}/task/${pid}/children`]);
    const child = out.stdout.trim().split(/\s+/).filter(Boolean).map(Number)[0];
    if (child === undefined) return pid;
    pid = child;
  }
}

/** Resident memory (MB) and open descriptors of `pid`. */
async function footprint(pid: number): Promise<{ rssMb: number; fds: number }> {
  const status = await runProcess("cat", [`/proc/${pid}/status`]);
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(status.stdout)?.[1] ?? "0") / 1024;
  const fds = (await runProcess("ls", [`/proc/${pid}/fd`])).stdout.split("\n").filter(Boolean);
  return { rssMb: rss, fds: fds.length };
}

/** Open `n` event streams on `url`, each read in the background until cancelled. */
async function openStreams(url: string, n: number): Promise<() => Promise<void>> {
  const readers: ReadableStreamDefaultReader<Uint8Array>[] = [];
  const drains: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const r = await fetch(`${url}api/events`);
    if (r.status !== 200) throw new Error(`stream ${i + 1}: ${r.status} ${await r.text()}`);
    const reader = r.body!.getReader();
    readers.push(reader);
    drains.push((async () => {
      try {
        while (!(await reader.read()).done) { /* drain */ }
      } catch {
        // cancelled
      }
    })());
  }
  return async () => {
    await Promise.all(readers.map((r) => r.cancel().catch(() => {})));
    await Promise.all(drains);
  };
}

async function statusTime(url: string): Promise<number> {
  return await timed(async () => {
    const r = await fetch(`${url}api/status`);
    if (r.status !== 200) throw new Error(`/api/status: ${r.status}`);
    await r.arrayBuffer();
  });
}

/** The streams rows. */
export async function benchStreams(tmp: string): Promise<Row[]> {
  const dir = await Deno.makeTempDir({ dir: tmp, prefix: "streams-" });
  const agents = startAgents(dir, AGENTS);
  const db = await fleetDb(dir, agents);
  const idle = await serve(db);
  const loaded = await serve(db, ["--max-streams", String(STREAMS)]);
  try {
    const idlePid = await serverPid(idle.pid);
    const loadedPid = await serverPid(loaded.pid);
    const before = await footprint(loadedPid);
    const close = await openStreams(loaded.url, STREAMS);
    const refused = (await fetch(`${loaded.url}api/events`)).status;
    const rounds = await alternate(
      ROUNDS,
      () => statusTime(idle.url),
      () => statusTime(loaded.url),
    );
    const open = await footprint(loadedPid);
    const quiet = await footprint(idlePid);
    await close();
    let after = await footprint(loadedPid);
    await waitFor(async () => {
      after = await footprint(loadedPid);
      return after.fds <= quiet.fds + 5;
    }, { what: "descriptors given back", timeoutMs: 20_000 }).catch(() => {});
    return [
      ratioRow(
        "streams",
        `/api/status with ${STREAMS} open event streams vs none`,
        rounds,
        MAX_RATIO,
        "one shared poller (dashboard/feed.ts); no per-stream DB reads",
      ),
      {
        section: "streams",
        measure: `serve with ${STREAMS} open streams: memory, descriptors, one more stream`,
        result: `RSS ${open.rssMb.toFixed(0)} MB (none open: ${quiet.rssMb.toFixed(0)} MB, ` +
          `before them: ${before.rssMb.toFixed(0)} MB), ${open.fds} fds; one more: HTTP ${refused}`,
        target: `HTTP 503 past --max-streams`,
        met: refused === 503,
      },
      {
        section: "streams",
        measure: `descriptors after the ${STREAMS} pages left`,
        result: `${after.fds} (a server that had none: ${quiet.fds})`,
        target: `<= ${quiet.fds + 5}`,
        met: after.fds <= quiet.fds + 5,
        fix: "close a stream when its client goes (the body's cancel)",
      },
    ];
  } finally {
    await loaded.stop();
    await idle.stop();
    killGroups(agents);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
