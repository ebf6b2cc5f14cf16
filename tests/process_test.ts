import { deepEqual, equal, match, ok as assert } from "node:assert/strict";
import { type AgentProcess, realSpawner, type SpawnRequest } from "../lib/process/spawn.ts";
import { groupAlive, sameProcessAlive, waitFor } from "../testkit/process.ts";
import { signalGroup, type SignalSent, terminate, terminateGroup } from "../lib/process/signal.ts";
import { isOfDispatch, parseMarks } from "../lib/process/escaped.ts";

/** The process group of `pid` as `ps` reports it, or undefined when it is not running (zombies are not). */
function pgidOf(pid: number): number | undefined {
  const out = new Deno.Command("ps", {
    args: ["-o", "pgid=,stat=", "-p", String(pid)],
    stdout: "piped",
    stderr: "null",
  }).outputSync();
  const [pgid, stat] = new TextDecoder().decode(out.stdout).trim().split(/\s+/);
  return out.success && pgid && !stat?.startsWith("Z") ? Number(pgid) : undefined;
}

/** Start an agent, which must start. */
function start(argv: string[], more: Partial<SpawnRequest> = {}): AgentProcess {
  const r = realSpawner.spawn({ argv, cwd: Deno.cwd(), env: {}, ...more });
  if (!r.ok) throw new Error(`spawn failed: ${r.error}`);
  return r.value;
}

/** Run `body` with a started agent; its whole group is ended and reaped afterwards, whatever happens. */
async function withAgent(
  argv: string[],
  more: Partial<SpawnRequest>,
  body: (agent: AgentProcess) => Promise<void>,
): Promise<void> {
  const agent = start(argv, more);
  try {
    await body(agent);
  } finally {
    await terminateGroup(agent.pgid, { graceMs: 0 });
    await agent.exited;
  }
}

/** Poll until `condition` holds; fail (instead of hanging) after 20 s. */
async function waitUntil(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  await waitFor(condition, { timeoutMs: 20_000, what });
}

/** The tail line starting with `prefix`, once the agent printed it. */
async function tailLine(agent: AgentProcess, prefix: string): Promise<string> {
  let found: string | undefined;
  await waitUntil(() => {
    found = agent.tail.lines().find((l) => l.startsWith(prefix));
    return found !== undefined;
  }, `stderr line "${prefix}..."`);
  return found!;
}

/** A Deno one-liner agent (deno eval grants itself every permission). */
function denoAgent(code: string): string[] {
  return [Deno.execPath(), "eval", code];
}

Deno.test("a spawned agent leads its own process group (pgid == pid)", async () => {
  await withAgent(["sleep", "30"], {}, async (agent) => {
    equal(agent.pgid, agent.pid);
    equal(pgidOf(agent.pid), agent.pid, "ps reports the agent as its own group's leader");
    assert(await groupAlive(agent.pgid));
  });
});

Deno.test("the environment is added to, the cwd is set and arguments reach the agent verbatim (no shell)", async () => {
  const dir = Deno.realPathSync(await Deno.makeTempDir({ prefix: "chump-process-" }));
  try {
    const argv = [
      "sh",
      "-c",
      'echo "WARN $CHUMP_GAP_ID|$(pwd)|$1|${PATH:+path}" >&2',
      "sh",
      "$(id) *",
    ];
    await withAgent(argv, { cwd: dir, env: { CHUMP_GAP_ID: "AUTO-013" } }, async (agent) => {
      equal(await agent.exited, 0);
      deepEqual(agent.tail.lines(), [`WARN AUTO-013|${dir}|$(id) *|path`]);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the stdin prompt is delivered to an agent that reads it, then stdin is closed", async () => {
  const prompt = "You are working on gap AUTO-013.\nReply with the PR number only.\n";
  const code = `const t = await new Response(Deno.stdin.readable).text();
    console.error("WARN got " + t.length + " " + JSON.stringify(t));`;
  await withAgent(denoAgent(code), { stdin: prompt }, async (agent) => {
    equal(await agent.exited, 0);
    deepEqual(agent.tail.lines(), [`WARN got ${prompt.length} ${JSON.stringify(prompt)}`]);
  });
});

Deno.test("an agent that never reads a 1 MB stdin prompt blocks nothing", async () => {
  const prompt = "p".repeat(1024 * 1024);
  const argv = ["sh", "-c", 'echo "WARN ignoring stdin" >&2; exec sleep 30'];
  await withAgent(argv, { stdin: prompt }, async (agent) => {
    // spawn returned; the event loop still runs and stderr is still read
    equal(await tailLine(agent, "WARN"), "WARN ignoring stdin");
    equal(agent.exitCode, null);
    const ended = await terminateGroup(agent.pgid, { graceMs: 5_000 });
    deepEqual(ended, { escalated: false, gone: true });
    equal(await agent.exited, 143, "128 + SIGTERM");
  });
  // and one that exits at once without reading
  await withAgent(["sh", "-c", "exit 4"], { stdin: prompt }, async (agent) => {
    equal(await agent.exited, 4);
  });
});

Deno.test("a non-zero exit code is reported, exitCode is null until then", async () => {
  await withAgent(["sh", "-c", "echo 'ERROR giving up' >&2; exit 3"], {}, async (agent) => {
    equal(agent.exitCode, null);
    equal(await agent.exited, 3);
    equal(agent.exitCode, 3);
    deepEqual(agent.tail.lines(), ["ERROR giving up"]);
  });
});

Deno.test("spawning a missing command is a failure value, never a throw", async () => {
  const missing = realSpawner.spawn({ argv: ["chump-no-such-agent"], cwd: Deno.cwd(), env: {} });
  deepEqual(missing, { ok: false, error: "agent command 'chump-no-such-agent' not found on PATH" });

  const badPath = realSpawner.spawn({ argv: ["/nonexistent/agent"], cwd: Deno.cwd(), env: {} });
  deepEqual(badPath, { ok: false, error: "agent command '/nonexistent/agent' not found" });

  const badCwd = realSpawner.spawn({ argv: ["sh"], cwd: "/nonexistent/worktree", env: {} });
  assert(!badCwd.ok);
  match(badCwd.error, /not found: \/nonexistent\/worktree$/);

  const plainFile = await Deno.makeTempFile({ prefix: "chump-not-executable-" });
  try {
    await Deno.chmod(plainFile, 0o644);
    const notExecutable = realSpawner.spawn({ argv: [plainFile], cwd: Deno.cwd(), env: {} });
    assert(!notExecutable.ok);
    match(notExecutable.error, /permission denied/);
  } finally {
    await Deno.remove(plainFile);
  }

  deepEqual(realSpawner.spawn({ argv: [], cwd: Deno.cwd(), env: {} }), {
    ok: false,
    error: "agent command is empty",
  });
});

Deno.test("terminateGroup ends the agent and the grandchild it started", async () => {
  const argv = ["sh", "-c", 'sleep 300 & echo "WARN grandchild $!" >&2; sleep 300'];
  await withAgent(argv, {}, async (agent) => {
    const grandchild = Number((await tailLine(agent, "WARN grandchild")).split(" ")[2]);
    assert(grandchild > 0 && grandchild !== agent.pid);
    equal(pgidOf(grandchild), agent.pgid, "the grandchild is in the agent's group");
    assert(await sameProcessAlive(grandchild));

    const ended = await terminateGroup(agent.pgid, { graceMs: 10_000 });
    deepEqual(ended, { escalated: false, gone: true });
    equal(await groupAlive(agent.pgid), false);
    equal(await sameProcessAlive(agent.pid), false);
    equal(await sameProcessAlive(grandchild), false);
    equal(pgidOf(grandchild), undefined, "ps no longer lists the grandchild");
    equal(await agent.exited, 143);
  });
});

Deno.test("an agent that ignores SIGTERM is SIGKILLed after the grace", async () => {
  const argv = ["sh", "-c", "trap '' TERM; echo 'WARN ready' >&2; sleep 300"];
  await withAgent(argv, {}, async (agent) => {
    await tailLine(agent, "WARN ready");
    const ended = await terminateGroup(agent.pgid, { graceMs: 200 });
    deepEqual(ended, { escalated: true, gone: true });
    equal(await groupAlive(agent.pgid), false);
    equal(await agent.exited, 137, "128 + SIGKILL");
  });
});

Deno.test("aborting skipGrace cuts the grace short and escalates to SIGKILL", async () => {
  const argv = ["sh", "-c", "trap '' TERM; echo 'WARN ready' >&2; sleep 300"];
  await withAgent(argv, {}, async (agent) => {
    await tailLine(agent, "WARN ready");
    const skip = new AbortController();
    const timer = setTimeout(() => skip.abort(), 100);
    try {
      // A 10-minute grace: finishing at all shows the abort cut it short.
      const ended = await terminateGroup(agent.pgid, { graceMs: 600_000, skipGrace: skip.signal });
      deepEqual(ended, { escalated: true, gone: true });
    } finally {
      clearTimeout(timer);
    }
    equal(await agent.exited, 137);
  });
});

Deno.test("terminateGroup of a group that is gone already is a quiet success", async () => {
  const agent = start(["sh", "-c", "exit 0"]);
  equal(await agent.exited, 0);
  await waitUntil(async () => !(await groupAlive(agent.pgid)), "the group to empty");
  deepEqual(await terminateGroup(agent.pgid, { graceMs: 1_000 }), { escalated: false, gone: true });
});

Deno.test("terminateGroup refuses pgid 0, 1, negative ones and the orchestrator's own group", async () => {
  for (const pgid of [0, 1, -5, 1.5, Deno.pid]) {
    deepEqual(await terminateGroup(pgid, { graceMs: 0 }), {
      escalated: false,
      gone: false,
      reason: `refusing to signal process group ${pgid}`,
    });
  }
});

Deno.test("under a narrow --allow-run (sleep, ps, kill) agents are ended; a command not allowed is refused in one line", async () => {
  const script = await Deno.makeTempFile({ prefix: "chump-restricted-", suffix: ".ts" });
  let pid: number | undefined;
  try {
    await Deno.writeTextFile(
      script,
      `import { realSpawner } from ${
        JSON.stringify(new URL("../lib/process/spawn.ts", import.meta.url).href)
      };
      import { terminateGroup } from ${
        JSON.stringify(new URL("../lib/process/signal.ts", import.meta.url).href)
      };
      import { Processes } from ${
        JSON.stringify(new URL("../lib/process/table.ts", import.meta.url).href)
      };
      const groupAlive = (pgid) => new Processes().groupAlive(pgid);
      const denied = realSpawner.spawn({ argv: ["ls"], cwd: "/", env: {} });
      const r = realSpawner.spawn({ argv: ["sleep", "30"], cwd: "/", env: {} });
      if (!r.ok) throw new Error(r.error);
      console.log(JSON.stringify({ pid: r.value.pid }));
      const ended = await terminateGroup(r.value.pgid, { graceMs: 0 });
      console.log(JSON.stringify({ denied, ended, alive: await groupAlive(r.value.pgid) }));
      Deno.exit(0);`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        "--no-prompt",
        "--no-config",
        "--allow-read",
        "--allow-run=sleep,ps,kill",
        script,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const [first, second] = new TextDecoder().decode(out.stdout).trim().split("\n");
    pid = JSON.parse(first).pid;
    equal(out.code, 0, new TextDecoder().decode(out.stderr));
    deepEqual(JSON.parse(second), {
      denied: { ok: false, error: "not allowed to run 'ls': grant it with --allow-run=ls" },
      ended: { escalated: false, gone: true },
      alive: false,
    });
  } finally {
    if (pid !== undefined) {
      await terminateGroup(pid, { graceMs: 1_000 });
    }
    await Deno.remove(script);
  }
});

Deno.test("exited resolves even when a grandchild keeps the output pipes open", async () => {
  await withAgent(["sh", "-c", "sleep 300 & exit 5"], {}, async (agent) => {
    equal(await agent.exited, 5);
    assert(await groupAlive(agent.pgid), "the grandchild still runs until the group is ended");
  });
});

Deno.test("sameProcessAlive is false for a dead pid", async () => {
  const agent = start(["sh", "-c", "exit 0"]);
  equal(await agent.exited, 0);
  await waitUntil(async () => !(await sameProcessAlive(agent.pid)), "the pid to be gone");
  equal(await sameProcessAlive(agent.pid, agent.startTime), false);
  equal(await sameProcessAlive(0), false);
  equal(await sameProcessAlive(-1), false);
});

Deno.test("sameProcessAlive is false when the start time differs (a reused pid)", async () => {
  await withAgent(["sleep", "30"], {}, async (agent) => {
    assert(/^\d+$/.test(agent.startTime), agent.startTime);
    equal(await sameProcessAlive(agent.pid, agent.startTime), true);
    equal(await sameProcessAlive(agent.pid), true);
    equal(await sameProcessAlive(agent.pid, String(Number(agent.startTime) - 3600)), false);
    equal(await sameProcessAlive(agent.pid, "garbage"), false);
  });
});

Deno.test("lastOutputAt advances when the agent prints, on stdout too", async () => {
  await withAgent(["sh", "-c", "sleep 0.2; echo progress; exec sleep 30"], {}, async (agent) => {
    equal(agent.lastOutputAt, agent.spawnedAt);
    await waitUntil(() => agent.lastOutputAt > agent.spawnedAt, "lastOutputAt to advance");
    deepEqual(agent.tail.lines(), [], "stdout is discarded");
  });
});

Deno.test("a 200 MB stderr flood leaves exactly the last 64 matching lines", async () => {
  const total = 200 * 1024 * 1024;
  // One ~1 MB block of mixed lines, every fifth one matching, written until 200 MB.
  const code = `
    const enc = new TextEncoder();
    const lines = [];
    for (let i = 0; i < 12000; i++) {
      lines.push(i % 5 === 0 ? "ERROR flood line " + i + " went wrong" : "info chatter line " + i + " is fine");
    }
    const block = enc.encode(lines.join("\\n") + "\\n");
    const write = (bytes) => { for (let o = 0; o < bytes.length;) o += Deno.stderr.writeSync(bytes.subarray(o)); };
    for (let sent = 0; sent < ${total}; sent += block.length) write(block);
    write(enc.encode("info almost done\\nPANIC the last matching line\\ninfo done\\n"));
  `;
  // Its speed and the orchestrator's memory meanwhile are measured in bench/flood.ts.
  await withAgent(denoAgent(code), {}, async (agent) => {
    equal(await agent.exited, 0);
    assert(agent.tail.bytes >= total);
    const lines = agent.tail.lines();
    equal(lines.length, 64);
    for (const line of lines) match(line, /warn|error|fail|panic/i);
    equal(lines[63], "PANIC the last matching line");
    const lastBlock = Array.from({ length: 63 }, (_, k) => 11685 + 5 * k);
    deepEqual(lines.slice(0, 63), lastBlock.map((i) => `ERROR flood line ${i} went wrong`));
  });
});

/**
 * A signaller that fails on purpose: the first `failures[signal]` attempts of
 * each signal fail as a `kill` cut short would; the rest go through for real.
 * Every attempt is logged.
 */
function flakySender(failures: Partial<Record<Deno.Signal, number>>) {
  const log: string[] = [];
  const send = (pgid: number, signal: Deno.Signal): Promise<SignalSent> => {
    const left = failures[signal] ?? 0;
    if (left > 0) {
      failures[signal] = left - 1;
      log.push(`${signal} failed`);
      return Promise.resolve({
        failed: `cannot send ${signal} to process group ${pgid}: kill killed`,
      });
    }
    log.push(`${signal} sent`);
    return signalGroup(pgid, signal);
  };
  return { send, log };
}

const STUBBORN = ["sh", "-c", "trap '' TERM; echo 'WARN ready' >&2; sleep 300"];

Deno.test("a SIGTERM that cannot be sent goes on to SIGKILL at once: the group is ended, not left running", async () => {
  await withAgent(STUBBORN, {}, async (agent) => {
    await tailLine(agent, "WARN ready");
    const { send, log } = flakySender({ SIGTERM: Infinity });
    // A 10-minute grace: a failed SIGTERM must not make us wait for a signal never sent.
    const ended = await terminateGroup(agent.pgid, { graceMs: 600_000, send });
    deepEqual(ended, { escalated: true, gone: true });
    deepEqual(log, [...Array(5).fill("SIGTERM failed"), "SIGKILL sent"]);
    equal(await agent.exited, 137);
  });
});

Deno.test("a failed SIGTERM or SIGKILL attempt is retried, and the group ends", async () => {
  await withAgent(STUBBORN, {}, async (agent) => {
    await tailLine(agent, "WARN ready");
    const { send, log } = flakySender({ SIGTERM: 1, SIGKILL: 2 });
    const ended = await terminateGroup(agent.pgid, { graceMs: 100, send });
    deepEqual(ended, { escalated: true, gone: true });
    deepEqual(log, [
      "SIGTERM failed",
      "SIGTERM sent",
      "SIGKILL failed",
      "SIGKILL failed",
      "SIGKILL sent",
    ]);
    equal(await agent.exited, 137);
  });
});

Deno.test("a group that cannot be signalled at all is reported with the reason, after SIGKILL was tried", async () => {
  await withAgent(STUBBORN, {}, async (agent) => {
    await tailLine(agent, "WARN ready");
    const { send, log } = flakySender({ SIGTERM: Infinity, SIGKILL: Infinity });
    const ended = await terminateGroup(agent.pgid, { graceMs: 100, send });
    equal(ended.gone, false);
    equal(ended.escalated, false, "SIGKILL was never sent");
    match(
      ended.reason ?? "",
      /^cannot send SIGKILL to process group \d+: kill killed \(tried 5x\)$/,
    );
    deepEqual(log, [...Array(5).fill("SIGTERM failed"), ...Array(5).fill("SIGKILL failed")]);
    assert(await groupAlive(agent.pgid), "still running: nothing was sent");
  });
});

Deno.test("terminateGroup ends what an exited agent left in its group, and leaves an empty group alone", async () => {
  await withAgent(
    ["sh", "-c", 'sleep 300 >/dev/null 2>&1 & echo "WARN child $!" >&2; exit 3'],
    {},
    async (agent) => {
      const child = Number((await tailLine(agent, "WARN child")).split(" ")[2]);
      equal(await agent.exited, 3);
      assert(await sameProcessAlive(child), "the background child outlives the agent");
      deepEqual(await terminateGroup(agent.pgid, { graceMs: 5_000 }), {
        escalated: false,
        gone: true,
      });
      equal(await sameProcessAlive(child), false);
      // Now empty: nothing is sent at all.
      const { send, log } = flakySender({});
      deepEqual(await terminateGroup(agent.pgid, { graceMs: 5_000, send }), {
        escalated: false,
        gone: true,
      });
      deepEqual(log, []);
    },
  );
});

Deno.test("parseMarks keeps processes with a gap id and a worktree (values may hold ':' and newlines); isOfDispatch wants all three marks", () => {
  const text = [
    "7/environ:CHUMP_GAP_ID=A-1",
    "7/environ:CHUMP_WORKTREE=/w/a:b\nc",
    "7/environ:CHUMP_LEASE_ID=3",
    "8/environ:CHUMP_GAP_ID=A-1", // no worktree: not a dispatch's
    "9/environ:CHUMP_GAP_ID=B-2",
    "9/environ:CHUMP_WORKTREE=/w/b",
    "", // an empty mark (the scanning helper blanks its own)
  ].join("\0");
  const marked = parseMarks(text);
  deepEqual(marked, [
    { pid: 7, marks: { gapId: "A-1", worktree: "/w/a:b\nc", leaseId: "3" } },
    { pid: 9, marks: { gapId: "B-2", worktree: "/w/b" } },
  ]);
  equal(isOfDispatch(marked[0], { gapId: "A-1", worktree: "/w/a:b\nc", leaseId: 3 }), true);
  equal(isOfDispatch(marked[0], { gapId: "A-1", worktree: "/w/a:b\nc", leaseId: 4 }), false);
  equal(isOfDispatch(marked[0], { gapId: "A-1", worktree: "/w/a", leaseId: 3 }), false);
  equal(isOfDispatch(marked[1], { gapId: "B-2", worktree: "/w/b", leaseId: null }), true);
  equal(isOfDispatch(marked[1], { gapId: "B-2", worktree: "/w/b", leaseId: 1 }), false);
});

Deno.test("terminate({ process }) ends one process and leaves the rest of its group alone", async () => {
  const leader = new Deno.Command("sh", {
    args: ["-c", "sleep 3600 & echo $!; exec sleep 3600"],
    stdout: "piped",
    stdin: "null",
    detached: true,
  }).spawn();
  const reader = leader.stdout.getReader();
  const first = new TextDecoder().decode((await reader.read()).value);
  const child = Number(first.trim());
  try {
    deepEqual(await terminate({ process: child }, { graceMs: 1_000 }), {
      escalated: false,
      gone: true,
    });
    equal(await sameProcessAlive(child), false);
    equal(await sameProcessAlive(leader.pid), true, "the rest of the group runs on");
  } finally {
    await terminateGroup(leader.pid, { graceMs: 0 });
    reader.releaseLock();
    await leader.stdout.cancel();
    await leader.status;
  }
});
