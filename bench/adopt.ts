/**
 * Adoption: what agents that outlive the orchestrator cost.
 *
 * - Waiter memory: 200 agents (`sleep`) each under its waiter (`sh` with the
 *   constant script); the resident memory the 200 waiters add, against the
 *   alternative of a waiter that is a Deno runtime (an idle `deno run`), in
 *   alternating rounds: total waiter RSS / (200 x one idle Deno's RSS).
 * - Adoption time: `adoptOrphans` over 200 leases of a gone orchestrator
 *   whose 200 agents still run, against the irreducible work (one fresh
 *   process listing and 200 compare-and-set UPDATEs on raw `node:sqlite`),
 *   in alternating rounds.
 *
 * @module
 */
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { realSpawner } from "../lib/process/spawn.ts";
import { Processes, readTable } from "../lib/process/table.ts";
import { agentFiles } from "../lib/process/waiter.ts";
import { openLedger } from "../lib/store/ledger.ts";
import { exactSelfIdentity, type Identity, processLiveness } from "../lib/process/liveness.ts";
import { adoptOrphans } from "../lib/watch/adopt.ts";
import { DEFAULT_DEADLINES } from "../lib/util/duration.ts";
import { alternate, killGroups, ms, ratioRow, type Row, runProcess } from "./_util.ts";

const AGENTS = 200;
const ROUNDS = 3;

/** Start `n` sleeping agents under waiters; their waiter pids (= groups). */
export function startAgents(dir: string, n: number): number[] {
  const pids: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = realSpawner.spawn({
      argv: ["sleep", "600"],
      cwd: dir,
      env: {},
      unwatched: true,
      files: agentFiles(join(dir, "logs", `${i}-bench`)),
    });
    if (!r.ok) throw new Error(r.error);
    pids.push(r.value.pid);
  }
  return pids;
}

/** Sum of VmRSS (MB) of `pids`, waiting until each is an `sh` that started its agent. */
async function rssMb(pids: readonly number[]): Promise<number> {
  await new Promise((r) => setTimeout(r, 300));
  const out = await runProcess("cat", pids.map((p) => `/proc/${p}/status`));
  let kb = 0;
  for (const m of out.stdout.matchAll(/VmRSS:\s+(\d+) kB/g)) kb += Number(m[1]);
  return kb / 1024;
}

async function idleDenoMb(dir: string): Promise<number> {
  const script = join(dir, "idle.ts");
  await Deno.writeTextFile(script, "setTimeout(() => {}, 600_000);\n");
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", script],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await new Promise((r) => setTimeout(r, 700));
    return await rssMb([child.pid]) * AGENTS;
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
}

async function waiterMemory(tmp: string): Promise<Row[]> {
  const dir = await Deno.makeTempDir({ dir: tmp, prefix: "waiters-" });
  try {
    const rounds = await alternate(ROUNDS, () => idleDenoMb(dir), async () => {
      const pids = startAgents(dir, AGENTS);
      try {
        return await rssMb(pids);
      } finally {
        killGroups(pids);
      }
    });
    const mb = (x: number) => `${x.toFixed(0)} MB`;
    return [
      ratioRow(
        "adopt",
        `RSS of ${AGENTS} waiters / ${AGENTS} idle Deno runtimes`,
        rounds,
        0.1,
        "a smaller waiter (a static binary) if this grows",
        mb,
      ),
      {
        section: "adopt",
        measure: `RSS the ${AGENTS} waiters add (sum of VmRSS, shared pages counted each time)`,
        result: `${mb(Math.max(...rounds.candidate))} max, ${
          (Math.max(...rounds.candidate) / AGENTS).toFixed(2)
        } MB each`,
        target: "",
      },
    ];
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** A DB whose `AGENTS` leases belong to a gone orchestrator and name live agents. */
async function orphanDb(dir: string, round: number, agents: readonly number[]): Promise<string> {
  const db = join(dir, `round-${round}.db`);
  const self = await exactSelfIdentity(new Processes());
  const dead = new Deno.Command("true").spawn();
  await dead.status;
  const gone: Identity = { pid: dead.pid, start: "proc:gone:1", host: self.host };
  const ledger = openLedger(db, processLiveness(gone));
  if (!ledger.ok) throw new Error(ledger.error);
  const table = await readTable();
  for (const [i, pid] of agents.entries()) {
    const begun = await ledger.value.begin({
      gapId: `AD-${round}-${i}`,
      repoRoot: dir,
      branch: `claude/ad-${i}`,
      worktree: join(dir, "wt", `ad-${i}`),
      baseCommit: "",
      effort: "s",
      backend: "claude",
    });
    if (!begun.ok || !begun.value.begun) throw new Error("cannot set up the leases");
    await ledger.value.running(begun.value.leaseId, {
      pid,
      pidStart: table.identityOf(pid),
      detached: false,
      logBase: join(dir, "logs", `${i}-bench`),
    });
  }
  ledger.value.close();
  return db;
}

async function adoptionTime(tmp: string): Promise<Row[]> {
  const dir = await Deno.makeTempDir({ dir: tmp, prefix: "adopt-" });
  const agents = startAgents(dir, AGENTS);
  const self = await exactSelfIdentity(new Processes());
  let round = 0;
  try {
    const rounds = await alternate(ROUNDS, async () => {
      const db = await orphanDb(dir, ++round, agents);
      const t0 = performance.now();
      await readTable();
      const conn = new DatabaseSync(db);
      const cas = conn.prepare(
        `UPDATE chump_dispatch_leases SET orchestrator_pid = ?, generation = generation + 1
          WHERE id = ? AND generation = 0`,
      );
      for (let id = 1; id <= AGENTS; id++) cas.run(self.pid, id);
      conn.close();
      return performance.now() - t0;
    }, async () => {
      const db = await orphanDb(dir, ++round, agents);
      const ledger = openLedger(db, processLiveness(self));
      if (!ledger.ok) throw new Error(ledger.error);
      const t0 = performance.now();
      const adopted = await adoptOrphans({
        ledger: ledger.value,
        processes: new Processes(),
        repoRoot: dir,
        baseRef: "origin/main",
        deadlines: DEFAULT_DEADLINES,
        out: () => {},
        err: () => {},
      });
      const took = performance.now() - t0;
      ledger.value.close();
      if (adopted.length !== AGENTS) throw new Error(`adopted ${adopted.length} of ${AGENTS}`);
      return took;
    });
    return [
      ratioRow(
        "adopt",
        `adopting ${AGENTS} leases / 1 process listing + ${AGENTS} raw CAS updates`,
        rounds,
        2,
        "batch the CAS updates in one transaction",
        ms,
      ),
    ];
  } finally {
    killGroups(agents);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** The adoption rows. */
export async function benchAdopt(tmp: string): Promise<Row[]> {
  return [...await waiterMemory(tmp), ...await adoptionTime(tmp)];
}
