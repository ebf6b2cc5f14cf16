/**
 * Hostile input, end to end: gap ids that try to escape the worktree
 * directory or reach a shell, control characters, huge backlogs and lines,
 * alias bombs, a symlinked worktree directory. Nothing escapes
 * `.claude/worktrees/`, nothing runs through a shell, nothing crashes.
 */
import { deepEqual, equal, match, ok as assert } from "node:assert/strict";
import { dirname, join } from "node:path";
import {
  backlogOf,
  exists,
  gitOk,
  linesStarting,
  orchestrate,
  reflectionRows,
  scratchRepo,
} from "../_e2e.ts";
import { runMain, scratch } from "../_helpers.ts";

Deno.test("hostile gap ids are dispatched safely: one slug under .claude/worktrees, no shell", async () => {
  const canary = `/tmp/chump-pwned-${crypto.randomUUID()}`;
  const ids = [
    "../../x",
    "/abs",
    "a b",
    `x;touch ${canary}-1`,
    `$(touch ${canary}-2)`,
    "`touch " + canary + "-3`",
    "A".repeat(300),
    "ÜBER-ünïcode-✓",
    "...",
    "-rf",
  ];
  const yaml = "gaps:\n" +
    ids.map((id) =>
      `  - id: ${JSON.stringify(id)}\n    title: "line one\\nline two\\u0007\\u001b[2J"\n` +
      "    priority: P1\n    effort: s\n    status: open\n"
    ).join("");
  await using s = await scratchRepo(yaml);
  const ran = await orchestrate(s, ["--max-parallel", "10"]);
  equal(ran.code, 0, `${ran.stdout}\n${ran.stderr}`);
  const worktrees = linesStarting(ran.stdout, "DISPATCHED: ").map((l) =>
    / in (.*) as PID \d+$/.exec(l)![1]
  );
  equal(worktrees.length, ids.length);
  const base = join(s.repo, ".claude", "worktrees");
  for (const wt of worktrees) {
    equal(dirname(wt), base, wt);
    match(wt.slice(base.length + 1), /^[a-z0-9][a-z0-9.-]*$/);
  }
  equal(new Set(worktrees).size, ids.length, "every id got its own worktree");
  for (const n of [1, 2, 3]) equal(await exists(`${canary}-${n}`), false, "no shell ran the id");
  // Nothing was created outside the repo and its origin.
  deepEqual([...Deno.readDirSync(s.dir)].map((e) => e.name).sort(), ["origin.git", "repo"]);
  // Every branch is a valid name under claude/; every reflection keeps the id as written.
  const branches = (await gitOk(["branch", "--list", "claude/*", "--format=%(refname)"], s.repo))
    .split("\n");
  equal(branches.length, ids.length);
  for (const b of branches) await gitOk(["check-ref-format", b], s.repo);
  const rows = reflectionRows(s.db);
  deepEqual([...rows.keys()].sort(), [...ids].sort());
  for (const r of rows.values()) equal(r.directive.includes("\n"), false);
  // Titles with control characters print on one line.
  equal(ran.stdout.includes("\u001b"), false);
});

Deno.test("a symlinked .claude/worktrees is refused: nothing is created where it points", async () => {
  await using s = await scratchRepo(backlogOf([["SYM-1"]]));
  const elsewhere = join(s.dir, "elsewhere");
  await Deno.mkdir(elsewhere);
  await Deno.mkdir(join(s.repo, ".claude"));
  await Deno.symlink(elsewhere, join(s.repo, ".claude", "worktrees"));
  const ran = await orchestrate(s, []);
  equal(ran.code, 1);
  equal(
    linesStarting(ran.stdout, "DISPATCH-FAILED: ")[0],
    `DISPATCH-FAILED: SYM-1: refusing to create worktrees: ${s.repo}/.claude/worktrees is a symlink`,
  );
  deepEqual([...Deno.readDirSync(elsewhere)], []);
});

Deno.test("a 50 MB backlog loads (dry run) and a 1 MB title line prints cut to one line", async () => {
  await using dir = await scratch();
  const file = join(dir.path, "big.yaml");
  const filler = "x".repeat(200);
  const parts = ["gaps:\n"];
  let size = 0;
  for (let i = 0; size < 50 * 1024 * 1024; i++) {
    const gap =
      `  - id: BIG-${i}\n    title: gap ${i}\n    priority: P${1 + (i % 3)}\n    effort: s\n` +
      `    status: ${i % 3 ? "done" : "open"}\n    description: ${filler}\n`;
    parts.push(gap);
    size += gap.length;
  }
  parts.push(
    `  - id: LONG-1\n    title: ${"y".repeat(1024 * 1024)}\n    priority: P0\n    status: open\n`,
  );
  await Deno.writeTextFile(file, parts.join(""));
  const ran = await runMain(["--backlog", file, "--repo-root", "/repo", "--max-parallel", "3"]);
  equal(ran.code, 0, ran.stderr);
  const lines = ran.stdout.trimEnd().split("\n");
  match(lines[0], /^backlog .*big\.yaml: gaps=\d{6} open=\d+ done=\d+ pickable=\d+ picked=3/);
  equal(
    lines[1].startsWith(
      "WOULD DISPATCH: LONG-1 (prio=P0 effort=) in /repo/.claude/worktrees/long-1  -- yyy",
    ),
    true,
  );
  assert(lines[1].length < 400, `cut to one short line: ${lines[1].length}`);
});

Deno.test("an alias bomb (billion laughs) loads without expanding anything", async () => {
  await using dir = await scratch();
  const file = join(dir.path, "lol.yaml");
  let text = 'l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n';
  for (let i = 1; i <= 9; i++) {
    text += `l${i}: &l${i} [${Array(10).fill(`*l${i - 1}`).join(",")}]\n`;
  }
  text += "gaps:\n  - id: LOL-1\n    title: *l0\n    priority: P1\n    status: open\n";
  await Deno.writeTextFile(file, text);
  const ran = await runMain(["--backlog", file]);
  equal(ran.code, 2);
  equal(
    ran.stderr,
    `chump-orchestrator: error: ${file}:12: gap LOL-1: 'title' must be a single value, found a list\n`,
  );
  const safe = text.replace("title: *l0", "payload: *l9\n    title: ok");
  await Deno.writeTextFile(file, safe);
  const ok = await runMain(["--backlog", file, "--repo-root", "/repo"]);
  equal(ok.code, 0, ok.stderr);
  match(ok.stdout, /WOULD DISPATCH: LOL-1 /);
});

Deno.test("priorities and efforts named like Object.prototype members: warnings, no crash", async () => {
  await using dir = await scratch();
  const file = join(dir.path, "proto.yaml");
  await Deno.writeTextFile(
    file,
    "gaps:\n" +
      "  - {id: PROTO-1, priority: constructor, effort: s, status: open}\n" +
      "  - {id: PROTO-2, priority: __proto__, effort: s, status: open}\n" +
      "  - {id: PROTO-3, priority: P1, effort: constructor, status: open}\n" +
      "  - {id: PROTO-4, priority: P1, effort: __proto__, status: open, __proto__: {x: 1}}\n",
  );
  const ran = await runMain(["--backlog", file, "--repo-root", "/repo", "--max-parallel", "9"]);
  equal(ran.code, 0, ran.stderr);
  deepEqual(linesStarting(ran.stdout, "WOULD DISPATCH:").map((l) => l.split(" ")[2]), [
    "PROTO-3",
    "PROTO-4",
  ]);
  equal(
    ran.stderr,
    `warning: ${file}:2: gap PROTO-1: unknown priority 'constructor' (P0, P1, P2, ...); it is ` +
      `never picked\n` +
      `warning: ${file}:3: gap PROTO-2: unknown priority '__proto__' (P0, P1, P2, ...); it is ` +
      `never picked\n` +
      `warning: ${file}:4: gap PROTO-3: unknown effort 'constructor' (xs, s, m, l, xl); its ` +
      `deadline is effort m's\n` +
      `warning: ${file}:5: gap PROTO-4: unknown effort '__proto__' (xs, s, m, l, xl); its ` +
      `deadline is effort m's\n`,
  );
});
