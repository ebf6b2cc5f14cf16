/**
 * The least-privilege launch works however Deno 2.x is installed: a symlink
 * on PATH (npm -g, Homebrew), Deno run by absolute path and not on PATH, a
 * hard link. Every way it cannot work is one line.
 *
 * @module
 */
import { deepEqual, equal, match, ok as assert } from "node:assert/strict";
import { sameProcessAlive } from "../../testkit/process.ts";
import { delimiter, dirname, join } from "node:path";
import { chooseDeno, type DenoFacts, PROC_SELF_EXE } from "../../lib/commands/launch.ts";
import { TASK_RUN, taskPermissionFlags } from "../../lib/commands/permissions.ts";
import { type Ran, ROOT, runProcess, scratch } from "../_helpers.ts";
import {
  backlogOf,
  killMarked,
  leaseRows,
  orchestrateInBackground,
  reflectionRows,
  scratchRepo,
} from "../_e2e.ts";

const EXEC = "/opt/deno/bin/deno";
const none: DenoFacts = { execPath: EXEC, execGranted: false, procSelfGranted: false };

Deno.test("relaunch: execPath first, then /proc/self/exe, then the same file on PATH", () => {
  const samePath = { path: "/usr/local/bin/deno", sameFile: true, granted: true };
  const exec = chooseDeno({
    ...none,
    execGranted: true,
    procSelfGranted: true,
    pathDeno: samePath,
  });
  equal(exec.ok && exec.value, EXEC);
  const proc = chooseDeno({ ...none, procSelfGranted: true, pathDeno: samePath });
  equal(proc.ok && proc.value, PROC_SELF_EXE);
  const path = chooseDeno({ ...none, pathDeno: samePath });
  equal(path.ok && path.value, "/usr/local/bin/deno");
});

Deno.test("relaunch: no runnable Deno is one line saying why and what to do", () => {
  const cases: [DenoFacts["pathDeno"], string][] = [
    [undefined, "'deno' is not on PATH"],
    [
      { path: "/usr/bin/deno", sameFile: false, granted: true },
      "'deno' on PATH (/usr/bin/deno) is another file",
    ],
    [{ path: "/usr/bin/deno", sameFile: true, granted: false }, "it may not run '/usr/bin/deno'"],
  ];
  for (const [pathDeno, why] of cases) {
    const r = chooseDeno({ ...none, pathDeno });
    equal(r.ok, false);
    equal(
      !r.ok && r.error,
      `this Deno (${EXEC}) may not start itself again: ${why}; put this Deno on PATH as 'deno', ` +
        `or run it with --allow-run=${EXEC}`,
    );
  }
});

Deno.test("the dispatch task runs main.ts with exactly the task's flags, and /proc/self/exe", () => {
  const tasks = JSON.parse(Deno.readTextFileSync(join(ROOT, "deno.json"))).tasks;
  equal(tasks.dispatch, `deno run --quiet ${taskPermissionFlags().join(" ")} main.ts`);
  assert(TASK_RUN.includes(PROC_SELF_EXE));
  match(tasks.compile, /--allow-run=deno,\/proc\/self\/exe /);
});

/** Directories of PATH without any `deno` in them. */
const SYSTEM_PATH = ["/usr/local/bin", "/usr/bin", "/bin"].filter((d) => {
  try {
    Deno.statSync(join(d, "deno"));
    return false;
  } catch {
    return true;
  }
}).join(delimiter);

/** No stack trace, no uncaught error: every failure is one line. */
function assertNoTrace(ran: Ran): void {
  equal(/^\s+at /m.test(ran.stderr), false, ran.stderr);
  equal(/NotCapable|Uncaught|internal error/.test(ran.stderr), false, ran.stderr);
}

/**
 * With `deno` at `exe` and PATH `path`: the self-test task passes, a dry run
 * works, and `deno task compile` gets as far as its DENORT_BIN one-line failure.
 */
async function tasksWork(exe: string, path: string): Promise<void> {
  const env = { PATH: path, NO_COLOR: "1", DENORT_BIN: "/nonexistent/denort" };
  const run = (args: string[]) => runProcess(exe, args, { cwd: ROOT, env });
  const [selfTest, dry, compile] = await Promise.all([
    run(["task", "-q", "self-test"]),
    run(["task", "-q", "dispatch", "--backlog", "tests/fixtures/synthetic-backlog.yaml"]),
    run(["task", "-q", "compile"]),
  ]);
  for (const ran of [selfTest, dry, compile]) assertNoTrace(ran);
  equal(selfTest.code, 0, selfTest.stderr);
  match(selfTest.stdout, /^self-test PASSED: /m);
  equal(dry.code, 0, dry.stderr);
  match(dry.stdout, /^WOULD DISPATCH: SYNTH-001 /m);
  equal(compile.code, 1);
  equal(
    compile.stderr,
    "compile: cannot build dist/chump-orchestrator: DENORT_BIN=/nonexistent/denort does not exist\n",
  );
}

Deno.test("deno task works with a PATH whose deno is a symlink (npm -g, Homebrew)", async () => {
  await using bin = await scratch("chump-launch-");
  await Deno.symlink(Deno.execPath(), join(bin.path, "deno"));
  await tasksWork(join(bin.path, "deno"), `${bin.path}${delimiter}${SYSTEM_PATH}`);
});

Deno.test("deno task works with Deno run by absolute path and no deno on PATH", async () => {
  await tasksWork(Deno.execPath(), SYSTEM_PATH);
});

/** A hard link to this Deno in a scratch dir, when the file system allows one. */
async function hardLink(dir: string): Promise<string | undefined> {
  const link = join(dir, "deno");
  try {
    await Deno.link(Deno.execPath(), link);
    return link;
  } catch {
    return undefined; // another file system: nothing to test here
  }
}

/**
 * Can a hard link to this Deno be made in the temp dir? (Not across file
 * systems.) Where it cannot, the hard-link tests report themselves ignored,
 * with this reason in their name, rather than pass without checking.
 */
const LINKABLE = await (async () => {
  await using probe = await scratch("chump-launch-");
  return await hardLink(probe.path) !== undefined;
})();
const NO_LINK = "(ignored where the temp dir is on another file system than this Deno)";

Deno.test({
  name: `deno task works with Deno run as a hard link, the original on PATH ${NO_LINK}`,
  ignore: !LINKABLE,
  fn: async () => {
    await using bin = await scratch("chump-launch-");
    const link = await hardLink(bin.path);
    if (link === undefined) throw new Error("the hard link could be made a moment ago");
    await tasksWork(link, `${dirname(Deno.execPath())}${delimiter}${SYSTEM_PATH}`);
  },
});

/** `deno run <task flags without /proc/self/exe> main.ts reap` in an empty repo. */
async function reapWithoutProcSelf(exe: string, path: string): Promise<Ran & { repo: string }> {
  await using dir = await scratch("chump-launch-");
  const repo = join(dir.path, "repo");
  await runProcess("git", ["init", "--quiet", repo]);
  const flags = taskPermissionFlags().map((f) =>
    f.startsWith("--allow-run=") ? `--allow-run=${TASK_RUN.filter((c) => c !== PROC_SELF_EXE)}` : f
  );
  const ran = await runProcess(
    exe,
    ["run", "--quiet", ...flags, join(ROOT, "main.ts"), "reap", "--repo-root", repo],
    { cwd: ROOT, env: { PATH: path, NO_COLOR: "1" } },
  );
  let wrote = true;
  try {
    await Deno.stat(join(repo, "sessions"));
  } catch {
    wrote = false;
  }
  return { ...ran, repo: wrote ? repo : "" };
}

Deno.test({
  name:
    `without /proc/self/exe, a deno on PATH that is the same file (hard link) is used ${NO_LINK}`,
  ignore: !LINKABLE,
  fn: async () => {
    await using bin = await scratch("chump-launch-");
    const link = await hardLink(bin.path);
    if (link === undefined) throw new Error("the hard link could be made a moment ago");
    const ran = await reapWithoutProcSelf(
      Deno.execPath(),
      `${bin.path}${delimiter}${SYSTEM_PATH}`,
    );
    assertNoTrace(ran);
    equal(ran.code, 0, ran.stderr);
    match(ran.stdout, /^nothing to reap: no dispatches recorded in /);
  },
});

Deno.test("no way to start Deno again: one line, exit 2, nothing written", async () => {
  const ran = await reapWithoutProcSelf(Deno.execPath(), SYSTEM_PATH);
  equal(ran.code, 2);
  equal(ran.stdout, "");
  const exec = Deno.execPath();
  match(
    ran.stderr,
    new RegExp(
      `^chump-orchestrator: error: cannot start the run that writes \\S+/sessions, \\S+: ` +
        `this Deno \\(${exec}\\) may not start itself again: 'deno' is not on PATH; put this ` +
        `Deno on PATH as 'deno', or run it with --allow-run=${exec}\\n$`,
    ),
  );
  equal(ran.repo, "", "the repo got a sessions/ directory");
});

Deno.test("a SIGHUP sent to the task's process alone is passed on: the relaunched run leaves its agent for adoption, exit 129", async () => {
  await using s = await scratchRepo(backlogOf([["HUP-HANG-1"]]));
  const id = crypto.randomUUID();
  try {
    const bg = orchestrateInBackground(s, [], { CHUMP_TEST_MARK: id });
    await bg.waitFor(/^DISPATCHED: /);
    bg.child.kill("SIGHUP");
    const status = await bg.child.status;
    // The relaunched run stops and exits 129, and the task's process, which
    // passed the signal on, exits with that code instead of dying by the signal.
    equal(status.signal, null);
    equal(status.code, 129);
    equal(reflectionRows(s.db).size, 0);
    deepEqual(leaseRows(s.db).map((l) => l.state), ["running"]);
    equal(await sameProcessAlive(leaseRows(s.db)[0].pid!), true, "its agent runs on");
  } finally {
    await killMarked(`CHUMP_TEST_MARK=${id}`);
  }
});
