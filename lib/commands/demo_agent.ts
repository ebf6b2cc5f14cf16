/**
 * The demo agent: what the self-test and the end-to-end tests dispatch
 * instead of a real coding agent. It is the program itself
 * (`chump-orchestrator demo-agent`), so it works from the compiled binary
 * with no checkout. Its behaviour is chosen per gap, so every row of the
 * monitor's table can be exercised with real processes and real git:
 *
 * - `ship`: commit a file, rebase onto the base ref and push it there (the
 *   `git` provider then sees the branch merged); exit 0
 * - `ship-then-fail`: ship, then exit 1 (the merged PR must still win)
 * - `commit`: commit, exit 0 without shipping
 * - `noop`: exit 0 without a commit
 * - `fail`: print an ERROR line to stderr, exit 1
 * - `say-both`: print a WARN line to stderr, then a line to stdout, exit 4
 * - `fail-after-commit`: commit, print an ERROR line, exit 1
 * - `detach-commit-fail`: detach HEAD, commit there (on no branch), exit 1
 * - `hang`: print a WARN line and sleep until killed
 * - `hang-commit`: commit, then sleep until killed
 * - `hang-child`: start a `sleep` grandchild in its process group, then sleep
 * - `bg-child-fail`: start a background `sleep` in its process group, exit 1
 *   (the `sleep` outlives it unless the orchestrator ends the whole group)
 * - `escape:<then>`: start a `sleep` in a session of its own (out of its
 *   process group, as `setsid` does), then behave as `<then>`
 * - `stubborn`: ignore SIGTERM and sleep (only SIGKILL ends it)
 * - `flood:<MB>`: write MB megabytes to stderr (one ERROR line in ten), exit 1
 * - `sleep:<ms>:<then>`: wait, then behave as `<then>`
 * - `rate-limited`: print an API's 429 rate-limit error, exit 1 (a cascade's retry)
 * - `transient`: print a connection-reset error, exit 1
 * - `gate:<then>`: say it is ready, wait until `<ready dir>/<gap id>.go`
 *   exists, then behave as `<then>` (a test decides when an agent acts, e.g.
 *   after its orchestrator died)
 * - `burn:<ms>`: say it is ready, then one more assistant turn (tokens) every
 *   `<ms>` until killed (a structured session whose cost grows)
 * - `max-turns`: a few turns, then end its session with `error_max_turns`, exit 1
 *
 * Structured sessions: started as Claude Code is (`--output-format
 * stream-json`) or as `codex exec --json` is, it speaks that format on
 * stdout (cost/transcript.ts): its start, one assistant turn (tokens from
 * `CHUMP_DEMO_TOKENS`, `in,out,cache_read,cache_write`), its behaviour's
 * turns, then its end, reporting `CHUMP_DEMO_COST_USD` as its cost (Claude;
 * default its tokens at its model's built-in price), or nothing with
 * `CHUMP_DEMO_COST_USD=none`. So a fake `claude` on PATH is a one-line
 * script that runs `demo-agent "$@"`.
 *
 * The behaviour comes from `--behaviour B`, else from `CHUMP_DEMO_PLAN`
 * (`ID=B,ID2=B2`; `ID#1=B` for fix round 1 of that gap, `CHUMP_FIX_ROUND`),
 * else from the gap id (`X-HANG-1` hangs), else `ship`.
 *
 * Readiness: with `CHUMP_DEMO_READY_DIR` set, the behaviours that wait
 * (`hang`, `hang-commit`, `hang-child`, `stubborn`) and `bg-child-fail`
 * write `<dir>/<gap id>.ready` (holding the agent's pid) once they have done
 * what they do first (committed, started the child, installed the SIGTERM
 * handler), so a test waits for that file instead of a fixed time.
 *
 * @module
 */
import { join } from "../util/path.ts";
import { git, gitReason } from "../git/git.ts";
import { envVar } from "../util/env.ts";
import { errorMessage } from "../util/result.ts";
import { sleep } from "../util/sleep.ts";
import { type Voice, voiceFor } from "./_demo_voice.ts";

/** Pushes race when agents ship in parallel; each retry re-fetches and rebases. */
const PUSH_ATTEMPTS = 30;

const IDENTITY = ["-c", "user.name=chump demo agent", "-c", "user.email=demo-agent@chump.invalid"];

/** Pick the behaviour for a gap. */
function behaviourFor(gapId: string, plan: string | undefined, flag?: string): string {
  if (flag) return flag;
  // A fix round's own entry first (`ID#1=B`: what the agent does in round 1).
  const round = envVar("CHUMP_FIX_ROUND");
  const keys = round ? [`${gapId}#${round}`, gapId] : [gapId];
  for (const key of keys) {
    for (const entry of (plan ?? "").split(",")) {
      const eq = entry.lastIndexOf("=");
      if (eq > 0 && entry.slice(0, eq).trim() === key) return entry.slice(eq + 1).trim();
    }
  }
  const id = gapId.toLowerCase();
  for (const b of [...BEHAVIOURS].sort((a, b) => b.length - a.length)) {
    if (id.includes(b)) return b;
  }
  return "ship";
}

/**
 * Run the demo agent in the current directory (a dispatched worktree).
 *
 * @param args arguments after `demo-agent`
 * @returns the exit code
 * @example
 * ```ts
 * const code = await runDemoAgent(["--behaviour", "noop"]);
 * ```
 */
export async function runDemoAgent(args: readonly string[]): Promise<number> {
  const flagAt = args.indexOf("--behaviour");
  const flag = flagAt >= 0 ? args[flagAt + 1] : undefined;
  const gapId = envVar("CHUMP_GAP_ID") ?? "DEMO-0";
  const behaviour = behaviourFor(gapId, envVar("CHUMP_DEMO_PLAN"), flag);
  const voice = voiceFor(args);
  let code: number;
  try {
    voice.begin();
    code = await act(behaviour, gapId, voice);
  } catch (e) {
    console.error(`demo-agent ERROR: ${errorMessage(e)}`);
    code = 1;
  }
  voice.finish(code);
  return code;
}

async function act(behaviour: string, gapId: string, voice: Voice): Promise<number> {
  const [name, ...params] = behaviour.split(":");
  const run = Object.hasOwn(ACTS, name) ? ACTS[name] : undefined;
  if (run === undefined) {
    console.error(`ERROR: demo-agent: unknown behaviour '${behaviour}'`);
    return 2;
  }
  return await run({ cwd: Deno.cwd(), gapId, params, voice });
}

/** What a behaviour acts on. */
interface Act {
  cwd: string;
  gapId: string;
  /** What follows its name (`sleep:500:ship` -> ["500", "ship"]). */
  params: string[];
  /** How it speaks on stdout. */
  voice: Voice;
}

/** Each behaviour: what the agent does, and its exit code. */
const ACTS: Readonly<Record<string, (a: Act) => Promise<number>>> = {
  ship: async ({ cwd, gapId, voice }) => {
    await commit(cwd, gapId);
    await ship(cwd);
    voice.say("shipped");
    return 0;
  },
  "ship-then-fail": async ({ cwd, gapId }) => {
    await commit(cwd, gapId);
    await ship(cwd);
    console.error("ERROR: failed after shipping (the merged work still counts)");
    return 1;
  },
  commit: async ({ cwd, gapId }) => {
    await commit(cwd, gapId);
    return 0;
  },
  noop: ({ voice }) => {
    voice.say("nothing to do");
    return Promise.resolve(0);
  },
  fail: ({ gapId }) => failWith(`ERROR: demo failure for ${gapId}`),
  "say-both": ({ gapId, voice }) => {
    console.error(`WARN: demo agent of ${gapId} on stderr`);
    voice.say(`demo agent of ${gapId} on stdout`);
    return Promise.resolve(4);
  },
  "rate-limited": () =>
    failWith(
      'ERROR: API Error: 429 {"type":"error","error":{"type":"rate_limit_error",' +
        '"message":"Number of requests has exceeded your rate limit"}}',
    ),
  transient: () =>
    failWith("ERROR: request to the model failed: read ECONNRESET (connection reset by peer)"),
  "fail-after-commit": async ({ cwd, gapId }) => {
    await commit(cwd, gapId);
    return failWith(`ERROR: demo failure after a commit for ${gapId}`);
  },
  "detach-commit-fail": async ({ cwd, gapId }) => {
    await must(["checkout", "--quiet", "--detach"], cwd);
    await commit(cwd, gapId);
    return failWith(`ERROR: demo failure after a commit on a detached HEAD for ${gapId}`);
  },
  hang: ({ gapId }) => hang(gapId, "WARN: demo agent hanging until killed"),
  "hang-commit": async ({ cwd, gapId }) => {
    await commit(cwd, gapId);
    return await hang(gapId, "WARN: demo agent committed, now hanging");
  },
  "hang-child": ({ gapId }) => {
    startSleepChild();
    return hang(gapId, "WARN: demo agent started a child, now hanging");
  },
  "bg-child-fail": async ({ gapId }) => {
    startSleepChild();
    console.error(`ERROR: demo failure for ${gapId}, a background child left running`);
    await ready(gapId);
    return 1;
  },
  escape: async ({ gapId, params, voice }) => {
    startSleepChild({ ownSession: true });
    return await act(params.join(":") || "ship", gapId, voice);
  },
  stubborn: ({ gapId }) => {
    Deno.addSignalListener("SIGTERM", () => console.error("WARN: ignoring SIGTERM"));
    return hang(gapId, "WARN: demo agent ignores SIGTERM");
  },
  flood: async ({ params }) => {
    await flood(Number(params[0] ?? "1"));
    return 1;
  },
  sleep: async ({ gapId, params, voice }) => {
    await sleep(Number(params[0] ?? "0"));
    return await act(params.slice(1).join(":") || "ship", gapId, voice);
  },
  gate: async ({ gapId, params, voice }) => {
    await ready(gapId);
    await gate(gapId);
    return await act(params.join(":") || "ship", gapId, voice);
  },
  burn: async ({ gapId, params, voice }) => {
    await ready(gapId);
    for (;;) {
      await sleep(Number(params[0] ?? "200") || 200);
      voice.turn();
    }
  },
  "max-turns": ({ voice }) => {
    voice.turn();
    voice.turn();
    voice.failAs = "error_max_turns";
    voice.say("Reached the maximum number of turns");
    return Promise.resolve(1);
  },
};

/** Every behaviour the demo agent knows. */
const BEHAVIOURS: readonly string[] = Object.keys(ACTS);

/** Say `line` on stderr and fail (exit 1). */
function failWith(line: string): Promise<number> {
  console.error(line);
  return Promise.resolve(1);
}

/** Say `line` on stderr, say it is ready, then run until killed. */
async function hang(gapId: string, line: string): Promise<number> {
  console.error(line);
  await ready(gapId);
  return await forever();
}

async function commit(cwd: string, gapId: string): Promise<void> {
  const file = `demo-${(envVar("CHUMP_BRANCH") ?? gapId).replace(/[^A-Za-z0-9.-]+/g, "-")}.txt`;
  await Deno.writeTextFile(`${cwd}/${file}`, `work for ${gapId}\n`);
  await must(["add", "--", file], cwd);
  await must([...IDENTITY, "commit", "--quiet", "-m", `demo work for ${gapId}`], cwd);
}

/** Rebase onto the base ref and push to it, retrying when another agent pushed first. */
async function ship(cwd: string): Promise<void> {
  const base = envVar("CHUMP_BASE_REF") ?? "origin/main";
  const slash = base.indexOf("/");
  const [remote, branch] = slash > 0 ? [base.slice(0, slash), base.slice(slash + 1)] : ["", base];
  for (let i = 1; i <= PUSH_ATTEMPTS; i++) {
    if (remote) await git(["fetch", "--quiet", remote, branch], cwd);
    const rebase = await git([...IDENTITY, "rebase", "--quiet", base], cwd);
    if (rebase.code !== 0) {
      await git(["rebase", "--abort"], cwd);
      throw new Error(`rebase onto ${base} failed: ${gitReason(rebase)}`);
    }
    const push = remote
      ? await git(["push", "--quiet", remote, `HEAD:${branch}`], cwd)
      : await git(["update-ref", `refs/heads/${branch}`, "HEAD"], cwd);
    if (push.code === 0) {
      if (remote) await git(["fetch", "--quiet", remote, branch], cwd);
      return;
    }
    await sleep(20 * i);
  }
  throw new Error(`could not push to ${base} after ${PUSH_ATTEMPTS} attempts`);
}

async function flood(megabytes: number): Promise<void> {
  const line = (
    n: number,
  ) => (n % 10 === 0 ? `ERROR flood line ${n}\n` : `info flood line ${n} ........\n`);
  const enc = new TextEncoder();
  let n = 0;
  const target = megabytes * 1024 * 1024;
  const writer = Deno.stderr;
  for (let written = 0; written < target;) {
    let chunk = "";
    while (chunk.length < 64 * 1024) chunk += line(n++);
    const bytes = enc.encode(chunk);
    let off = 0;
    while (off < bytes.length) off += await writer.write(bytes.subarray(off));
    written += bytes.length;
  }
  console.error(`FAIL: flood done after ${n} lines`);
}

async function must(args: string[], cwd: string): Promise<void> {
  const r = await git(args, cwd);
  if (r.code !== 0) {
    throw new Error(`git ${args.filter((a) => !a.includes("=")).join(" ")}: ${gitReason(r)}`);
  }
}

/**
 * A `sleep` child in the agent's own process group (with `ownSession`: in
 * a session of its own, escaped from it), its streams on /dev/null so it
 * holds none of the agent's pipes.
 */
function startSleepChild(options: { ownSession?: boolean } = {}): void {
  const child = new Deno.Command("sleep", {
    args: ["3600"],
    stdin: "null",
    stdout: "null",
    stderr: "null",
    // A session of its own (setsid): out of the agent's process group.
    detached: options.ownSession === true,
  }).spawn();
  child.unref();
}

/**
 * Tell a waiting test this agent is ready: `<CHUMP_DEMO_READY_DIR>/<gap id>.ready`
 * holding the pid and a newline (a reader waits for the newline: the file is
 * complete then).
 */
/** A gap id as a file name in the ready dir. */
function readyName(gapId: string): string {
  return gapId.replace(/[^A-Za-z0-9._-]+/g, "-");
}

async function ready(gapId: string): Promise<void> {
  const dir = envVar("CHUMP_DEMO_READY_DIR");
  if (!dir) return;
  const file = join(dir, `${readyName(gapId)}.ready`);
  await Deno.writeTextFile(file, `${Deno.pid}\n`);
}

/** Wait until `<ready dir>/<gap id>.go` exists (at once without a ready dir). */
async function gate(gapId: string): Promise<void> {
  const dir = envVar("CHUMP_DEMO_READY_DIR");
  if (!dir) return;
  const file = join(dir, `${readyName(gapId)}.go`);
  for (;;) {
    try {
      await Deno.stat(file);
      return;
    } catch {
      await sleep(50);
    }
  }
}

function forever(): Promise<number> {
  return new Promise(() => setInterval(() => {}, 1 << 30));
}
