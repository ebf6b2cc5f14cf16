/**
 * Dashboard: time to first paint with 200 live agents.
 *
 * A DB with 200 running leases (real agents: `sleep` under waiters, with
 * log files) and 1,000 reflections over 5 domains, 4 efforts and 3 backends
 * (the charts); `serve` on it, started like the task starts it; Debian's
 * chromium (puppeteer-core, one browser) loads the page and the page marks
 * the moment its first fleet is on screen (`chump-fleet-painted`, a frame
 * after the first `status` event is drawn), read as ms since navigation
 * start. The baseline, in alternating rounds, is the same page over an empty
 * DB: the ratio is what 200 agents cost. The target is absolute
 * (< 500 ms); both are reported.
 *
 * @module
 */
import { join } from "node:path";
import type { Page } from "puppeteer-core";
import { firstLine, openBrowser } from "../testkit/browser.ts";
import { openLedger } from "../lib/store/ledger.ts";
import { exactSelfIdentity, processLiveness } from "../lib/process/liveness.ts";
import { Processes } from "../lib/process/table.ts";
import { createSqliteWriter } from "../lib/store/writer.ts";
import { startAgents } from "./adopt.ts";
import { alternate, killGroups, median, ms, ROOT, type Row, taskMainArgs } from "./_util.ts";

const AGENTS = 200;
const REFLECTIONS = 1000;
const ROUNDS = 7;
const TARGET_MS = 500;

/** A DB of running leases naming `agents`, and `REFLECTIONS` reflections. */
export async function fleetDb(dir: string, agents: readonly number[]): Promise<string> {
  const db = join(dir, "fleet", "chump_memory.db");
  await Deno.mkdir(join(dir, "fleet"), { recursive: true });
  const ledger = openLedger(db, processLiveness(await exactSelfIdentity(new Processes())));
  if (!ledger.ok) throw new Error(ledger.error);
  for (const [i, pid] of agents.entries()) {
    const begun = await ledger.value.begin({
      gapId: `FLEET-${i}`,
      repoRoot: dir,
      branch: `claude/fleet-${i}`,
      worktree: join(dir, "wt", `fleet-${i}`),
      baseCommit: "",
      effort: "m",
      backend: "claude",
      deadlineMs: 3_600_000,
    });
    if (!begun.ok || !begun.value.begun) throw new Error("cannot set up the leases");
    await ledger.value.running(begun.value.leaseId, {
      pid,
      detached: false,
      logBase: join(dir, "logs", `${i}-bench`),
    });
  }
  ledger.value.close();
  const writer = createSqliteWriter(db);
  const domains = ["auto", "cog", "infra", "eval", "mem"];
  for (let i = 0; i < REFLECTIONS; i++) {
    await writer.write({
      gapId: `${domains[i % 5].toUpperCase()}-${i}`,
      effort: ["s", "m", "l", "xl"][i % 4],
      domain: domains[i % 5],
      outcome: i % 3 === 0 ? "killed" : "shipped",
      durationS: 60 + (i * 37) % 7200,
      parallelSiblings: 3,
      notes: `exit code 0\nbackend=${["claude", "chump-local", "custom:x"][i % 3]}`,
    });
  }
  writer.close();
  return db;
}

/** `serve` on `db`, as the task starts it; its address once it listens, and its process. */
export async function serve(
  db: string,
  extra: string[] = [],
): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      ...taskMainArgs(),
      "serve",
      "--db",
      db,
      "--port",
      "0",
      "--limit",
      String(AGENTS),
      ...extra,
    ],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const first = await firstLine(child.stdout);
  const url = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(first)?.[1];
  if (!url) throw new Error(`serve did not say where it listens: ${first}`);
  return {
    url,
    pid: child.pid,
    async stop() {
      child.kill("SIGTERM");
      await child.stdout.cancel();
      await child.status;
    },
  };
}

/** Load `url` afresh; ms from navigation start to the first fleet on screen. */
async function firstPaint(page: Page, url: string): Promise<number> {
  await page.goto("about:blank");
  await page.goto(url);
  await page.waitForFunction(
    `performance.getEntriesByName("chump-fleet-painted").length > 0`,
    { timeout: 30_000 },
  );
  return await page.evaluate(
    `performance.getEntriesByName("chump-fleet-painted")[0].startTime`,
  ) as number;
}

/** The dashboard rows. */
export async function benchDashboard(tmp: string): Promise<Row[]> {
  const dir = await Deno.makeTempDir({ dir: tmp, prefix: "dashboard-" });
  const agents = startAgents(dir, AGENTS);
  const browser = await openBrowser(1280, 900);
  const full = await serve(await fleetDb(dir, agents));
  const empty = await serve(join(dir, "empty", "chump_memory.db"));
  try {
    const { page } = browser;
    const rows = await page.goto(full.url).then(() =>
      page.waitForFunction(`document.querySelectorAll("#leases tr").length === ${AGENTS}`)
    );
    if (!rows) throw new Error("the page did not show the fleet");
    const rounds = await alternate(
      ROUNDS,
      () => firstPaint(page, empty.url),
      () => firstPaint(page, full.url),
    );
    const paint = median(rounds.candidate);
    const ratio = median(rounds.ratios);
    return [
      {
        section: "dashboard",
        measure:
          `first paint of the fleet, ${AGENTS} live agents + ${REFLECTIONS} reflections (${ROUNDS} rounds)`,
        result: `${ms(paint)} (empty DB: ${ms(median(rounds.baseline))}, ${ratio.toFixed(2)}x)`,
        spread: `${ms(Math.min(...rounds.candidate))}-${ms(Math.max(...rounds.candidate))}`,
        target: `< ${TARGET_MS} ms`,
        met: paint < TARGET_MS,
        fix: "send the first status before the per-agent log reads (they are most of it)",
      },
    ];
  } finally {
    await full.stop();
    await empty.stop();
    await browser[Symbol.asyncDispose]();
    killGroups(agents);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
