/**
 * A bench child for the claims section: one orchestrator-like process.
 * `claims_worker.ts STORE TARGET HOST FIRST COUNT DIR` opens the claim store
 * (`pg`: the PostgreSQL claim table at URL TARGET; `sqlite`: the lease ledger
 * in the DB file TARGET), makes one warm-up claim (`W-HOST`), writes
 * `DIR/HOST.ready`, waits for `DIR/go`, then claims gaps `G-FIRST` ..
 * `G-(FIRST+COUNT-1)` one after another, as an orchestrator does, timing each.
 * It then writes `DIR/HOST.done` and stays alive (a SQLite lease holds its
 * gap only while its orchestrator lives) until `DIR/end` appears, and prints
 * `{"latenciesMs": [...], "wallMs": n, "endMs": n, "won": [...]}` on stdout
 * (`endMs`: epoch ms of its last claim's end, for the section's wall time).
 *
 * @module
 */
import { join } from "node:path";
import { openClaims } from "../lib/store/pg/claims.ts";
import { openLedger } from "../lib/store/ledger.ts";
import { exactSelfIdentity, processLiveness } from "../lib/process/liveness.ts";
import { Processes } from "../lib/process/table.ts";

const [store, target, host, first, count, dir] = Deno.args;

/** Claim one gap: won or not; throws on a store failure. */
type Claim = (gapId: string) => Promise<boolean>;

async function open(): Promise<{ claim: Claim; close: () => Promise<void> }> {
  if (store === "pg") {
    const claims = await openClaims(target, host, `${host}-run`);
    if (!claims.ok) throw new Error(claims.error);
    return {
      claim: async (gapId) => {
        const r = await claims.value.claim(gapId);
        if (!r.ok) throw new Error(r.error);
        return r.value.won;
      },
      close: () => claims.value.close(),
    };
  }
  const ledger = openLedger(target, processLiveness(await exactSelfIdentity(new Processes())));
  if (!ledger.ok) throw new Error(ledger.error);
  return {
    claim: async (gapId) => {
      const r = await ledger.value.begin({
        gapId,
        repoRoot: dir,
        branch: `claude/${gapId.toLowerCase()}`,
        worktree: join(dir, "wt", gapId),
        baseCommit: "",
        effort: "s",
        backend: "bench",
      });
      if (!r.ok) throw new Error(r.error);
      return r.value.begun;
    },
    close: () => Promise.resolve(ledger.value.close()),
  };
}

/** Wait until `path` exists, looking every `everyMs`. */
async function appears(path: string, everyMs: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await Deno.stat(path).then(() => true, () => false))) {
    if (Date.now() > deadline) throw new Error(`${path} never appeared`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

const claims = await open();
// The first claim of a process pays for compiling its statements; not what is measured.
await claims.claim(`W-${host}`);
await Deno.writeTextFile(join(dir, `${host}.ready`), "\n");
// Every millisecond: the barrier adds that much at most to the measured wall time.
await appears(join(dir, "go"), 1);

const latenciesMs: number[] = [];
const won: string[] = [];
const t0 = performance.now();
for (let i = Number(first); i < Number(first) + Number(count); i++) {
  const gapId = `G-${i}`;
  const started = performance.now();
  const mine = await claims.claim(gapId);
  latenciesMs.push(performance.now() - started);
  if (mine) won.push(gapId);
}
const t1 = performance.now();
await Deno.writeTextFile(join(dir, `${host}.done`), "\n");
// Seldom: the processes still claiming must not lose CPU to this one.
await appears(join(dir, "end"), 50);
await claims.close();
console.log(JSON.stringify({
  latenciesMs,
  wallMs: t1 - t0,
  endMs: performance.timeOrigin + t1,
  won,
}));
