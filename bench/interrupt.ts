/**
 * Ctrl-C with 8 live agents: the orchestrator started as the `dispatch` task
 * starts it (main.ts with no write, relaunching itself with its write paths)
 * in a process group of its own, as in a terminal; SIGINT to the group once
 * all 8 run: time to exit (no target: it is a wait for the agents to end),
 * agent processes left (by environment marker) and reflections written.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { selfCommand } from "../lib/process/self_command.ts";
import {
  backlogOf,
  GIT_ID,
  ms,
  pidsWithEnv,
  ROOT,
  type Row,
  scratchRepo,
  taskMainArgs,
} from "./_util.ts";

const AGENTS = 8;

/** Directives of the reflections in `db`. */
function directives(db: string): string[] {
  const conn = new DatabaseSync(db, { readOnly: true });
  try {
    return (conn.prepare("SELECT directive FROM chump_improvement_targets").all() as {
      directive: string;
    }[]).map((r) => r.directive);
  } finally {
    conn.close();
  }
}

/** Resolves once `count` lines of the stream so far match `pattern` (rejects after 60 s). */
async function waitForLines(
  lines: () => string,
  pattern: RegExp,
  count: number,
): Promise<void> {
  const deadline = performance.now() + 60_000;
  while (lines().split("\n").filter((l) => pattern.test(l)).length < count) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${pattern}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The interrupt rows. */
export async function benchInterrupt(): Promise<Row[]> {
  const ids = Array.from({ length: AGENTS }, (_, i) => `I-HANG-${i + 1}`);
  await using s = await scratchRepo(backlogOf(ids), "chump-bench-");
  const mark = crypto.randomUUID();
  const agent = selfCommand("demo-agent").map((w) => `'${w.replaceAll("'", `'"'"'`)}'`).join(" ");
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      ...taskMainArgs(),
      "--repo-root",
      s.repo,
      "--no-dry-run",
      "--watch",
      "--pr-provider",
      "git",
      "--tick",
      "100ms",
      "--kill-grace",
      "30s",
      "--max-parallel",
      String(AGENTS),
      "--agent-cmd",
      agent,
    ],
    cwd: ROOT,
    env: { NO_COLOR: "1", CHUMP_BENCH_MARK: mark, ...GIT_ID },
    stdin: "null",
    stdout: "piped",
    stderr: "null",
    detached: true,
  }).spawn();
  let out = "";
  const pumped = (async () => {
    for await (const t of child.stdout.pipeThrough(new TextDecoderStream())) out += t;
  })();
  try {
    await waitForLines(() => out, /^DISPATCHED: /, AGENTS);
  } catch (e) {
    Deno.kill(-child.pid, "SIGKILL");
    throw e;
  }
  const t0 = performance.now();
  Deno.kill(-child.pid, "SIGINT");
  const status = await child.status;
  const took = performance.now() - t0;
  await pumped;
  const left = await pidsWithEnv(`CHUMP_BENCH_MARK=${mark}`);
  for (const pid of left) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
  const interrupted =
    directives(s.db).filter((d) => / notes=interrupted by SIGINT$/.test(d)).length;
  return [
    {
      section: "interrupt",
      measure: `SIGINT with ${AGENTS} live agents: time to exit (code ${status.code})`,
      result: ms(took),
      target: "",
    },
    {
      section: "interrupt",
      measure: "agent processes left after the exit",
      result: String(left.length),
      target: "0",
      met: left.length === 0,
      fix: "",
    },
    {
      section: "interrupt",
      measure: "killed reflections 'interrupted by SIGINT'",
      result: String(interrupted),
      target: String(AGENTS),
      met: interrupted === AGENTS,
      fix: "",
    },
  ];
}
