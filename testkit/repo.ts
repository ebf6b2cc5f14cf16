/**
 * Shared by tests/ and bench/: scratch git repositories (a clone of a bare
 * `origin` with one commit on main whose docs/gaps.yaml is the backlog given).
 *
 * @module
 */
import { join } from "node:path";
import { runProcess } from "./process.ts";

/** Environment that gives git an identity in scratch repos. */
export const GIT_ID = {
  GIT_AUTHOR_NAME: "t",
  GIT_AUTHOR_EMAIL: "t@t.invalid",
  GIT_COMMITTER_NAME: "t",
  GIT_COMMITTER_EMAIL: "t@t.invalid",
};

/** A scratch repo: `repo` (a clone of `origin` with one commit on main), removed on dispose. */
export interface ScratchRepo extends AsyncDisposable {
  dir: string;
  repo: string;
  origin: string;
  /** Where a run in `repo` keeps its reflections and leases by default. */
  db: string;
}

/** Run git in `cwd` and return its trimmed stdout; throw on failure (setup only). */
export async function gitOk(args: string[], cwd: string): Promise<string> {
  const r = await runProcess("git", args, { cwd, env: GIT_ID });
  if (r.code !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr}`);
  return r.stdout.trim();
}

/**
 * Make a scratch repo whose backlog is `backlog` (written to docs/gaps.yaml).
 *
 * @param backlog the YAML text of docs/gaps.yaml
 * @param prefix the temp directory's name prefix
 */
export async function scratchRepo(backlog: string, prefix = "chump-e2e-"): Promise<ScratchRepo> {
  const dir = await Deno.makeTempDir({ prefix });
  const origin = join(dir, "origin.git");
  const repo = join(dir, "repo");
  await gitOk(["init", "--quiet", "--bare", "--initial-branch=main", origin], dir);
  await gitOk(["init", "--quiet", "--initial-branch=main", repo], dir);
  await Deno.mkdir(join(repo, "docs"));
  await Deno.writeTextFile(join(repo, "docs", "gaps.yaml"), backlog);
  await Deno.writeTextFile(join(repo, ".gitignore"), "/sessions/\n/.claude/\n");
  for (
    const args of [
      ["add", "."],
      ["commit", "--quiet", "-m", "init"],
      ["remote", "add", "origin", origin],
      ["push", "--quiet", "origin", "main"],
      ["fetch", "--quiet", "origin"],
    ]
  ) await gitOk(args, repo);
  return {
    dir,
    repo,
    origin,
    db: join(repo, "sessions", "chump_memory.db"),
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
