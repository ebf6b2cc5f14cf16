/**
 * Ctrl-C with 8 live agents: the orchestrator started through the `dispatch`
 * task's launcher in a process group of its own (as in a terminal), SIGINT
 * to the group once all 8 run: time to exit, agent processes left (by
 * environment marker), reflections written.
 *
 * @module
 */
import {
  backlogOf,
  orchestrateInBackground,
  pidsWithEnv,
  reflectionRows,
  scratchRepo,
} from "../tests/_e2e.ts";
import { ms, type Row } from "./_util.ts";

const AGENTS = 8;

/** The interrupt rows. */
export async function benchInterrupt(): Promise<Row[]> {
  const ids = Array.from({ length: AGENTS }, (_, i) => [`I-HANG-${i + 1}`] as [string]);
  await using s = await scratchRepo(backlogOf(ids));
  const mark = crypto.randomUUID();
  const bg = orchestrateInBackground(
    s,
    ["--max-parallel", String(AGENTS), "--kill-grace", "30s"],
    { CHUMP_TEST_MARK: mark },
  );
  await bg.waitFor(/^DISPATCHED: /, AGENTS);
  await new Promise((r) => setTimeout(r, 1000));
  const t0 = performance.now();
  bg.signal("SIGINT");
  const ran = await bg.finished();
  const took = performance.now() - t0;
  const left = await pidsWithEnv(`CHUMP_TEST_MARK=${mark}`);
  for (const pid of left) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
  const rows = [...reflectionRows(s.db).values()];
  const interrupted = rows.filter((r) => / notes=interrupted by SIGINT$/.test(r.directive)).length;
  return [
    {
      section: "interrupt",
      measure: `SIGINT with ${AGENTS} live agents: time to exit (code ${ran.code})`,
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
