import { deepEqual, equal, match, ok as assert } from "node:assert/strict";
import { parseCli } from "../lib/cli/parse.ts";
import { deadlineFor, DEFAULT_DEADLINES, exactDuration } from "../lib/util/duration.ts";
import { assignSlugs } from "../lib/git/slug.ts";
import { join } from "node:path";
import { backlogOf, exists, scratchRepo } from "./_e2e.ts";
import { FIXTURE, runInProcess, runMain, scratch } from "./_helpers.ts";

function parseError(argv: string[]): string {
  const r = parseCli(argv);
  if (r.ok) throw new Error(`expected ${argv.join(" ")} to fail`);
  return r.error;
}

Deno.test("defaults are the seed's: dry run, 2 in parallel, origin/main, gh, reflect", () => {
  const r = parseCli([]);
  if (!r.ok || r.value.kind !== "dispatch") throw new Error("expected dispatch");
  const o = r.value.options;
  equal(o.noDryRun, false);
  equal(o.maxParallel, 2);
  equal(o.baseRef, "origin/main");
  equal(o.prProvider, "gh");
  equal(o.noReflect, false);
  equal(o.order, "priority");
  equal(o.tickMs, 30_000);
  equal(o.killGraceMs, 30_000);
  equal(o.exitGraceTicks, 2);
  equal(o.logCapBytes, 32 << 20);
  equal(o.deadlines, undefined, "no --deadline: the contract's, adapted from the reflections");
  deepEqual(DEFAULT_DEADLINES, {
    xs: 1_200_000,
    s: 1_200_000,
    m: 3_600_000,
    l: 10_800_000,
    xl: 21_600_000,
  });
});

Deno.test("--no-dry-run and --execute both dispatch for real", () => {
  for (const flag of ["--no-dry-run", "--execute"]) {
    const r = parseCli([flag, "--watch"]);
    if (!r.ok || r.value.kind !== "dispatch") throw new Error("expected dispatch");
    equal(r.value.options.noDryRun, true);
    equal(r.value.options.watch, true);
  }
});

Deno.test("durations and deadlines take ms, s, m and h", () => {
  const r = parseCli([
    "--tick",
    "250ms",
    "--kill-grace",
    "2s",
    "--deadline",
    "s=1m,l=2h",
    "--max-watch",
    "1h",
  ]);
  if (!r.ok || r.value.kind !== "dispatch") throw new Error("expected dispatch");
  const o = r.value.options;
  equal(o.tickMs, 250);
  equal(o.killGraceMs, 2000);
  equal(o.maxWatchMs, 3_600_000);
  equal(o.deadlines?.s, 60_000);
  equal(o.deadlines?.xs, 60_000);
  equal(o.deadlines?.l, 7_200_000);
  equal(o.deadlines?.m, 3_600_000);
});

Deno.test("bad flag values are one line naming the flag", () => {
  equal(
    parseError(["--max-parallel", "-1"]),
    "--max-parallel must be a whole number >= 1, got '-1' (see --help)",
  );
  equal(
    parseError(["--max-parallel", "abc"]),
    "--max-parallel must be a whole number >= 1, got 'abc' (see --help)",
  );
  equal(
    parseError(["--max-parallel", "0"]),
    "--max-parallel must be a whole number >= 1, got '0' (see --help)",
  );
  equal(parseError(["--max-parallel"]), "flag --max-parallel needs a value (see --help)");
  equal(parseError(["--frobnicate"]), "unknown flag --frobnicate (see --help)");
  equal(parseError(["--watch=yes"]), "flag --watch takes no value (see --help)");
  equal(parseError(["--order", "random"]), "--order must be 'priority' or 'file', got 'random'");
  equal(
    parseError(["--pr-provider", "gitlab"]),
    "--pr-provider must be 'gh' or 'git', got 'gitlab'",
  );
  equal(
    parseError(["--tick", "soon"]),
    "--tick: not a duration: 'soon' (use e.g. 500ms, 30s, 20m, 3h)",
  );
  equal(parseError(["--tick", "0"]), "--tick must be at least 1ms, got '0'");
  equal(
    parseError(["--deadline", "huge=1m"]),
    "--deadline: expected effort=duration (efforts xs, s, m, l, xl), got 'huge=1m'",
  );
  equal(
    parseError(["--deadline", "s=5m,S=6m"]),
    "--deadline: s is given twice in 's=5m,S=6m'",
  );
  equal(
    parseError(["--ledger", "garbage://x"]),
    "--ledger wants a PostgreSQL URL (postgres://USER@HOST:PORT/DB), got scheme 'garbage:'",
  );
  equal(
    parseError(["--ledger", "postgres://"]),
    "--ledger names no server (want postgres://USER@HOST:PORT/DB, or ?host=SOCKET_DIR)",
  );
  equal(
    parseError(["status", "--ledger", "db:5432"]),
    "--ledger wants a PostgreSQL URL (postgres://USER@HOST:PORT/DB), got scheme 'db:'",
  );
  equal(parseError(["--dry-run", "--execute"]), "--dry-run conflicts with --no-dry-run/--execute");
  equal(parseError(["stray"]), "unexpected argument 'stray' (see --help)");
  equal(
    parseError(["reflections", "--outcome", "won"]),
    "--outcome must be one of shipped, ci_failed, stalled, killed, got 'won'",
  );
});

Deno.test("the CLI exits 2 with a usage hint on a bad flag, never a stack trace", async () => {
  for (const args of [["--max-parallel", "-1"], ["--max-parallel", "abc"], ["--nope"]]) {
    const ran = await runMain(args);
    equal(ran.code, 2);
    equal(ran.stdout, "");
    equal(ran.stderr.split("\n").length, 2, ran.stderr);
    match(ran.stderr, /^chump-orchestrator: error: .*\(see --help\)\n$/);
  }
});

Deno.test("a subcommand's --help prints its own flags, not the dispatch flags", async () => {
  const ran = await runInProcess(["status", "--help"]);
  equal(ran.code, 0);
  match(ran.stdout, /^chump-orchestrator status - /);
  for (const flag of ["--db", "--limit", "--json", "--watch", "--interval", "--ledger"]) {
    assert(ran.stdout.includes(`  ${flag}`), flag);
  }
  for (const flag of ["--max-parallel", "--agent-cmd", "--tick"]) {
    equal(ran.stdout.includes(flag), false, flag);
  }
  const logs = await runInProcess(["logs", "-h"]);
  match(logs.stdout, /^ {2}-f, --follow /m);
});

Deno.test("--help lists every flag and exits 0", async () => {
  const ran = await runInProcess(["--help"]);
  equal(ran.code, 0);
  for (
    const flag of [
      "--backlog",
      "--max-parallel",
      "--dry-run",
      "--no-dry-run",
      "--execute",
      "--watch",
      "--repo-root",
      "--base-ref",
      "--no-reflect",
      "--self-test",
      "--order",
      "--tick",
      "--deadline",
      "--kill-grace",
      "--max-watch",
      "--max-total",
      "--pr-provider",
      "--agent-cmd",
      "--db",
    ]
  ) {
    assert(ran.stdout.includes(flag), flag);
  }
});

Deno.test("dry run over the real fixture prints the summary and every pick, exactly", async () => {
  const ran = await runInProcess([
    "--backlog",
    FIXTURE,
    "--max-parallel",
    "100",
    "--repo-root",
    "/repo",
  ]);
  equal(ran.code, 0, ran.stderr);
  const lines = ran.stdout.trimEnd().split("\n");
  equal(
    lines[0],
    `backlog ${FIXTURE}: gaps=193 open=41 done=147 pickable=21 picked=21 (max-parallel 100, order priority)`,
  );
  equal(lines.length, 22);
  equal(
    lines[1],
    "WOULD DISPATCH: FRONTIER-005 (prio=P1 effort=m) in /repo/.claude/worktrees/frontier-005  -- " +
      "goose competitive positioning + Chump differentiation strategy",
  );
  equal(
    lines[21],
    "WOULD DISPATCH: MEM-007 (prio=P2 effort=m) in /repo/.claude/worktrees/mem-007  -- " +
      'Agent context-query — "what should I know before working on gap X?"',
  );
  for (const line of lines.slice(1)) {
    match(
      line,
      /^WOULD DISPATCH: \S+ \(prio=P[0-2] effort=\w*\) in \/repo\/\.claude\/worktrees\/[a-z0-9.-]+ {2}-- /,
    );
  }
  // Warnings go to stderr, one per line, with file:line.
  match(ran.stderr, /warning: .*:1006: duplicate gap id EVAL-003/);
});

Deno.test("dry run takes the first --max-parallel picks", async () => {
  const ran = await runInProcess(["--backlog", FIXTURE, "--repo-root", "/repo"]);
  equal(ran.code, 0);
  const ids = ran.stdout.split("\n").filter((l) => l.startsWith("WOULD")).map((l) =>
    l.split(" ")[2]
  );
  deepEqual(ids, ["FRONTIER-005", "EVAL-030"]);
});

Deno.test("titles with newlines and control characters print on one line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/b.yaml`;
    await Deno.writeTextFile(
      file,
      'gaps:\n  - id: "A-1"\n    title: "two\\nlines\\u001b[31m red"\n    priority: P1\n    status: open\n',
    );
    const ran = await runInProcess(["--backlog", file, "--repo-root", "/repo"]);
    equal(ran.code, 0);
    equal(
      ran.stdout.split("\n")[1],
      "WOULD DISPATCH: A-1 (prio=P1 effort=) in /repo/.claude/worktrees/a-1  -- two lines [31m red",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("demo-agent is main.ts's alone: the command parser does not know it", () => {
  equal(parseError(["demo-agent"]), "unexpected argument 'demo-agent' (see --help)");
});

Deno.test("deadlines: only the five efforts, never an Object.prototype member", () => {
  for (const key of ["constructor", "__proto__", "toString", "hasOwnProperty"]) {
    equal(
      parseError(["--deadline", `${key}=1s`]),
      `--deadline: expected effort=duration (efforts xs, s, m, l, xl), got '${key}=1s'`,
    );
    equal(deadlineFor(key, DEFAULT_DEADLINES), DEFAULT_DEADLINES.m, key);
  }
  equal(deadlineFor("XL", DEFAULT_DEADLINES), DEFAULT_DEADLINES.xl);
});

Deno.test("flags named like Object.prototype members are unknown flags", () => {
  equal(parseError(["--constructor", "-1"]), "unknown flag --constructor (see --help)");
  equal(parseError(["--__proto__"]), "unknown flag --__proto__ (see --help)");
  equal(parseError(["status", "--toString"]), "unknown flag --toString (see --help)");
});

Deno.test("durations that feed a timer are capped at 24h (timers overflow at 2^31 ms)", () => {
  equal(parseError(["--tick", "2147483648ms"]), "--tick must be at most 24h, got '2147483648ms'");
  equal(parseError(["--tick", "25h"]), "--tick must be at most 24h, got '25h'");
  equal(
    parseError(["--kill-grace", "30d0"]),
    "--kill-grace: not a duration: '30d0' (use e.g. 500ms, 30s, 20m, 3h)",
  );
  equal(parseError(["--kill-grace", "1000h"]), "--kill-grace must be at most 24h, got '1000h'");
  equal(
    parseError(["reap", "--kill-grace", "1000h"]),
    "--kill-grace must be at most 24h, got '1000h'",
  );
  const r = parseCli(["--tick", "24h"]);
  equal(r.ok && r.value.kind === "dispatch" && r.value.options.tickMs, 86_400_000);
});

Deno.test("a value given to a flag with a short form names the long flag", () => {
  equal(parseError(["--help=yes"]), "flag --help takes no value (see --help)");
  equal(parseError(["status", "--help=1"]), "flag --help takes no value (see --help)");
});

Deno.test("--explain goes with a dry run only", () => {
  equal(
    parseError(["--explain", "--no-dry-run"]),
    "--explain goes with a dry run, not --no-dry-run/--execute",
  );
});

Deno.test("--watch without --no-dry-run says it is a dry run and how to execute", async () => {
  const ran = await runInProcess(["--backlog", FIXTURE, "--repo-root", "/repo", "--watch"]);
  equal(ran.code, 0, ran.stderr);
  match(ran.stdout, /^WOULD DISPATCH: FRONTIER-005 /m);
  deepEqual(
    ran.stderr.split("\n").filter((l) => l.startsWith("note:")),
    ["note: this is a dry run, so nothing is watched; add --no-dry-run to dispatch and watch"],
  );
});

Deno.test("a dry run checks the agent command: an unclosed quote is exit 2 and one line", async () => {
  const ran = await runInProcess(["--backlog", FIXTURE, "--agent-cmd", "my-agent 'oops"]);
  equal(ran.code, 2);
  equal(ran.stdout, "");
  equal(
    ran.stderr.split("\n").filter((l) => !l.startsWith("warning: ")).join("\n"),
    "chump-orchestrator: error: agent command has an unclosed ' quote: my-agent 'oops\n",
  );
  const env = await runInProcess(["--backlog", FIXTURE], { CHUMP_AGENT_CMD: 'x "y' });
  equal(env.code, 2);
  match(env.stderr, /^chump-orchestrator: error: agent command has an unclosed " quote: x "y$/m);
});

Deno.test("--explain: one line per gap not picked, with the picker's reason", async () => {
  await using dir = await scratch();
  const file = join(dir.path, "b.yaml");
  await Deno.writeTextFile(
    file,
    [
      "gaps:",
      "  - {id: A-1, priority: P1, effort: s, status: open}",
      "  - {id: A-2, priority: P1, effort: s, status: done}",
      "  - {id: A-3, priority: P3, effort: s, status: open}",
      "  - {id: A-4, priority: P1, effort: xl, status: open}",
      "  - {id: A-5, priority: P1, effort: s, status: open, depends_on: [A-1, NOPE]}",
      "  - {id: A-1, priority: P1, effort: s, status: open}",
      "  - {id: A-6, priority: P2, effort: s, status: open}",
      "  - {id: A-7, priority: P2, effort: s, status: open}",
    ].join("\n") + "\n",
  );
  const ran = await runInProcess(
    ["--backlog", file, "--repo-root", "/repo", "--max-parallel", "2", "--explain"],
  );
  equal(ran.code, 0, ran.stderr);
  deepEqual(ran.stdout.trimEnd().split("\n").slice(1), [
    "WOULD DISPATCH: A-1 (prio=P1 effort=s) in /repo/.claude/worktrees/a-1  -- ",
    "WOULD DISPATCH: A-6 (prio=P2 effort=s) in /repo/.claude/worktrees/a-6  -- ",
    `NOT PICKED: A-2 (${file}:3): status done`,
    `NOT PICKED: A-3 (${file}:4): priority P3`,
    `NOT PICKED: A-4 (${file}:5): effort xl needs a human breakdown`,
    `NOT PICKED: A-5 (${file}:6): waits for A-1, NOPE`,
    `NOT PICKED: A-1 (${file}:7): duplicate id; the first pickable one is at ${file}:2`,
    `NOT PICKED: A-7 (${file}:9): pickable, but --max-parallel 2 were taken first`,
  ]);
  const plain = await runInProcess(["--backlog", file, "--repo-root", "/repo"]);
  equal(plain.stdout.includes("NOT PICKED"), false);
});

Deno.test("--repo-root inside a repo means its top level: nothing lands in the tracked tree", async () => {
  await using s = await scratchRepo(backlogOf([["S-1"]]));
  const ran = await runMain(["--repo-root", join(s.repo, "docs")]);
  equal(ran.code, 0, ran.stderr);
  match(ran.stdout, new RegExp(`^backlog ${join(s.repo, "docs", "gaps.yaml")}: `));
  match(
    ran.stdout,
    new RegExp(`^WOULD DISPATCH: S-1 .* in ${s.repo}/\\.claude/worktrees/s-1 `, "m"),
  );
  const real = await runMain(
    [
      "--repo-root",
      join(s.repo, "docs"),
      "--no-dry-run",
      "--agent-cmd",
      "true",
      "--pr-provider",
      "git",
    ],
    { env: { CHUMP_ALLOW_RUN: "true" } },
  );
  equal(real.code, 0, real.stderr);
  equal(await exists(join(s.repo, "docs", ".claude")), false);
  equal(await exists(join(s.repo, "docs", "sessions")), false);
  equal(await exists(join(s.repo, "sessions", "chump_memory.db")), true);
});

Deno.test("a dry run gives a pick the slug a real run gives it, collisions with earlier ids included", async () => {
  await using dir = await scratch();
  const file = join(dir.path, "b.yaml");
  await Deno.writeTextFile(
    file,
    "gaps:\n  - {id: A_1, priority: P1, status: done}\n  - {id: a-1, priority: P1, status: open}\n" +
      "  - {id: Z-9, priority: P3, status: open}\n",
  );
  const ran = await runInProcess(["--backlog", file, "--repo-root", "/repo"]);
  equal(ran.code, 0, ran.stderr);
  const slug = assignSlugs(["A_1", "a-1", "Z-9"]).get("a-1")!;
  assert(slug.startsWith("a-1-"), slug);
  match(
    ran.stdout,
    new RegExp(`^WOULD DISPATCH: a-1 .* in /repo/\\.claude/worktrees/${slug}  -- `, "m"),
  );
});

Deno.test("watch takes the monitor's flags and means --no-dry-run --watch; dispatch flags are refused", () => {
  const r = parseCli(["watch", "--tick", "5s", "--kill-grace", "2s", "--exit-grace", "1"]);
  assert(r.ok && r.value.kind === "watch");
  equal(r.value.options.noDryRun, true);
  equal(r.value.options.watch, true);
  equal(r.value.options.tickMs, 5000);
  equal(r.value.options.killGraceMs, 2000);
  equal(r.value.options.exitGraceTicks, 1);
  equal(parseError(["watch", "--max-parallel", "3"]), "unknown flag --max-parallel (see --help)");
  equal(parseError(["watch", "--agent-cmd", "x"]), "unknown flag --agent-cmd (see --help)");
  match(parseError(["watch", "--tick", "soon"]), /^--tick: /);
});

Deno.test("--help and --version answer whatever else the line says", async () => {
  const help = await runInProcess(["--help", "--tick", "0"]);
  equal(help.code, 0, help.stderr);
  match(help.stdout, /^chump-orchestrator - /);
  const version = await runInProcess(["--version", "--max-parallel", "0"]);
  equal(version.code, 0, version.stderr);
  const sub = await runInProcess(["status", "--help", "--limit", "0"]);
  equal(sub.code, 0, sub.stderr);
});

Deno.test("simulate's --seed has no upper bound; a run's is a 32-bit seed", () => {
  const sim = parseCli(["simulate", "--world", "w.yaml", "--seed", "5000000000"]);
  equal(sim.ok && sim.value.kind === "simulate" && sim.value.options.seed, 5_000_000_000);
  equal(parseError(["--seed", "5000000000"]), "--seed must be at most 4294967295");
  equal(parseError(["serve", "--port", "070000"]), "--port must be at most 65535, got '70000'");
  equal(parseError(["serve", "--token", ""]), "--token must be at least 8 characters");
  equal(parseError(["simulate", "--world", " "]), "simulate needs --world FILE (see --help)");
});

Deno.test("a CHUMP_LEDGER_URL that is not a PostgreSQL URL is one line and exit 2, before anything is dispatched", async () => {
  await using s = await scratchRepo(backlogOf([["LU-1"]]));
  const ran = await runInProcess(
    ["--repo-root", s.repo, "--no-dry-run", "--agent-cmd", "true"],
    { CHUMP_LEDGER_URL: "garbage://x" },
  );
  equal(ran.code, 2, ran.stderr);
  equal(
    ran.stderr,
    "chump-orchestrator: error: CHUMP_LEDGER_URL wants a PostgreSQL URL " +
      "(postgres://USER@HOST:PORT/DB), got scheme 'garbage:'\n",
  );
  equal(ran.stdout, "");
});

Deno.test("a deadline is shown to the second, never rounded to a coarser unit", () => {
  equal(exactDuration(90_000), "90s");
  equal(exactDuration(1_200_000), "20m");
  equal(exactDuration(5_430_000), "90m30s");
  equal(exactDuration(9_000_000), "2h30m");
  equal(exactDuration(21_600_000), "6h");
  equal(exactDuration(250), "250ms");
});
