/**
 * Lock contention plumbing: another process holding the DB's write lock
 * until told to let go, and a wait for an orchestrator to be blocked on it.
 *
 * @module
 */
import { ok } from "node:assert/strict";
import { dirname } from "node:path";
import { waitFor } from "../testkit/process.ts";

/** A write lock held by another process. */
export interface HeldLock {
  /** Commit, let the holder exit, and check that it exited cleanly. */
  release(): Promise<void>;
}

/**
 * Another process takes the DB's write lock (`BEGIN IMMEDIATE`; with WAL,
 * readers go on) and holds it until `release` is called: no timing involved.
 * Resolves once the lock is held.
 */
export async function holdLock(dbPath: string): Promise<HeldLock> {
  const code = `import { DatabaseSync } from "node:sqlite";
const db = new DatabaseSync(${JSON.stringify(dbPath)});
db.exec("PRAGMA busy_timeout = 10000");
db.exec("PRAGMA journal_mode = WAL");
db.exec("BEGIN IMMEDIATE");
console.log("locked");
await Deno.stdin.read(new Uint8Array(1));
db.exec("COMMIT");
db.close();`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    cwd: dirname(dbPath),
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("locked\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
  }
  const stdin = child.stdin.getWriter();
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    await stdin.write(new Uint8Array([10])).catch(() => {});
    await stdin.close().catch(() => {});
    while (!(await reader.read()).done) { /* drain */ }
    const status = await child.status;
    ok(status.success, "the lock holder exited cleanly");
  };
  if (!out.includes("locked\n")) {
    await release();
    throw new Error(`the lock holder did not take the lock: ${out}`);
  }
  return { release };
}

/** One row of `ps`: pid, parent, wait channel, command line. */
interface PsRow {
  pid: number;
  ppid: number;
  wchan: string;
  args: string;
}

/** Every process, with its wait channel (Linux `ps`; tests may not read /proc directly). */
async function ps(): Promise<PsRow[]> {
  const out = await new Deno.Command("ps", {
    args: ["-eo", "pid=,ppid=,wchan:40=,args="],
    stdout: "piped",
    stderr: "null",
  }).output();
  return new TextDecoder().decode(out.stdout).split("\n").flatMap((line) => {
    const m = /^\s*(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/.exec(line);
    return m ? [{ pid: Number(m[1]), ppid: Number(m[2]), wchan: m[3], args: m[4] }] : [];
  });
}

/** Whether `ps` shows wait channels here (Linux). */
export const CAN_SEE_WAITS = Deno.build.os === "linux" &&
  (await ps().catch(() => [])).some((r) => r.pid === Deno.pid && r.wchan !== "-");

/**
 * Resolves once an orchestrator started under `root` (the task's first process),
 * or the process under it whose command line `isIt` picks, is blocked on a DB
 * lock: its main thread seen sleeping in SQLite's busy handler (a `nanosleep`;
 * the event loop itself waits in epoll). Rejects after 60 s.
 */
export async function blockedOnLock(
  root: number,
  isIt = (args: string) => /main\.ts( |$)/.test(args) && !args.includes(" demo-agent"),
): Promise<void> {
  await waitFor(
    async () =>
      descendants(await ps(), root).some((r) => isIt(r.args) && r.wchan.includes("nanosleep")),
    { everyMs: 10, what: `a process under ${root} waiting on a DB lock` },
  );
}

/** Every process descending from `root`. */
function descendants(rows: PsRow[], root: number): PsRow[] {
  const found: PsRow[] = [];
  const todo = [root];
  while (todo.length > 0) {
    const parent = todo.pop()!;
    for (const r of rows) {
      if (r.ppid !== parent) continue;
      found.push(r);
      todo.push(r.pid);
    }
  }
  return found;
}
