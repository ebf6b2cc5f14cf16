/**
 * What the fleet tests share: machines (clones of one origin), running one
 * orchestrator per machine against one PostgreSQL ledger, and reading what
 * the runs and the ledger say.
 */
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import postgres from "postgres";
import { type ScratchRepo, watchArgs } from "./_e2e.ts";
import { type Ran, runMain } from "./_helpers.ts";
import { GIT_ID, gitOk } from "../testkit/repo.ts";

/** The scratch repo and `count - 1` more clones of its origin: one checkout per machine. */
export async function machines(s: ScratchRepo, count: number): Promise<ScratchRepo[]> {
  const out = [s];
  for (let i = 1; i < count; i++) {
    const repo = join(s.dir, `machine-${i}`);
    await gitOk(["clone", "--quiet", s.origin, repo], s.dir);
    out.push({ ...s, repo, db: join(repo, "sessions", "chump_memory.db") });
  }
  return out;
}

/** Run one orchestrator per machine at once, each with its host id `host-<i>`. */
export function fleetRun(
  hosts: readonly ScratchRepo[],
  url: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<Ran[]> {
  return Promise.all(
    hosts.map((m, i) =>
      runMain(watchArgs(m, ["--ledger", url, "--host-id", `host-${i}`, ...args]), {
        env: { ...GIT_ID, ...env },
      })
    ),
  );
}

/** The gap ids of `DISPATCHED:` lines. */
export function dispatchedIn(text: string): string[] {
  return [...text.matchAll(/^DISPATCHED: (\S+) /gm)].map((m) => m[1]);
}

/** The dispatch reflections of one local DB, as gap ids (one per row). */
export function localReflections(db: string): string[] {
  const conn = new DatabaseSync(db, { readOnly: true });
  try {
    return conn.prepare(
      "SELECT intended_goal AS g FROM chump_reflections r JOIN chump_improvement_targets t ON t.reflection_id = r.id ORDER BY r.id",
    ).all().map((r) => String(r.g).replace(/^ship gap /, ""));
  } catch {
    return [];
  } finally {
    conn.close();
  }
}

/** The ledger's rows: reflections (gap ids, one per row joined with its target) and leases. */
export async function ledgerRows(url: string) {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const reflections = await sql`
      SELECT r.intended_goal AS g FROM chump_reflections r
      JOIN chump_improvement_targets t ON t.reflection_id = r.id ORDER BY r.id`;
    const leases = await sql`
      SELECT gap_id, host_id, state, outcome, generation,
             extract(epoch FROM started_at) * 1000 AS started,
             extract(epoch FROM updated_at) * 1000 AS ended
      FROM chump_pg_leases ORDER BY id`;
    return {
      reflections: reflections.map((r) => String(r.g).replace(/^ship gap /, "")),
      leases: leases.map((l) => ({
        gap: String(l.gap_id),
        host: String(l.host_id),
        state: String(l.state),
        outcome: l.outcome === null ? null : String(l.outcome),
        generation: Number(l.generation),
        started: Number(l.started),
        ended: Number(l.ended),
      })),
    };
  } finally {
    await sql.end();
  }
}

/** The most leases live at one time (each from its claim to its end, by the server's clock). */
export function maxOverlap(leases: readonly { started: number; ended: number }[]): number {
  const edges = leases.flatMap((l) => [[l.started, 1], [l.ended, -1]] as const)
    .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let live = 0;
  let most = 0;
  for (const [, d] of edges) most = Math.max(most, live += d);
  return most;
}

export const sorted = (xs: readonly string[]) => [...xs].sort();
