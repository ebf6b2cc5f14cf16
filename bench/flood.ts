/**
 * Stderr flood: the real CLI (`main.ts` with the permissions of its
 * relaunch) watching one agent that writes 512 MB to stderr, against the
 * same run with an agent that writes nothing, in alternating rounds: the
 * orchestrator's peak RSS (target: at most 1.5x the quiet run's) while it
 * tails the agent's stderr log file (the agent writes to the file through
 * its waiter, never to a pipe of ours), and the rate of the flood.
 *
 * @module
 */
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import {
  alternate,
  backlogOf,
  GIT_ID,
  mainArgs,
  ratioRow,
  ROOT,
  type Row,
  scratchRepo,
  watchPeakRss,
} from "./_util.ts";

const MB = 512;
const ROUNDS = 3;

async function watchedRun(agentMb: number): Promise<{ peakMb: number; notes: string }> {
  await using s = await scratchRepo(backlogOf(["F-1"]), "chump-bench-");
  const agent = [
    Deno.execPath(),
    "run",
    "--quiet",
    join(ROOT, "bench", "flood_agent.ts"),
    `${agentMb}`,
  ]
    .map((w) => `'${w}'`).join(" ");
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      ...mainArgs([join(s.repo, ".claude"), join(s.repo, "sessions"), "/tmp"]),
      "--repo-root",
      s.repo,
      "--no-dry-run",
      "--watch",
      "--pr-provider",
      "git",
      "--tick",
      "200ms",
      "--agent-cmd",
      agent,
    ],
    env: GIT_ID,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const rss = watchPeakRss(child.pid, 20);
  await child.status;
  const peakMb = await rss.stop();
  const db = new DatabaseSync(s.db, { readOnly: true });
  const row = db.prepare("SELECT hypothesis FROM chump_reflections").get() as
    | { hypothesis: string }
    | undefined;
  db.close();
  return { peakMb, notes: row?.hypothesis ?? "" };
}

/** The flood rows. */
export async function benchFlood(): Promise<Row[]> {
  let notes = "";
  const r = await alternate(
    ROUNDS,
    async () => (await watchedRun(0)).peakMb,
    async () => {
      const flood = await watchedRun(MB);
      notes = flood.notes;
      return flood.peakMb;
    },
  );
  const m = /flood wrote (\d+) bytes in (\d+) ms/.exec(notes);
  const rate = m ? (Number(m[1]) / 1e6) / (Number(m[2]) / 1000) : NaN;
  return [
    ratioRow(
      "stderr flood",
      `orchestrator peak RSS: agent writing ${MB} MB to stderr / agent writing nothing`,
      r,
      1.5,
      "smaller read buffers; the tail itself is bounded (64 lines)",
      (x) => `${x.toFixed(0)} MB`,
    ),
    {
      section: "stderr flood",
      measure:
        "flood rate (the agent's own write time; it writes to its log file, which the orchestrator tails to the end), last round",
      result: m ? `${(rate / 1000).toFixed(2)} GB/s` : `unknown (${notes.slice(0, 80)})`,
      target: "",
    },
  ];
}
