/**
 * The repo root read from the disk, with no git spawned: the same answer as
 * `git rev-parse --show-toplevel` in a repo, a subfolder, a linked worktree,
 * a symlinked path and outside any repo; git asked where the environment
 * moves its repository; and a dry run that starts no git at all.
 */
import { equal, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { gitTopLevel, topLevelOnDisk } from "../lib/git/git.ts";
import { gitOk, scratchRepo } from "../testkit/repo.ts";
import { runProcess } from "../testkit/process.ts";
import { runMain } from "./_helpers.ts";

const BACKLOG = "gaps:\n  - { id: G-1, title: t, priority: P1, effort: s, status: open }\n";

/** What git says the top level of `dir` is; null outside a repository. */
async function gitSays(dir: string): Promise<string | null> {
  const r = await runProcess("git", ["rev-parse", "--show-toplevel"], { cwd: dir });
  return r.code === 0 ? r.stdout.trim() : null;
}

Deno.test("the repo root from the disk is git's own answer, in every place git gives one", async () => {
  await using s = await scratchRepo(BACKLOG, "chump-git-");
  const sub = join(s.repo, "docs", "deep");
  await Deno.mkdir(sub, { recursive: true });
  const linked = join(s.dir, "linked");
  await gitOk(["worktree", "add", "--quiet", "-b", "side", linked], s.repo);
  const alias = join(s.dir, "alias");
  await Deno.symlink(s.repo, alias);
  const outside = join(s.dir, "plain");
  await Deno.mkdir(outside);
  for (const dir of [s.repo, sub, linked, alias, outside]) {
    equal(topLevelOnDisk(dir), await gitSays(dir), dir);
    equal(await gitTopLevel(dir), (await gitSays(dir)) ?? undefined, dir);
  }
  equal(topLevelOnDisk(join(s.repo, ".git")), "ask git", "inside .git the disk cannot tell");
});

Deno.test("where the environment moves git's repository, git is asked", () => {
  const was = Deno.env.get("GIT_DIR");
  Deno.env.set("GIT_DIR", "/nowhere");
  try {
    equal(topLevelOnDisk(Deno.cwd()), "ask git");
  } finally {
    if (was === undefined) Deno.env.delete("GIT_DIR");
    else Deno.env.set("GIT_DIR", was);
  }
});

Deno.test("a dry run starts no git: the repo root comes from the disk", async () => {
  await using s = await scratchRepo(BACKLOG, "chump-git-");
  // A git first on PATH that notes each start, then runs the real one.
  const bin = join(s.dir, "bin");
  await Deno.mkdir(bin);
  const marks = join(s.dir, "git-starts");
  const real = (await runProcess("sh", ["-c", "command -v git"], {})).stdout.trim();
  await Deno.writeTextFile(
    join(bin, "git"),
    `#!/bin/sh\necho "$@" >> '${marks}'\nexec '${real}' "$@"\n`,
  );
  await Deno.chmod(join(bin, "git"), 0o755);
  const ran = await runMain(["--repo-root", join(s.repo, "docs")], {
    env: { PATH: `${bin}:${Deno.env.get("PATH")}` },
  });
  equal(ran.code, 0, ran.stderr);
  assert(ran.stdout.includes("WOULD DISPATCH: G-1"), ran.stdout);
  const started = await Deno.readTextFile(marks).catch(() => "");
  equal(started, "", `git was started: ${started}`);
});
