/**
 * Claims: what claiming a gap costs when 10 orchestrator processes claim at
 * once, in the PostgreSQL claim table shared by hosts (lib/store/pg/claims.ts,
 * on a throwaway local cluster) against the SQLite lease ledger of one host
 * (lib/store/ledger.ts, one DB file shared by the 10), in alternating rounds
 * (SQLite, PostgreSQL, SQLite, ...), each round on a fresh DB.
 *
 * - Distinct: each process claims its own 100 gaps one after another (1,000
 *   claims, every one wins): p50 and p99 claim latency, and throughput
 *   (1,000 claims / the wall time from the `go` barrier to the last claim's end).
 * - Contended: each process claims the same 1,000 gaps in the same order (as
 *   orchestrators reading one backlog do): 10,000 claims, 1,000 winners.
 *
 * Each store must leave exactly 1,000 live leases on 1,000 distinct gaps, and
 * the processes must report exactly those 1,000 wins (none twice): a count,
 * the section's only hard target. The latency ratios are reported against
 * SQLite on one host with a loose bound: PostgreSQL's claim is a network
 * round trip to another server process where SQLite's is a file lock and a
 * write in the orchestrator's own process, so PostgreSQL is allowed to be
 * slower per claim on one machine; it is what lets several hosts share a
 * backlog, which no SQLite file can. The bound (10x) only catches a claim
 * that regressed to something far costlier than one statement round trip.
 *
 * @module
 */
import { basename, join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import postgres from "postgres";
import { throwawayCluster } from "../testkit/pg.ts";
import {
  alternate,
  median,
  ratioRow,
  ROOT,
  type Rounds,
  type Row,
  runProcess,
  spread,
} from "./_util.ts";

/** Orchestrator processes claiming at once. */
const PROCS = 10;
/** Gaps claimed in all (and won, whatever the variant). */
const GAPS = 1000;
/** Rounds per store and variant: 3 + 3 x 2 variants keeps the section near 40 s on 2 cores. */
const ROUNDS = 3;
/** PostgreSQL's p50 and p99 claim latency may be this many times SQLite's on one host (see above). */
const MAX_LATENCY_RATIO = 10;

type Store = "sqlite" | "pg";

/** What one round of one store measured. */
interface Measured {
  p50: number;
  p99: number;
  /** Claims per second, from `go` to the last claim's end. */
  perSecond: number;
  /** Gaps won, when the store and the processes agree on exactly which; else -1. */
  won: number;
  /** Why `won` is -1. */
  problem?: string;
}

/** The nearest-rank `q` quantile of some numbers. */
function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil(q * s.length) - 1)];
}

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

/** Wait for every one of `paths`; fail when a worker exited before. */
async function allAppear(paths: readonly string[], exited: () => string | undefined) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const seen = await Promise.all(paths.map(exists));
    if (seen.every(Boolean)) return;
    const gone = exited();
    if (gone !== undefined) throw new Error(`a claims worker exited early: ${gone}`);
    if (Date.now() > deadline) {
      const n = seen.filter(Boolean).length;
      throw new Error(`${paths.length - n} of ${paths.length} claims workers never wrote ${
        basename(paths[seen.indexOf(false)])
      }`);
    }
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** The gap ids (as `[first, count]`) process `p` claims. */
function gapsOf(p: number, contended: boolean): [number, number] {
  return contended ? [0, GAPS] : [p * (GAPS / PROCS), GAPS / PROCS];
}

/** Live leases and distinct gaps among them, as the store holds them after a round. */
async function stored(store: Store, target: string): Promise<{ rows: number; gaps: number }> {
  const query = (table: string) =>
    `SELECT count(*) AS rows, count(DISTINCT gap_id) AS gaps FROM ${table}
      WHERE gap_id LIKE 'G-%' AND state = 'starting'`;
  if (store === "sqlite") {
    const db = new DatabaseSync(target, { readOnly: true });
    const r = db.prepare(query("chump_dispatch_leases")).get() as { rows: number; gaps: number };
    db.close();
    return { rows: Number(r.rows), gaps: Number(r.gaps) };
  }
  const sql = postgres(target, { max: 1, onnotice: () => {} });
  try {
    const [r] = await sql.unsafe(query("chump_pg_leases"));
    return { rows: Number(r.rows), gaps: Number(r.gaps) };
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** One round: `PROCS` workers against `target`, started together by the `go` file. */
async function claimRound(
  store: Store,
  target: string,
  dir: string,
  contended: boolean,
): Promise<Measured> {
  const args = (p: number) => [
    "run",
    "--quiet",
    "--no-prompt",
    `--config=${join(ROOT, "deno.json")}`,
    "--allow-read",
    `--allow-write=${dir}`,
    // The driver reads PG* variables and the host's name; the ledger lists processes with `sh`.
    "--allow-env",
    "--allow-sys",
    "--allow-net=127.0.0.1",
    "--allow-run=sh",
    join(ROOT, "bench", "claims_worker.ts"),
    store,
    target,
    `h${p}`,
    ...gapsOf(p, contended).map(String),
    dir,
  ];
  let exited: string | undefined;
  const workers = Array.from(
    { length: PROCS },
    (_, p) =>
      runProcess(Deno.execPath(), args(p)).then((ran) => {
        exited ??= `exit ${ran.code}: ${ran.stderr.trim().split("\n").at(-1)}`;
        return ran;
      }),
  );
  const hosts = Array.from({ length: PROCS }, (_, p) => `h${p}`);
  let go = 0;
  try {
    await allAppear(hosts.map((h) => join(dir, `${h}.ready`)), () => exited);
    go = performance.timeOrigin + performance.now();
    await Deno.writeTextFile(join(dir, "go"), "\n");
    await allAppear(hosts.map((h) => join(dir, `${h}.done`)), () => exited);
  } finally {
    // Also on a failure: the workers wait for it, then exit.
    await Deno.writeTextFile(join(dir, "end"), "\n");
  }
  const ran = await Promise.all(workers);
  const latencies: number[] = [];
  const won: string[] = [];
  let last = 0;
  for (const r of ran) {
    if (r.code !== 0) throw new Error(`a claims worker failed: ${r.stderr.trim()}`);
    const out = JSON.parse(r.stdout.trim().split("\n").at(-1) ?? "");
    latencies.push(...out.latenciesMs);
    won.push(...out.won);
    last = Math.max(last, out.endMs);
  }
  const inStore = await stored(store, target);
  const distinct = new Set(won).size;
  const agree = inStore.rows === inStore.gaps && inStore.gaps === won.length &&
    distinct === won.length;
  return {
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    perSecond: latencies.length / ((last - go) / 1000),
    won: agree ? distinct : -1,
    problem: agree ? undefined : `the store holds ${inStore.rows} leases on ${inStore.gaps} ` +
      `gaps; the processes report ${won.length} wins on ${distinct} gaps`,
  };
}

/** The rounds of one measure, taken from both stores' measurements. */
function roundsOf(sqlite: Measured[], pg: Measured[], of: (m: Measured) => number): Rounds {
  const baseline = sqlite.map(of);
  const candidate = pg.map(of);
  return { baseline, candidate, ratios: candidate.map((c, i) => c / baseline[i]) };
}

/** One variant's rows: `ROUNDS` alternating rounds of each store on one cluster. */
async function variant(tmp: string, url: string, contended: boolean): Promise<Row[]> {
  const name = contended ? "contended" : "distinct";
  const what = contended
    ? `${PROCS} processes x the same ${GAPS} gaps`
    : `${PROCS} processes x ${GAPS / PROCS} own gaps`;
  const admin = postgres(url, { max: 1, onnotice: () => {} });
  const sqlite: Measured[] = [];
  const pg: Measured[] = [];
  const inDir = async (f: (dir: string) => Promise<Measured>) => {
    const dir = await Deno.makeTempDir({ dir: tmp, prefix: `claims-${name}-` });
    try {
      return await f(dir);
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  };
  try {
    const p50 = await alternate(ROUNDS, async () => {
      const m = await inDir((dir) => claimRound("sqlite", join(dir, "ledger.db"), dir, contended));
      sqlite.push(m);
      return m.p50;
    }, async () => {
      const db = `claims_${name}_${pg.length}`;
      await admin.unsafe(`CREATE DATABASE ${db}`);
      const u = new URL(url);
      u.pathname = `/${db}`;
      const m = await inDir((dir) => claimRound("pg", u.href, dir, contended));
      pg.push(m);
      return m.p50;
    });
    const fix = "look for a second round trip (or a lock wait) added to PostgreSQL's claim";
    const throughput = roundsOf(sqlite, pg, (m) => m.perSecond);
    const ratio = median(throughput.ratios);
    const perSecond = (x: number) => `${x.toFixed(0)} claims/s`;
    const wonRow = (store: string, ms: Measured[]): Row => {
      const bad = ms.find((m) => m.won !== GAPS);
      return {
        section: "claims",
        measure: `${name}: gaps won in ${store}, each once (${ROUNDS} rounds)`,
        result: ms.map((m) => (m.won === -1 ? "mismatch" : String(m.won))).join(", "),
        target: `${GAPS} every round`,
        met: bad === undefined,
        fix: bad?.problem ?? `${bad?.won} won: a claim lost or granted twice`,
      };
    };
    return [
      ratioRow(
        "claims",
        `${name}: p50 claim, PostgreSQL / SQLite (${what})`,
        p50,
        MAX_LATENCY_RATIO,
        fix,
      ),
      ratioRow(
        "claims",
        `${name}: p99 claim, PostgreSQL / SQLite (${what})`,
        roundsOf(sqlite, pg, (m) => m.p99),
        MAX_LATENCY_RATIO,
        fix,
      ),
      {
        section: "claims",
        measure: `${name}: claims/s, PostgreSQL / SQLite (${ROUNDS} rounds)`,
        result: `${ratio.toFixed(2)}x (${perSecond(median(throughput.candidate))} / ${
          perSecond(median(throughput.baseline))
        })`,
        spread: spread(throughput),
        target: "",
      },
      wonRow("PostgreSQL", pg),
      wonRow("SQLite", sqlite),
    ];
  } finally {
    await admin.end({ timeout: 5 });
  }
}

/** The claims rows: one cluster for the section, the distinct then the contended variant. */
export async function benchClaims(tmp: string): Promise<Row[]> {
  await using cluster = await throwawayCluster();
  return [...await variant(tmp, cluster.url, false), ...await variant(tmp, cluster.url, true)];
}
