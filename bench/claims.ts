/**
 * Claims: what claiming a gap costs when 10 orchestrator processes claim at
 * once, in the PostgreSQL claim table that hosts share (lib/store/pg/claims.ts,
 * on one throwaway local cluster for the section) against the SQLite lease
 * ledger of one host (lib/store/ledger.ts, one DB file shared by the 10), in
 * alternating rounds (SQLite, PostgreSQL, SQLite, ...), each on a fresh DB.
 * Each process claims one gap after another, as an orchestrator does (see
 * claims_worker.ts); the 10 start together at a `go` file.
 *
 * - Distinct: each process claims its own 100 gaps: 1,000 claims, all won.
 * - Contended: each process claims the same 100 gaps in the same order (as
 *   orchestrators reading one backlog do): 1,000 claims, 100 won. Not 1,000
 *   shared gaps: in the SQLite ledger a lost claim takes a process listing
 *   (is the holder's orchestrator alive?), tens of ms each with 10 processes
 *   on 2 cores, so 9,000 losses would take half a minute or more a round.
 *
 * Rows: p50 and p99 claim latency and throughput (claims / the wall time
 * from `go` to the last claim's end), PostgreSQL / SQLite, and the gaps won.
 * The count is the hard target: each store must hold exactly one live lease
 * per gap won, and the processes must report exactly those wins. p50 and
 * throughput have no target: on one host SQLite's claim is a write in the
 * orchestrator's own process and PostgreSQL's a transaction of round trips
 * to a server that shares the cores, so PostgreSQL is expected to be slower
 * there; it is what lets several hosts share a backlog, which no SQLite file
 * can. p99 is what stalls an orchestrator's tick: at most 10x SQLite's, a
 * bound that only catches a claim that regressed to waiting on a lock (a
 * fleet-wide one, say) or to a scan of the lease table.
 *
 * @module
 */
import { basename, join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import postgres from "postgres";
import { throwawayCluster } from "../testkit/pg.ts";
import { alternate, ratioRow, reported, ROOT, type Rounds, type Row, runProcess } from "./_util.ts";

/** Orchestrator processes claiming at once. */
const PROCS = 10;
/** Claims each process makes (1,000 in all, in each variant). */
const PER_PROC = 100;
/** Rounds per store and variant: 2 x 3 x 2 rounds keep the section near 40 s on 2 cores. */
const ROUNDS = 3;
/** PostgreSQL's p99 claim latency may be this many times SQLite's on one host (see above). */
const MAX_P99_RATIO = 10;

type Store = "sqlite" | "pg";

/** A workload: which gaps process `p` claims, as `[first, count]` of `G-first` ..; gaps won in all. */
interface Variant {
  name: string;
  what: string;
  gapsOf(p: number): [number, number];
  won: number;
}

const DISTINCT: Variant = {
  name: "distinct",
  what: `${PROCS} processes x ${PER_PROC} own gaps`,
  gapsOf: (p) => [p * PER_PROC, PER_PROC],
  won: PROCS * PER_PROC,
};

const CONTENDED: Variant = {
  name: "contended",
  what: `${PROCS} processes x the same ${PER_PROC} gaps`,
  gapsOf: () => [0, PER_PROC],
  won: PER_PROC,
};

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

/**
 * Wait for every one of `paths`, looking every `everyMs`; fail when a worker
 * exited before, or after a minute.
 */
async function allAppear(
  paths: readonly string[],
  everyMs: number,
  exited: () => string | undefined,
): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const seen = await Promise.all(paths.map(exists));
    if (seen.every(Boolean)) return;
    const gone = exited();
    if (gone !== undefined) throw new Error(`a claims worker exited early: ${gone}`);
    if (Date.now() > deadline) {
      const missing = seen.filter((s) => !s).length;
      throw new Error(
        `${missing} of ${paths.length} claims workers never wrote ${
          basename(paths[seen.indexOf(false)])
        }`,
      );
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
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

/** One round: `PROCS` workers claiming in `target`, started together by the `go` file. */
async function claimRound(
  store: Store,
  target: string,
  dir: string,
  variant: Variant,
): Promise<Measured> {
  const hosts = Array.from({ length: PROCS }, (_, p) => `h${p}`);
  const args = (p: number) => [
    "run",
    "--quiet",
    "--no-prompt",
    `--config=${join(ROOT, "deno.json")}`,
    "--allow-read",
    `--allow-write=${dir}`,
    // The driver reads PG* variables; the ledger names the host and lists processes with `sh`.
    "--allow-env",
    "--allow-sys",
    "--allow-net=127.0.0.1",
    "--allow-run=sh",
    join(ROOT, "bench", "claims_worker.ts"),
    store,
    target,
    hosts[p],
    ...variant.gapsOf(p).map(String),
    dir,
  ];
  let exited: string | undefined;
  const workers = hosts.map((_, p) =>
    runProcess(Deno.execPath(), args(p)).then((ran) => {
      exited ??= `exit ${ran.code}: ${ran.stderr.trim().split("\n").at(-1)}`;
      return ran;
    })
  );
  let go = 0;
  try {
    await allAppear(hosts.map((h) => join(dir, `${h}.ready`)), 5, () => exited);
    go = performance.timeOrigin + performance.now();
    await Deno.writeTextFile(join(dir, "go"), "\n");
    // Seldom: the wall time is the workers' own, and this loop must not take their CPU.
    await allAppear(hosts.map((h) => join(dir, `${h}.done`)), 50, () => exited);
  } finally {
    // Also after a failure: the workers wait for it to exit.
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

/** One measure's rounds, from both stores' measurements. */
function roundsOf(sqlite: Measured[], pg: Measured[], of: (m: Measured) => number): Rounds {
  const baseline = sqlite.map(of);
  const candidate = pg.map(of);
  return { baseline, candidate, ratios: candidate.map((c, i) => c / baseline[i]) };
}

/** One variant's rows: `ROUNDS` alternating rounds of each store on the cluster at `url`. */
async function benchVariant(tmp: string, url: string, variant: Variant): Promise<Row[]> {
  const admin = postgres(url, { max: 1, onnotice: () => {} });
  const sqlite: Measured[] = [];
  const pg: Measured[] = [];
  const inDir = async (f: (dir: string) => Promise<Measured>) => {
    const dir = await Deno.makeTempDir({ dir: tmp, prefix: `claims-${variant.name}-` });
    try {
      return await f(dir);
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  };
  try {
    const p50 = await alternate(ROUNDS, async () => {
      const m = await inDir((dir) => claimRound("sqlite", join(dir, "ledger.db"), dir, variant));
      sqlite.push(m);
      return m.p50;
    }, async () => {
      const db = `claims_${variant.name}_${pg.length}`;
      await admin.unsafe(`CREATE DATABASE ${db}`);
      const u = new URL(url);
      u.pathname = `/${db}`;
      const m = await inDir((dir) => claimRound("pg", u.href, dir, variant));
      pg.push(m);
      return m.p50;
    });
    const measure = (what: string) =>
      `${variant.name}: ${what}, PostgreSQL / SQLite (${variant.what})`;
    const perSecond = (x: number) => `${x.toFixed(0)} claims/s`;
    const wonRow = (store: string, ms: Measured[]): Row => {
      const bad = ms.find((m) => m.won !== variant.won);
      return {
        section: "claims",
        measure: `${variant.name}: gaps won in ${store}, each once (${ROUNDS} rounds)`,
        result: ms.map((m) => (m.won === -1 ? "mismatch" : String(m.won))).join(", "),
        target: `${variant.won} every round`,
        met: bad === undefined,
        fix: bad && (bad.problem ?? `${bad.won} won: a claim lost or granted twice`),
      };
    };
    return [
      reported(ratioRow("claims", measure("p50 claim"), p50, 0, "")),
      ratioRow(
        "claims",
        measure("p99 claim"),
        roundsOf(sqlite, pg, (m) => m.p99),
        MAX_P99_RATIO,
        "look for a lock wait or a second round trip added to PostgreSQL's claim",
      ),
      reported(
        ratioRow(
          "claims",
          measure("claims/s"),
          roundsOf(sqlite, pg, (m) => m.perSecond),
          0,
          "",
          perSecond,
        ),
      ),
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
  return [
    ...await benchVariant(tmp, cluster.url, DISTINCT),
    ...await benchVariant(tmp, cluster.url, CONTENDED),
  ];
}
