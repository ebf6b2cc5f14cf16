/**
 * Stderr flood: the real CLI (`main.ts` under the task's permissions)
 * watching one agent that writes 1 GB to stderr: the orchestrator's peak
 * RSS (target < 100 MB) against the same run with an agent that writes
 * nothing, and the rate it drained the flood at.
 *
 * @module
 */
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { backlogOf, scratchRepo } from "../tests/_e2e.ts";
import { mainArgs, ROOT, type Row, watchPeakRss } from "./_util.ts";

const MB = 1024;

async function watchedRun(agentMb: number): Promise<{ peakMb: number; notes: string }> {
  await using s = await scratchRepo(backlogOf([["F-1"]]));
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
  const quiet = await watchedRun(0);
  const flood = await watchedRun(MB);
  const m = /flood wrote (\d+) bytes in (\d+) ms/.exec(flood.notes);
  const rate = m ? (Number(m[1]) / 1e6) / (Number(m[2]) / 1000) : NaN;
  return [
    {
      section: "stderr flood",
      measure: "orchestrator peak RSS, agent writing nothing (baseline)",
      result: `${quiet.peakMb.toFixed(0)} MB`,
      target: "",
    },
    {
      section: "stderr flood",
      measure: `orchestrator peak RSS, agent writing ${MB} MB to stderr`,
      result: `${flood.peakMb.toFixed(0)} MB`,
      target: "< 100 MB",
      met: flood.peakMb < 100,
      fix: "smaller read buffers; the tail itself is bounded (64 lines)",
    },
    {
      section: "stderr flood",
      measure: "drain rate (agent's write time, the orchestrator reading every byte)",
      result: m ? `${(rate / 1000).toFixed(2)} GB/s` : `unknown (${flood.notes.slice(0, 80)})`,
      target: "",
    },
  ];
}
