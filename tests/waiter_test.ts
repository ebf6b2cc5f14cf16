/**
 * The per-agent waiter and exact process identity (process/waiter.ts,
 * process/table.ts, process/adopted.ts), with real processes.
 */
import { deepEqual, equal, match, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { realSpawner } from "../lib/process/spawn.ts";
import { agentFiles, readStatus } from "../lib/process/waiter.ts";
import { groupOwner, parseProc, Processes, readTable } from "../lib/process/table.ts";
import { AdoptedAgents } from "../lib/process/adopted.ts";

const identify = (pid: number, fallback: string) => new Processes().identify(pid, fallback);
const adoptedProcess = (a: Parameters<AdoptedAgents["adopt"]>[0]) =>
  new AdoptedAgents(new Processes()).adopt(a);
import { EXIT_UNRECORDED } from "../lib/process/spawn.ts";
import { scratch } from "./_helpers.ts";
import { waitFor } from "../testkit/process.ts";

Deno.test("parseProc reads pid, group, state and start ticks, whatever the command name holds", () => {
  const text = [
    "0123abcd-aaaa-bbbb",
    "cpu  1 2 3",
    "btime 1700000000",
    "42 (a) b (c)) S 1 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 12345 0 0",
    "43 (zombie) Z 42 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 12399 0 0",
  ].join("\n");
  const rows = parseProc(text)!;
  equal(rows.get(42)!.identity, "proc:0123abcd-aaaa-bbbb:12345");
  equal(rows.get(42)!.pgid, 42);
  equal(rows.get(42)!.zombie, false);
  equal(rows.get(42)!.start, 1700000000 + 123);
  equal(rows.get(43)!.zombie, true);
  equal(parseProc("not a boot id\n"), undefined);
  // With /proc/uptime, a start is now minus the uptime plus the ticks (btime drifts from the
  // wall clock: seconds, in containers).
  const withUptime = [text.split("\n").slice(0, 3), "1000.50 1900.00", text.split("\n")[3]]
    .flat().join("\n");
  equal(parseProc(withUptime, 1_700_002_000_500)!.get(42)!.start, 1_700_001_000 + 123);
});

Deno.test("identity on Linux is exact (start ticks + boot id): another start or another boot is another process", async () => {
  if (Deno.build.os !== "linux") throw new Error("this test reads /proc: Linux only");
  const mine = await identify(Deno.pid, "0");
  match(mine, /^proc:[0-9a-f-]+:\d+$/);
  const table = await readTable();
  equal(table.alive(Deno.pid, mine), true);
  const [, boot, ticks] = mine.split(":");
  equal(table.alive(Deno.pid, `proc:${boot}:${Number(ticks) + 1}`), false, "one tick off");
  equal(table.alive(Deno.pid, `proc:00000000-0000-0000-0000-000000000000:${ticks}`), false);
  // Leases of older versions carry epoch seconds: compared within the tolerance.
  const child = new Deno.Command("sleep", { args: ["30"] }).spawn();
  try {
    const epoch = Math.floor(Date.now() / 1000);
    const now = await readTable();
    equal(now.alive(child.pid, String(epoch)), true);
    equal(now.alive(child.pid, String(epoch - 3600)), false);
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
});

Deno.test("a clock step never makes a live process look dead (no wall clock in the identity)", async () => {
  if (Deno.build.os !== "linux") throw new Error("this test reads /proc: Linux only");
  const mine = await identify(Deno.pid, "0");
  const real = Date.now;
  try {
    Date.now = () => real() + 86_400_000; // a day ahead
    equal((await readTable()).alive(Deno.pid, mine), true);
    Date.now = () => real() - 86_400_000; // a day behind
    equal((await readTable()).alive(Deno.pid, mine), true);
  } finally {
    Date.now = real;
  }
});

Deno.test("groupOwner: a recycled pid (same number, another identity) is nobody's to signal", async () => {
  const child = new Deno.Command("sleep", { args: ["30"], detached: true }).spawn();
  try {
    const table = await readTable();
    const id = table.identityOf(child.pid)!;
    equal(groupOwner(table, child.pid, id), "agent");
    equal(groupOwner(table, child.pid, `${id}9`), "none");
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
});

Deno.test("the waiter writes the agent's output and exit status to files; gap data never reaches a shell", async () => {
  await using dir = await scratch();
  const files = agentFiles(join(dir.path, "logs", "1-x"));
  const marker = join(dir.path, "pwned");
  const started = realSpawner.spawn({
    argv: [
      "sh",
      "-c",
      'echo "out:$1"; echo "ERROR: $1" >&2; read line; echo "in:$line"; exit 7',
      "sh",
      `$(touch ${marker})`,
    ],
    cwd: dir.path,
    env: {},
    stdin: "the prompt\n",
    files,
  });
  assert(started.ok, started.ok ? "" : started.error);
  equal(await started.value.exited, 7);
  equal(await readStatus(files), 7);
  equal(await Deno.readTextFile(files.out), `out:$(touch ${marker})\nin:the prompt\n`);
  deepEqual(started.value.tail.lines(), [`ERROR: $(touch ${marker})`]);
  equal(await Deno.stat(marker).then(() => true, () => false), false, "nothing was run by a shell");
});

Deno.test("a SIGTERM to the agent's group ends the agent; its waiter survives it and records 143", async () => {
  await using dir = await scratch();
  const files = agentFiles(join(dir.path, "2-y"));
  const started = realSpawner.spawn({ argv: ["sleep", "60"], cwd: dir.path, env: {}, files });
  assert(started.ok);
  // The waiter leads the group; wait until the agent runs in it.
  await waitFor(async () => {
    const out = await new Deno.Command("pgrep", { args: ["-g", String(started.value.pgid)] })
      .output();
    return new TextDecoder().decode(out.stdout).trim().split("\n").length >= 2;
  }, { everyMs: 10, timeoutMs: 5000 }).catch(() => {});
  Deno.kill(-started.value.pgid, "SIGTERM");
  equal(await started.value.exited, 143);
  equal(await readStatus(files), 143);
});

Deno.test("an adopted agent's end is learned from its status file, or is 'not recorded' when its waiter died first", async () => {
  await using dir = await scratch();
  // Recorded: a finished waiter's status file.
  const files = agentFiles(join(dir.path, "3-z"));
  const started = realSpawner.spawn({
    argv: ["sh", "-c", "echo 'WARN: adopted' >&2; exit 4"],
    cwd: dir.path,
    env: {},
    files,
  });
  assert(started.ok);
  await started.value.exited;
  const adopted = adoptedProcess({
    pid: started.value.pid,
    identity: "proc:gone:1",
    startedMs: Date.now() - 1000,
    files,
  });
  equal(await adopted.exited, 4);
  deepEqual(adopted.tail.lines(), ["WARN: adopted"]);
  // Not recorded: no status file, and the pid is not that process any more.
  const lost = adoptedProcess({
    pid: Deno.pid,
    identity: "proc:another-boot:1",
    startedMs: Date.now(),
    files: agentFiles(join(dir.path, "4-none")),
  });
  equal(await lost.exited, EXIT_UNRECORDED);
});
