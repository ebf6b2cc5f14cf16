/**
 * Following a structured agent session: 50 MB of Claude Code stream-json
 * lines (assistant turns with usage, and the tool results that make most of
 * a real session's bytes) followed from the agent's stdout log into its
 * session meter, against the same bytes followed as plain stderr (the
 * WARN/ERROR tail), in alternating rounds, in this process: the CPU of the
 * follower (process/follow.ts) reading the whole file. Target: at most 1.2x.
 * Also printed: what the meter read (tokens and turns), so the figure is of
 * a follow that did its job.
 *
 * @module
 */
import { join } from "node:path";
import { followLogs } from "../lib/process/follow.ts";
import { agentFiles } from "../lib/process/waiter.ts";
import { createStderrTail } from "../lib/process/stderr_tail.ts";
import { createSessionMeter, type SessionMeter } from "../lib/cost/session.ts";
import { transcriptWriter } from "../lib/cost/transcript.ts";
import { alternate, cpuMs, ratioRow, type Row } from "./_util.ts";

const MB = 50;
const ROUNDS = 7;
const MAX_RATIO = 1.2;

/** A session of about `mb` megabytes: turns, each with a tool result of a few KB (a file read). */
function sessionText(mb: number): string {
  const t = transcriptWriter("claude-stream", "claude-sonnet-4-5-20250929", crypto.randomUUID())!;
  const parts = [...t.start()];
  const file = Array.from(
    { length: 60 },
    (_, i) => `    ${i + 1}\tconst value${i} = compute(${i}); // the "usage" of a helper`,
  ).join("\n");
  let size = 0;
  let n = 0;
  while (size < mb * 1e6) {
    n++;
    const turn = t.turn(`Reading src/module${n}.ts`, {
      input: 5,
      output: 120,
      cacheRead: 20_000 + n,
      cacheWrite: 300,
    });
    const result = JSON.stringify({
      type: "user",
      message: {
        role: "user",
        content: [{ tool_use_id: `toolu_${n}`, type: "tool_result", content: file }],
      },
      parent_tool_use_id: null,
      session_id: "s",
    });
    parts.push(...turn, result);
    size += turn[0].length + result.length + 2;
  }
  parts.push(...t.end({ text: "412", subtype: "success", costUsd: 12.5 }));
  return parts.join("\n") + "\n";
}

/** CPU ms of following `files` to their end (stderr into a tail, stdout into `session`). */
async function followCpu(base: string, session?: SessionMeter): Promise<number> {
  const files = agentFiles(base, 1 << 30); // no trimming: every round reads the same file
  const t0 = cpuMs();
  const follower = followLogs(files, createStderrTail(), Date.now(), session);
  await follower.stop();
  return cpuMs() - t0;
}

/** The session-following rows. */
export async function benchSession(tmp: string): Promise<Row[]> {
  const text = sessionText(MB);
  const bytes = new TextEncoder().encode(text);
  // The same bytes: as an agent's stderr (plain), and as its stdout (a session).
  const plain = join(tmp, "plain");
  const structured = join(tmp, "structured");
  await Deno.writeFile(agentFiles(plain).err, bytes);
  await Deno.writeFile(agentFiles(structured).out, bytes);
  let read = "";
  // One follow of each first, not counted: what is measured is the reading, not the compiling.
  await followCpu(plain);
  await followCpu(structured, createSessionMeter("claude-stream"));
  const r = await alternate(
    ROUNDS,
    () => followCpu(plain),
    async () => {
      const meter = createSessionMeter("claude-stream")!;
      const cpu = await followCpu(structured, meter);
      const u = meter.usage();
      read = `${u.turns} turns, ${u.skipped} lines skipped`;
      return cpu;
    },
  );
  return [ratioRow(
    "session",
    `follow ${(bytes.length / 1e6).toFixed(0)} MB of stream-json (CPU; it read ${read}) vs ` +
      "the same bytes as stderr",
    r,
    MAX_RATIO,
    "parse only the lines that can change the figures; one handle, one buffer",
  )];
}
