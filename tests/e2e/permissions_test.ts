/**
 * Least privilege: the tasks grant narrow permissions and no write, main.ts
 * relaunches a command that writes with exactly its paths, the self-test passes under exactly them, and a run missing
 * one fails in one line that says how to grant it.
 *
 * @module
 */
import { deepEqual, equal, match, ok as assert } from "node:assert/strict";
import { dirname, join } from "node:path";
import { backlogOf, demoAgentCmd, exists, leaseRows, orchestrate, scratchRepo } from "../_e2e.ts";
import { ROOT, runMain, runProcess } from "../_helpers.ts";
import { parseCli } from "../../lib/cli/parse.ts";
import { SUBCOMMANDS } from "../../lib/cli/commands.ts";
import {
  ALLOWED_RUN,
  compiledPermissionFlags,
  extraRunFrom,
  netHosts,
  permissionFlags,
  RELAUNCHED_ENV,
  taskPermissionFlags,
  writePaths,
} from "../../lib/commands/permissions.ts";

const TOOL_TASKS = [
  "dispatch",
  "self-test",
  "reflections",
  "status",
  "reap",
  "watch",
  "serve",
  "demo",
  ...Object.keys(SUBCOMMANDS),
];

function tasks(): Record<string, string> {
  return JSON.parse(Deno.readTextFileSync(join(ROOT, "deno.json"))).tasks;
}

function commandOf(argv: string[]) {
  const parsed = parseCli(argv);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
}

const PATHS = { repoRoot: "/r", db: "/r/sessions/chump_memory.db" };

Deno.test("no task that runs the tool grants everything or the network", () => {
  const all = tasks();
  for (const name of TOOL_TASKS) {
    const text = all[name];
    assert(text !== undefined, `task ${name} exists`);
    for (const broad of [/(^|\s)-A(\s|$)/, /--allow-all/, /--allow-net/, /--allow-ffi/]) {
      equal(broad.test(text), false, `task ${name} has ${broad}: ${text}`);
    }
    // Every tool task runs main.ts, which relaunches a command that writes with its paths.
    assert(
      name === "dispatch" ? text.endsWith(" main.ts") : text.includes("deno task -q dispatch"),
    );
  }
  match(all.dispatch, /--allow-run=git,sh,ps,deno,\/proc\/self\/exe /);
  match(all.dispatch, /--allow-env=PATH,INIT_CWD,TMPDIR,/);
  equal(/--allow-write/.test(all.dispatch), false, "the task process itself writes nothing");
});

Deno.test("a dry run, status and reflections may write nothing", () => {
  deepEqual(writePaths(commandOf([]), PATHS, "/tmp"), []);
  deepEqual(writePaths(commandOf(["--max-parallel", "5"]), PATHS, "/tmp"), []);
  deepEqual(writePaths(commandOf(["status"]), PATHS, "/tmp"), []);
  deepEqual(writePaths(commandOf(["reflections"]), PATHS, "/tmp"), []);
  deepEqual(writePaths(commandOf(["--help"]), PATHS, "/tmp"), []);
});

Deno.test("a real dispatch writes the repo's .claude, the DB's directory and the temp dir only", () => {
  deepEqual(writePaths(commandOf(["--no-dry-run", "--watch"]), PATHS, "/tmp"), [
    "/r/.claude",
    "/r/sessions",
    "/tmp",
  ]);
  deepEqual(
    writePaths(
      commandOf(["--execute", "--db", "/data/x.db"]),
      { ...PATHS, db: "/data/x.db" },
      "/t",
    ),
    ["/r/.claude", "/data", "/t"],
  );
  deepEqual(writePaths(commandOf(["reap"]), PATHS, "/tmp"), ["/r/sessions", "/tmp"]);
  deepEqual(writePaths(commandOf(["watch"]), PATHS, "/tmp"), ["/r/.claude", "/r/sessions", "/tmp"]);
  deepEqual(writePaths(commandOf(["--self-test"]), PATHS, "/tmp"), ["/tmp"]);
});

Deno.test("permission flags: no network, fixed programs plus CHUMP_ALLOW_RUN, writes only when given", () => {
  const readOnly = permissionFlags([]);
  equal(readOnly.some((f) => f.startsWith("--allow-write")), false);
  equal(readOnly.some((f) => /--allow-(net|all|ffi)|^-A$/.test(f)), false);
  assert(readOnly.includes("--no-prompt"));
  equal(readOnly.find((f) => f.startsWith("--allow-run=")), `--allow-run=${ALLOWED_RUN.join(",")}`);
  const flags = permissionFlags(["/r/.claude", "/tmp"], extraRunFrom(" my-agent , ,git,/opt/a "));
  assert(flags.includes("--allow-write=/r/.claude,/tmp"));
  equal(
    flags.find((f) => f.startsWith("--allow-run=")),
    `--allow-run=${[...ALLOWED_RUN, "my-agent", "/opt/a"].join(",")}`,
  );
});

Deno.test("the compiled binary: the same programs plus itself, the demo agent's env, write per run", () => {
  const flags = compiledPermissionFlags(["aider"]);
  equal(
    flags.find((f) => f.startsWith("--allow-run=")),
    `--allow-run=${[...ALLOWED_RUN, "chump-orchestrator", "aider"].join(",")}`,
  );
  const env = flags.find((f) => f.startsWith("--allow-env="))!.slice("--allow-env=".length).split(
    ",",
  );
  for (
    const name of ["PATH", "CHUMP_AGENT_CMD", "CHUMP_GAP_ID", "CHUMP_BRANCH", "CHUMP_BASE_REF"]
  ) {
    assert(env.includes(name), name);
  }
  assert(flags.includes("--allow-write"));
  equal(flags.some((f) => /--allow-(all|ffi)|^-A$/.test(f)), false);
  // The network: the dashboard's loopback only.
  deepEqual(flags.filter((f) => f.startsWith("--allow-net")), ["--allow-net=127.0.0.1,localhost"]);
});

Deno.test("only the dashboard gets a network permission, for its one loopback address and port", () => {
  deepEqual(netHosts(commandOf(["serve", "--port", "9000"])), ["127.0.0.1:9000"]);
  deepEqual(netHosts(commandOf(["serve", "--host", "localhost", "--port", "0"])), [
    "localhost",
  ]);
  for (
    const args of [["--no-dry-run", "--watch"], ["watch"], ["status"], ["reap"], ["logs", "A-1"]]
  ) {
    deepEqual(netHosts(commandOf(args)), [], args.join(" "));
  }
});

Deno.test("with --ledger, a command's network is the database's host:port (and the dashboard's own address)", () => {
  const url = "postgres://chump:pw@db.example:6543/chump";
  for (
    const args of [
      ["--no-dry-run", "--watch", "--ledger", url],
      ["watch", "--ledger", url],
      ["status", "--ledger", url],
      ["reflections", "--ledger", url],
      ["lessons", "--ledger", url],
    ]
  ) {
    deepEqual(netHosts(commandOf(args)), ["db.example:6543"], args.join(" "));
  }
  deepEqual(netHosts(commandOf(["serve", "--port", "9000", "--ledger", url])), [
    "127.0.0.1:9000",
    "db.example:6543",
  ]);
  // A dry run touches no database.
  deepEqual(netHosts(commandOf(["--ledger", url])), []);
});

Deno.test("the self-test passes under exactly the self-test task's permissions", async () => {
  const out = await runProcess(Deno.execPath(), ["task", "--quiet", "self-test"], {
    cwd: ROOT,
    env: { NO_COLOR: "1" },
  });
  equal(out.code, 0, out.stderr);
  match(out.stdout, /^self-test PASSED: /m);
});

Deno.test("a self-test that may not start its own agent fails in one line saying how to grant it", async () => {
  const ran = await runProcess(Deno.execPath(), [
    "run",
    "--quiet",
    "--no-prompt",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-sys",
    "--allow-run=git,sh,ps,kill",
    join(ROOT, "main.ts"),
    "--self-test",
  ], { cwd: ROOT });
  equal(ran.code, 1);
  const self = Deno.execPath();
  equal(
    ran.stderr,
    `self-test FAILED: not allowed to run '${self}' (the self-test's agent, this program): add it ` +
      `with CHUMP_ALLOW_RUN=${self} (deno task) or --allow-run=...,${self} (deno run)\n`,
  );
  equal(ran.stdout, "");
});

/** An executable agent script outside every allowed name. */
async function customAgent(dir: string): Promise<string> {
  const agent = join(dir, "my-agent");
  await Deno.writeTextFile(agent, "#!/bin/sh\ncat >/dev/null\nexit 3\n");
  await Deno.chmod(agent, 0o755);
  return agent;
}

Deno.test("an agent command that is not allowed fails in one line naming the grant; nothing is dispatched", async () => {
  await using s = await scratchRepo(backlogOf([["P-1"]]));
  const agent = await customAgent(s.dir);
  const ran = await orchestrate(s, ["--agent-cmd", `${agent} --go`]);
  equal(ran.code, 2);
  equal(
    ran.stderr,
    `chump-orchestrator: error: not allowed to run '${agent}' (the agent command): add it with ` +
      `CHUMP_ALLOW_RUN=${agent} (deno task) or --allow-run=...,${agent} (deno run)\n`,
  );
  equal(ran.stdout, "");
  equal(await exists(join(s.repo, ".claude")), false);
  equal(await exists(s.db), false);
});

Deno.test("CHUMP_ALLOW_RUN grants a custom agent command", async () => {
  await using s = await scratchRepo(backlogOf([["P-1"]]));
  const agent = await customAgent(s.dir);
  const ran = await orchestrate(s, ["--agent-cmd", `${agent} --go`], { CHUMP_ALLOW_RUN: agent });
  equal(ran.code, 3, ran.stderr); // the agent ran and exited 3: killed, not shipped
  match(ran.stdout, /^DISPATCHED: P-1 /m);
  match(ran.stdout, /killed=1/);
  deepEqual(leaseRows(s.db).map((l) => l.state), ["ended"]);
});

Deno.test("an agent command that does not exist fails in one line before anything is dispatched", async () => {
  await using s = await scratchRepo(backlogOf([["P-1"]]));
  const ran = await orchestrate(s, ["--agent-cmd", "no-such-agent-xyz -p {prompt}"]);
  equal(ran.code, 2);
  equal(
    ran.stderr,
    "chump-orchestrator: error: the agent command 'no-such-agent-xyz' not found on PATH\n",
  );
  equal(await exists(s.db), false);
});

const SYSTEM_PATH = "/usr/bin:/bin";
const ghInstalled = SYSTEM_PATH.split(":").some((d) => {
  try {
    return Deno.statSync(join(d, "gh")).isFile;
  } catch {
    return false;
  }
});

Deno.test({
  name: "watching with the gh provider needs gh on PATH; the line says how to do without",
  ignore: ghInstalled, // the machine has a real gh: the case cannot be made here
}, async () => {
  await using s = await scratchRepo(backlogOf([["P-1"]]));
  const ran = await runMain(
    ["--repo-root", s.repo, "--no-dry-run", "--watch", "--agent-cmd", demoAgentCmd()],
    { env: { PATH: `${dirname(Deno.execPath())}:${SYSTEM_PATH}` } },
  );
  equal(ran.code, 2);
  equal(
    ran.stderr,
    "chump-orchestrator: error: the PR provider program 'gh' not found on PATH " +
      "(install the GitHub CLI, or pass --pr-provider git)\n",
  );
});

Deno.test("a relaunched main.ts that still may not write fails in one line saying how to grant it", async () => {
  await using s = await scratchRepo(backlogOf([["P-1"]]));
  const out = await runProcess(Deno.execPath(), [
    "run",
    "--quiet",
    "--no-prompt",
    "--allow-read",
    "--allow-env",
    "--allow-sys",
    "--allow-run",
    join(ROOT, "main.ts"),
    "--repo-root",
    s.repo,
    "--no-dry-run",
    "--agent-cmd",
    demoAgentCmd(),
  ], { cwd: ROOT, env: { [RELAUNCHED_ENV]: "1" } }); // never relaunches twice
  equal(out.code, 2);
  equal(
    out.stderr,
    `chump-orchestrator: error: not allowed to write ${s.db} (the reflection DB and lease ledger): ` +
      `run through 'deno task', which grants it, or add --allow-write=${
        join(s.repo, "sessions")
      } ` +
      `(deno run)\n`,
  );
});

Deno.test("under the task's permissions a real dispatch relaunches with its write paths and runs", async () => {
  await using s = await scratchRepo(backlogOf([["P-1"]]));
  const ran = await orchestrate(s, []);
  equal(ran.code, 0, ran.stderr);
  match(ran.stdout, /^DISPATCHED: P-1 /m);
  match(ran.stdout, /shipped=1 /);
});

Deno.test("read-only commands run in the task's process: no second Deno, no write", async () => {
  await using s = await scratchRepo(backlogOf([["P-1"]]));
  // The task's flags without /proc/self/exe, and no deno on PATH: a relaunch would fail.
  const flags = taskPermissionFlags().map((f) =>
    f.startsWith("--allow-run=") ? "--allow-run=git,sh,ps,deno" : f
  );
  const main = (args: string[]) =>
    runProcess(Deno.execPath(), ["run", "--quiet", ...flags, join(ROOT, "main.ts"), ...args], {
      cwd: ROOT,
      env: { PATH: "/usr/bin:/bin", NO_COLOR: "1" },
    });
  const dry = await main(["--repo-root", s.repo]);
  equal(dry.code, 0, dry.stderr);
  match(dry.stdout, /^WOULD DISPATCH: P-1 /m);
  for (const args of [["status"], ["reflections"], ["--help"], ["--version"]]) {
    const ran = await main([...args, ...(args[0].startsWith("-") ? [] : ["--repo-root", s.repo])]);
    equal(ran.code, 0, `${args}: ${ran.stderr}`);
  }
  const reap = await main(["reap", "--repo-root", s.repo]);
  equal(reap.code, 2, "reap writes: it must relaunch, which is impossible here");
  equal(await exists(join(s.repo, ".claude")), false);
  equal(await exists(join(s.repo, "sessions")), false);
});

Deno.test("a dry run refuses the agent command a real run would refuse, in the same line; CHUMP_ALLOW_RUN grants it", async () => {
  await using s = await scratchRepo(backlogOf([["P-1"]]));
  const agent = await customAgent(s.dir);
  const dry = await runMain(["--repo-root", s.repo, "--agent-cmd", `${agent} --go`]);
  equal(dry.code, 2, dry.stdout);
  equal(
    dry.stderr,
    `chump-orchestrator: error: not allowed to run '${agent}' (the agent command): add it with ` +
      `CHUMP_ALLOW_RUN=${agent} (deno task) or --allow-run=...,${agent} (deno run)\n`,
  );
  equal(dry.stdout, "");
  const granted = await runMain(["--repo-root", s.repo, "--agent-cmd", `${agent} --go`], {
    env: { CHUMP_ALLOW_RUN: agent },
  });
  equal(granted.code, 0, granted.stderr);
  match(granted.stdout, /^WOULD DISPATCH: P-1 /m);
  const preset = await runMain(["--repo-root", s.repo]);
  equal(preset.code, 0, "the claude preset is granted (whether or not claude is installed)");
});

Deno.test("every subcommand has its task; under -q none prints a Task line; scripts/deno works from outside the checkout", async () => {
  const all = tasks();
  for (const name of Object.keys(SUBCOMMANDS)) {
    equal(all[name], `deno task -q dispatch ${name}`, `task ${name}`);
  }
  const outside = await Deno.makeTempDir({ prefix: "chump-outside-" });
  try {
    for (const name of ["logs", "route", "lessons", "simulate", "status"]) {
      const ran = await runProcess(join(ROOT, "scripts", "deno"), ["task", "-q", name, "--help"], {
        cwd: outside,
      });
      equal(ran.code, 0, ran.stderr);
      assert(ran.stdout.startsWith(`chump-orchestrator ${name} - `), ran.stdout);
      equal(ran.stderr, "", `no Task line, no trace: ${ran.stderr}`);
    }
  } finally {
    await Deno.remove(outside, { recursive: true });
  }
});
