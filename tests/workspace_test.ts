/**
 * git/workspace.ts against real repositories: creating worktrees (and never
 * leaving a branch behind when that fails, never overwriting a leftover
 * branch's work) and the worktree rule (nothing that holds a commit is removed:
 * not a branch, not a detached HEAD, not a reflog).
 */
import { deepEqual, equal, match, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { cleanUpWorktree, gitWorkspace } from "../lib/git/workspace.ts";
import { exists, gitOk } from "./_e2e.ts";
import { scratch } from "./_helpers.ts";

/** A repo with one commit, a workspace on it, and the worktree of branch `claude/w`. */
async function fixture() {
  const dir = await scratch("chump-ws-");
  const repo = join(dir.path, "repo");
  await gitOk(["init", "--quiet", "--initial-branch=main", repo], dir.path);
  await Deno.writeTextFile(join(repo, ".gitignore"), "/.claude/\n");
  await gitOk(["add", "."], repo);
  await gitOk(["commit", "--quiet", "-m", "init"], repo);
  const start = await gitOk(["rev-parse", "HEAD"], repo);
  const ws = gitWorkspace(repo);
  const worktree = join(repo, ".claude", "worktrees", "w");
  const where = { worktree, branch: "claude/w", startCommit: start };
  let n = 0;
  return {
    dir,
    repo,
    start,
    ws,
    worktree,
    where,
    /** One commit in `cwd` (the worktree by default). */
    async commit(cwd = worktree): Promise<string> {
      await Deno.writeTextFile(join(cwd, `f${++n}.txt`), `${n}\n`);
      await gitOk(["add", "."], cwd);
      await gitOk(["commit", "--quiet", "-m", `work ${n}`], cwd);
      return await gitOk(["rev-parse", "HEAD"], cwd);
    },
    /**
     * Add the worktree of `branch` at `path` (the fixture's by default), detach
     * its HEAD and commit there once; returns that commit.
     */
    async detachedCommit(path = worktree, on = ws, branch = "claude/w"): Promise<string> {
      assert((await on.addWorktree(branch, path, start)).ok);
      await gitOk(["checkout", "--quiet", "--detach"], path);
      return await this.commit(path);
    },
    branches: async () =>
      (await gitOk(["branch", "--list", "claude/*", "--format=%(refname:short)"], repo))
        .split("\n").filter((b) => b !== ""),
    [Symbol.asyncDispose]: () => dir[Symbol.asyncDispose](),
  };
}

type Fixture = Awaited<ReturnType<typeof fixture>>;

/** Copy a directory tree of plain files. */
async function copyDir(from: string, to: string): Promise<void> {
  await Deno.mkdir(to);
  for await (const entry of Deno.readDir(from)) {
    const [a, b] = [join(from, entry.name), join(to, entry.name)];
    if (entry.isDirectory) await copyDir(a, b);
    else await Deno.copyFile(a, b);
  }
}

/** Does the repository still have commit `sha`? */
async function hasCommit(repo: string, sha: string): Promise<boolean> {
  const out = await new Deno.Command("git", {
    args: ["cat-file", "-e", `${sha}^{commit}`],
    cwd: repo,
    stdout: "null",
    stderr: "null",
  }).output();
  return out.success;
}

Deno.test("worktree rule: a worktree and branch without work are removed", async () => {
  await using fx = await fixture();
  assert((await fx.ws.addWorktree("claude/w", fx.worktree, fx.start)).ok);
  equal(await cleanUpWorktree(fx.ws, fx.where, { shipped: false }), undefined);
  equal(await exists(fx.worktree), false);
  deepEqual(await fx.branches(), []);
});

Deno.test("worktree rule: commits made on a detached HEAD keep the worktree", async () => {
  await using fx = await fixture();
  const sha = await fx.detachedCommit();
  const kept = await cleanUpWorktree(fx.ws, fx.where, { shipped: false });
  equal(kept, `${fx.worktree} (1 commit on a detached HEAD)`);
  assert(await exists(fx.worktree));
  equal(await gitOk(["rev-parse", "HEAD"], fx.worktree), sha);
  // A ship does not make detached commits safe either: they are on no branch.
  equal(await cleanUpWorktree(fx.ws, fx.where, { shipped: true }), kept);
});

Deno.test("worktree rule: commits only a reflog still reaches keep the worktree", async () => {
  await using fx = await fixture();
  // Committed on a detached HEAD, then went back to the (empty) branch.
  const detached = await fx.detachedCommit();
  await gitOk(["checkout", "--quiet", "claude/w"], fx.worktree);
  // Committed on the branch, then reset it back to the start.
  const reset = await fx.commit();
  await gitOk(["reset", "--quiet", "--hard", fx.start], fx.worktree);
  equal(
    await cleanUpWorktree(fx.ws, fx.where, { shipped: false }),
    `${fx.worktree} (2 commits only in a reflog)`,
  );
  assert(await exists(fx.worktree));
  deepEqual(await fx.branches(), ["claude/w"]);
  assert(await hasCommit(fx.repo, detached) && await hasCommit(fx.repo, reset));
});

Deno.test("worktree rule: commits on the branch keep it, with the existing wording", async () => {
  await using fx = await fixture();
  assert((await fx.ws.addWorktree("claude/w", fx.worktree, fx.start)).ok);
  await fx.commit();
  equal(
    await cleanUpWorktree(fx.ws, fx.where, { shipped: false }),
    `${fx.worktree} (1 commit on claude/w)`,
  );
  // Shipped: the branch holds merged work and stays; the directory goes.
  equal(await cleanUpWorktree(fx.ws, fx.where, { shipped: true }), undefined);
  equal(await exists(fx.worktree), false);
  deepEqual(await fx.branches(), ["claude/w"]);
});

Deno.test("worktree rule: a worktree whose directory is gone is unregistered; its branch goes unless it holds work", async () => {
  await using fx = await fixture();
  assert((await fx.ws.addWorktree("claude/w", fx.worktree, fx.start)).ok);
  await Deno.remove(fx.worktree, { recursive: true });
  equal(await cleanUpWorktree(fx.ws, fx.where, { shipped: false }), undefined);
  deepEqual(await fx.branches(), []);
  equal((await gitOk(["worktree", "list", "--porcelain"], fx.repo)).includes(fx.worktree), false);

  // Gone, but the branch holds a commit: the branch is kept.
  assert((await fx.ws.addWorktree("claude/w", fx.worktree, fx.start)).ok);
  await fx.commit();
  await Deno.remove(fx.worktree, { recursive: true });
  equal(
    await cleanUpWorktree(fx.ws, fx.where, { shipped: false }),
    "branch claude/w (1 commit beyond its start)",
  );
  deepEqual(await fx.branches(), ["claude/w"]);
});

Deno.test("worktree rule: a gone directory whose HEAD git still holds keeps it: detached commits, a reflog", async () => {
  // Gone by removal, and gone under a file where the worktrees folder was: git keeps the
  // worktree's HEAD and reflog in its registration, which removing the worktree would drop.
  const goneWays: [string, (fx: Fixture) => Promise<void>][] = [
    ["removed", (fx) => Deno.remove(fx.worktree, { recursive: true })],
    ["under a file", async (fx) => {
      await Deno.remove(join(fx.repo, ".claude", "worktrees"), { recursive: true });
      await Deno.writeTextFile(join(fx.repo, ".claude", "worktrees"), "");
    }],
  ];
  for (const [how, makeGone] of goneWays) {
    await using fx = await fixture();
    const detached = await fx.detachedCommit();
    await makeGone(fx);
    const kept = `${fx.worktree} (1 commit on a detached HEAD)`;
    equal(await cleanUpWorktree(fx.ws, fx.where, { shipped: false }), kept, how);
    equal(await cleanUpWorktree(fx.ws, fx.where, { shipped: true }), kept, how);
    equal(await gitOk(["rev-parse", "worktrees/w/HEAD"], fx.repo), detached, how);
    deepEqual(await fx.branches(), ["claude/w"], how);
  }
  // The repo reached through a symlink: git recorded the resolved path, the lease has the other.
  {
    await using fx = await fixture();
    const link = join(fx.dir.path, "link");
    await Deno.symlink(fx.repo, link);
    const worktree = join(link, ".claude", "worktrees", "w");
    const ws = gitWorkspace(link);
    await fx.detachedCommit(worktree, ws);
    await Deno.remove(worktree, { recursive: true });
    equal(
      await cleanUpWorktree(ws, { ...fx.where, worktree }, { shipped: false }),
      `${worktree} (1 commit on a detached HEAD)`,
    );
  }
  // Only the gone worktree's reflog reaches the commit (HEAD went back to the empty branch).
  await using fx = await fixture();
  const detached = await fx.detachedCommit();
  await gitOk(["checkout", "--quiet", "claude/w"], fx.worktree);
  await Deno.remove(fx.worktree, { recursive: true });
  equal(
    await cleanUpWorktree(fx.ws, fx.where, { shipped: false }),
    "branch claude/w (1 commit only in a reflog)",
  );
  assert(
    (await gitOk(["log", "-g", "--format=%H", "worktrees/w/HEAD"], fx.repo)).includes(detached),
  );
});

Deno.test("worktree rule: a gone worktree's registration is found however git recorded it, and only its own", async () => {
  /** A gone worktree `w` with one commit on its detached HEAD. */
  async function goneWithDetachedCommit(fx: Fixture) {
    const sha = await fx.detachedCommit();
    await Deno.remove(fx.worktree, { recursive: true });
    return sha;
  }
  {
    // A registration folder without its gitdir file (a broken one) hides nothing.
    await using fx = await fixture();
    await goneWithDetachedCommit(fx);
    await Deno.mkdir(join(fx.repo, ".git", "worktrees", "broken"));
    equal(
      await cleanUpWorktree(fx.ws, fx.where, { shipped: false }),
      `${fx.worktree} (1 commit on a detached HEAD)`,
    );
  }
  {
    // A newer git may record the path relative to the registration's folder.
    await using fx = await fixture();
    await goneWithDetachedCommit(fx);
    await Deno.writeTextFile(
      join(fx.repo, ".git", "worktrees", "w", "gitdir"),
      "../../../.claude/worktrees/w/.git\n",
    );
    equal(
      await cleanUpWorktree(fx.ws, fx.where, { shipped: false }),
      `${fx.worktree} (1 commit on a detached HEAD)`,
    );
  }
  {
    // The repo moved, a symlink left where it was: git recorded the old path, the lease has the new.
    await using fx = await fixture();
    const sha = await goneWithDetachedCommit(fx);
    const moved = join(fx.dir.path, "moved");
    await Deno.rename(fx.repo, moved);
    await Deno.symlink(moved, fx.repo);
    const worktree = join(moved, ".claude", "worktrees", "w");
    equal(
      await cleanUpWorktree(gitWorkspace(moved), { ...fx.where, worktree }, { shipped: false }),
      `${worktree} (1 commit on a detached HEAD)`,
    );
    assert(await hasCommit(moved, sha));
    equal(await gitOk(["rev-parse", "worktrees/w/HEAD"], moved), sha);
  }
  {
    // Two registrations claim the path (copied by hand): which one git would remove is unknown.
    await using fx = await fixture();
    assert((await fx.ws.addWorktree("claude/w", fx.worktree, fx.start)).ok);
    await Deno.remove(fx.worktree, { recursive: true });
    const registrations = join(fx.repo, ".git", "worktrees");
    await copyDir(join(registrations, "w"), join(registrations, "w-copy"));
    equal(
      await cleanUpWorktree(fx.ws, fx.where, { shipped: false }),
      `${fx.worktree} (could not tell whether it holds commits)`,
    );
  }
  {
    // Two registrations name the path, one through a symlink: git could remove either.
    await using fx = await fixture();
    assert((await fx.ws.addWorktree("claude/w", fx.worktree, fx.start)).ok);
    await Deno.remove(fx.worktree, { recursive: true });
    const registrations = join(fx.repo, ".git", "worktrees");
    const link = join(fx.dir.path, "link");
    await Deno.symlink(fx.repo, link);
    await copyDir(join(registrations, "w"), join(registrations, "v"));
    await Deno.writeTextFile(
      join(registrations, "v", "gitdir"),
      join(link, ".claude", "worktrees", "w", ".git") + "\n",
    );
    equal(
      await cleanUpWorktree(fx.ws, fx.where, { shipped: false }),
      `${fx.worktree} (could not tell whether it holds commits)`,
    );
  }
  {
    // Its HEAD on a branch since deleted, and a tag named like the per-worktree ref: git would
    // read the tag as that HEAD; the registration's own HEAD says nothing, so nothing is removed.
    await using fx = await fixture();
    const sha = await goneWithDetachedCommit(fx);
    await gitOk(["tag", "worktrees/w/HEAD", fx.start], fx.repo);
    await Deno.writeTextFile(
      join(fx.repo, ".git", "worktrees", "w", "HEAD"),
      "ref: refs/heads/gone\n",
    );
    equal(
      await cleanUpWorktree(fx.ws, fx.where, { shipped: true }),
      `${fx.worktree} (could not tell whether it holds commits)`,
    );
    assert(await hasCommit(fx.repo, sha));
    assert(await exists(join(fx.repo, ".git", "worktrees", "w")));
  }
  {
    // A locked registration of a gone worktree without work: git refuses to remove it, and the
    // cleanup says so instead of reporting it removed.
    await using fx = await fixture();
    assert((await fx.ws.addWorktree("claude/w", fx.worktree, fx.start)).ok);
    await gitOk(["worktree", "lock", fx.worktree], fx.repo);
    await Deno.remove(fx.worktree, { recursive: true });
    match(
      (await cleanUpWorktree(fx.ws, fx.where, { shipped: false })) ?? "",
      /^branch claude\/w \(git worktree remove .*locked/,
    );
    assert(await exists(join(fx.repo, ".git", "worktrees", "w")));
  }
  {
    // Another worktree's registration (w2, holding a commit) is neither counted nor removed for w.
    await using fx = await fixture();
    const other = join(fx.repo, ".claude", "worktrees", "w2");
    const sha = await fx.detachedCommit(other, fx.ws, "claude/w2");
    await Deno.remove(other, { recursive: true });
    equal(await cleanUpWorktree(fx.ws, fx.where, { shipped: false }), undefined);
    equal(await gitOk(["rev-parse", "worktrees/w2/HEAD"], fx.repo), sha);
  }
});

Deno.test("worktree rule: commits only the worktree's own refs reach keep it, there or gone, shipped or not", async () => {
  for (
    const [ref, gone] of [
      ["refs/worktree/keep", false],
      ["refs/worktree/keep", true],
      ["refs/rewritten/keep", false], // a rebase's labels
      ["refs/rewritten/keep", true],
    ] as const
  ) {
    await using fx = await fixture();
    assert((await fx.ws.addWorktree("claude/w", fx.worktree, fx.start)).ok);
    const sha = await fx.commit();
    await gitOk(["update-ref", ref, sha], fx.worktree);
    await gitOk(["reset", "--quiet", "--hard", fx.start], fx.worktree);
    if (gone) await Deno.remove(fx.worktree, { recursive: true });
    // Shipped: the reflogs are not counted, so only the worktree's own ref reaches the commit.
    equal(
      await cleanUpWorktree(fx.ws, fx.where, { shipped: true }),
      `${fx.worktree} (1 commit only on its own refs)`,
      `${ref} ${gone ? "gone" : "there"}`,
    );
    assert(await hasCommit(fx.repo, sha));
  }
  // A gone worktree's HEAD on its own ref: git would read the main worktree's ref of that name.
  await using fx = await fixture();
  assert((await fx.ws.addWorktree("claude/w", fx.worktree, fx.start)).ok);
  await gitOk(["symbolic-ref", "HEAD", "refs/worktree/x"], fx.worktree);
  const sha = await fx.commit();
  await gitOk(["update-ref", "refs/worktree/x", fx.start], fx.repo);
  await Deno.remove(fx.worktree, { recursive: true });
  equal(
    await cleanUpWorktree(fx.ws, fx.where, { shipped: true }),
    `${fx.worktree} (could not tell whether it holds commits)`,
  );
  assert(await hasCommit(fx.repo, sha));
});

Deno.test("worktree rule: a worktree the disk cannot answer for (a symlink loop above it) is kept", async () => {
  await using fx = await fixture();
  assert((await fx.ws.addWorktree("claude/w", fx.worktree, fx.start)).ok);
  const worktrees = join(fx.repo, ".claude", "worktrees");
  const moved = join(fx.dir.path, "moved");
  await Deno.rename(worktrees, moved);
  await Deno.symlink(worktrees, worktrees); // its own target: every path under it is a loop
  equal(
    await cleanUpWorktree(fx.ws, fx.where, { shipped: false }),
    `${fx.worktree} (could not tell whether it holds commits)`,
  );
  deepEqual(await fx.branches(), ["claude/w"]);
  assert((await gitOk(["worktree", "list", "--porcelain"], fx.repo)).includes(fx.worktree));
});

Deno.test("a directory that is not the worktree (its .git gone) is never judged by the enclosing repo", async () => {
  await using fx = await fixture();
  assert((await fx.ws.addWorktree("claude/w", fx.worktree, fx.start)).ok);
  await Deno.writeTextFile(join(fx.worktree, "notes.txt"), "uncommitted\n");
  await Deno.remove(join(fx.worktree, ".git"));
  match(
    (await cleanUpWorktree(fx.ws, fx.where, { shipped: false }))!,
    /could not tell whether it holds commits/,
  );
  assert(await exists(join(fx.worktree, "notes.txt")));
});

Deno.test("a failed git worktree add does not leave its new branch behind", async () => {
  await using fx = await fixture();
  // Something already sits at the worktree path.
  await Deno.mkdir(fx.worktree, { recursive: true });
  await Deno.writeTextFile(join(fx.worktree, "stray.txt"), "not ours\n");
  const r = await fx.ws.addWorktree("claude/w", fx.worktree, fx.start);
  assert(!r.ok);
  match(r.error, /^git worktree add claude\/w: fatal: '.*' already exists$/);
  deepEqual(await fx.branches(), [], "the branch git created is rolled back");
  equal(await Deno.readTextFile(join(fx.worktree, "stray.txt")), "not ours\n");
  // Once the path is free, the same gap can be dispatched again.
  await Deno.remove(fx.worktree, { recursive: true });
  assert((await fx.ws.addWorktree("claude/w", fx.worktree, fx.start)).ok);
});

Deno.test("a leftover branch without commits beyond the base is reused, moved to the start", async () => {
  await using fx = await fixture();
  const old = fx.start;
  await fx.commit(fx.repo); // the base moved on since the leftover was made
  const start = await gitOk(["rev-parse", "HEAD"], fx.repo);
  await gitOk(["branch", "claude/w", old], fx.repo);
  const r = await fx.ws.addWorktree("claude/w", fx.worktree, start);
  assert(r.ok, r.ok ? "" : r.error);
  equal(await gitOk(["rev-parse", "HEAD"], fx.worktree), start);
  equal(await gitOk(["rev-parse", "--abbrev-ref", "HEAD"], fx.worktree), "claude/w");
});

Deno.test("a leftover branch with commits is refused and left exactly as it was", async () => {
  await using fx = await fixture();
  const side = join(fx.dir.path, "side");
  await gitOk(["worktree", "add", "--quiet", "-b", "claude/w", side, fx.start], fx.repo);
  const work = await fx.commit(side);
  await gitOk(["worktree", "remove", side], fx.repo);
  const r = await fx.ws.addWorktree("claude/w", fx.worktree, fx.start);
  assert(!r.ok);
  equal(
    r.error,
    "git worktree add claude/w: refused: branch claude/w already exists with 1 commit beyond " +
      "the base (left as it is: merge or delete it to dispatch this gap again)",
  );
  equal(await gitOk(["rev-parse", "claude/w"], fx.repo), work);
  equal(await exists(fx.worktree), false);
});
