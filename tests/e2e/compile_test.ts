/**
 * `deno task compile`: where Deno's denort runtime can be had, the built
 * binary runs `--help`, `--version` and its own `--self-test`; where it
 * cannot (no internet, no DENORT_BIN: this project's CI machines), compile
 * fails in one clear line and leaves no file behind.
 *
 * @module
 */
import { deepEqual, equal, match } from "node:assert/strict";
import { join } from "node:path";
import { type Ran, ROOT, runProcess, taskArgs } from "../_helpers.ts";
import { compileFailure, outputFor, TARGETS } from "../../scripts/compile.ts";

/** `deno task compile` (its exact flags), allowed to write `out` instead of dist/. */
function compile(args: string[], env: Record<string, string> = {}, out?: string): Promise<Ran> {
  const flags = taskArgs("compile").map((w) =>
    w.startsWith("--allow-write=") && out ? `--allow-write=${out}` : w
  );
  return runProcess(Deno.execPath(), [...flags, ...args], { cwd: ROOT, env });
}

function run(binary: string, args: string[], env: Record<string, string> = {}): Promise<Ran> {
  return runProcess(binary, args, { env: { NO_COLOR: "1", ...env } });
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

// One real build for this machine, with whatever DENORT_BIN / network this machine has.
const outDir = await Deno.makeTempDir({ prefix: "chump-compile-" });
const attempt = await compile(["--out", outDir], {}, outDir);
const binary = join(outDir, "chump-orchestrator");
const built = attempt.code === 0;
const leftBehind = await listDir(outDir);
if (!built) {
  console.log(`compiled binary not tested here: ${attempt.stderr.trim()}`);
  await Deno.remove(outDir, { recursive: true });
}

Deno.test({
  name: "the compiled binary prints its version and help",
  ignore: !built,
}, async () => {
  equal((await run(binary, ["--version"])).stdout.trim(), "chump-orchestrator 0.1.0");
  const help = await run(binary, ["--help"]);
  equal(help.code, 0);
  match(help.stdout, /--max-parallel/);
  match(help.stdout, /--self-test/);
});

Deno.test({
  name: "the compiled binary passes its self-test from PATH, with no repo around it",
  ignore: !built,
}, async () => {
  const bin = await Deno.makeTempDir({ prefix: "chump-bin-" });
  try {
    await Deno.copyFile(binary, join(bin, "chump-orchestrator"));
    await Deno.chmod(join(bin, "chump-orchestrator"), 0o755);
    const ran = await run("chump-orchestrator", ["--self-test"], {
      PATH: `${bin}:${Deno.env.get("PATH")}`,
    });
    equal(ran.code, 0, ran.stderr);
    match(ran.stdout, /^self-test PASSED: /m);
  } finally {
    await Deno.remove(bin, { recursive: true });
    await Deno.remove(outDir, { recursive: true });
  }
});

Deno.test({
  name: "without denort (no DENORT_BIN, no download) compile fails in one line and leaves nothing",
  ignore: built,
}, () => {
  equal(attempt.code, 1);
  equal(attempt.stdout, "");
  const lines = attempt.stderr.trimEnd().split("\n");
  equal(lines.length, 1, attempt.stderr);
  match(lines[0], /^compile: cannot build .*chump-orchestrator: deno compile needs Deno's denort/);
  match(lines[0], /set DENORT_BIN to the denort binary of Deno \d+\.\d+\.\d+/);
  deepEqual(leftBehind, []);
});

Deno.test("DENORT_BIN naming a missing file fails in one line", async () => {
  await using dir = await tempDir();
  const ran = await compile(["--out", dir.path], { DENORT_BIN: "/nonexistent/denort" }, dir.path);
  equal(ran.code, 1);
  equal(
    ran.stderr,
    `compile: cannot build ${join(dir.path, "chump-orchestrator")}: ` +
      `DENORT_BIN=/nonexistent/denort does not exist\n`,
  );
  deepEqual(await listDir(dir.path), []);
});

Deno.test("DENORT_BIN naming something that is not denort (the full deno) leaves no broken binary", async () => {
  await using dir = await tempDir();
  const ran = await compile(["--out", dir.path], { DENORT_BIN: Deno.execPath() }, dir.path);
  equal(ran.code, 1);
  const lines = ran.stderr.trimEnd().split("\n");
  equal(lines.length, 1, ran.stderr);
  match(
    lines[0],
    /^compile: cannot build .*: the built binary does not run as chump-orchestrator \(it printed 'deno \d/,
  );
  match(lines[0], /is not a denort runtime; removed it$/);
  deepEqual(await listDir(dir.path), []);
});

Deno.test("bad compile arguments are one line and exit 2", async () => {
  const unknown = await compile(["--target", "riscv64-unknown-linux-gnu"]);
  equal(unknown.code, 2);
  match(unknown.stderr, /^compile: unknown target 'riscv64-unknown-linux-gnu' \(one of: /);
  const both = await compile(["--all"], { DENORT_BIN: "/x/denort" });
  equal(both.code, 2);
  equal(
    both.stderr,
    "compile: DENORT_BIN is the runtime of one target; build one --target at a time with it\n",
  );
  const flag = await compile(["--fast"]);
  equal(flag.code, 2);
  match(flag.stderr, /^compile: .*--fast/);
});

Deno.test("an --out the compile task may not write is one line, not a stack trace", async () => {
  await using dir = await tempDir();
  const out = join(dir.path, "elsewhere");
  const ran = await compile(["--out", out]);
  equal(ran.code, 1);
  match(ran.stderr, new RegExp(`^compile: cannot create ${out}: .*pass an --out under it\\)\n$`));
  deepEqual(await listDir(dir.path), []);
});

Deno.test("one binary per target: plain name for this machine, target-suffixed for the rest", () => {
  equal(outputFor("/d", "x86_64-unknown-linux-gnu", false), "/d/chump-orchestrator");
  equal(
    outputFor("/d", "aarch64-apple-darwin", true),
    "/d/chump-orchestrator-aarch64-apple-darwin",
  );
  equal(
    outputFor("/d", "x86_64-pc-windows-msvc", true),
    "/d/chump-orchestrator-x86_64-pc-windows-msvc.exe",
  );
  equal(TARGETS.length, 5);
});

Deno.test("a download failure names the target, the cause and DENORT_BIN", () => {
  const stderr = `Compile main.ts to x
error: Writing deno compile executable to temporary file 'x.tmp-1'

Caused by:
    0: Setting up base binary.
    1: error sending request for url (https://dl.deno.land/release/v2.9.6/denort-aarch64-apple-darwin.zip): client error (Connect)
    2: client error (Connect)
    3: tcp connect error: Connection refused (os error 111)

Stack backtrace:
   0: <unknown>
`;
  const line = compileFailure(stderr, "aarch64-apple-darwin");
  match(line, /^deno compile needs Deno's denort runtime for aarch64-apple-darwin/);
  match(line, /\(tcp connect error: Connection refused \(os error 111\)\)/);
  match(line, /denort-aarch64-apple-darwin\.zip\)$/);
  equal(
    compileFailure('error: Module not found "file:///x.ts".\n', "t"),
    'error: Module not found "file:///x.ts".',
  );
});

async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "chump-compile-" });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }),
  };
}
