/**
 * PR state from GitHub through the `gh` CLI: ONE `gh api graphql` call per
 * poll for every watched branch (one aliased `pullRequests(headRefName:)`
 * field per branch), so the request rate does not grow with the fleet (the
 * seed's one `gh pr list` per branch per tick met GitHub's 5,000 requests an
 * hour near 40 agents).
 *
 * Which PRs are this dispatch's: a branch name outlives a dispatch (a gap
 * that ended `ci_failed` is dispatched again on the same `claude/<slug>`), so
 * a PR counts only when
 * - it was created after the dispatch started, minus a clock skew (GitHub's
 *   clock is not ours), and
 * - if it is closed or merged, it was closed or merged after the dispatch
 *   started, with NO skew: a PR that had already ended when this dispatch
 *   began is an earlier attempt's, however recently it was created (a
 *   re-dispatch a minute after a `ci_failed` must not inherit that PR), and
 *   an agent's own PR is not opened, checked and closed within a clock
 *   offset of its start.
 * PRs from forks that happen to use the same branch name are ignored too.
 * Among what remains, the newest PR wins.
 *
 * Never throws: `gh` missing, a non-zero exit, a hang, an abort, huge output,
 * invalid JSON or GraphQL errors all become `fail("gh: <one line>")`.
 *
 * @module
 */
import { baseOf, baseSelection, REVIEW_SELECTION, reviewOf } from "./gh_review.ts";
import { errorMessage, fail, ok, type Result } from "../../util/result.ts";
import type { BaseState, PrProvider, PrState, WatchedBranch } from "./types.ts";
import { oneLine as foldLine } from "../../util/text.ts";
import { formatDuration } from "../../util/duration.ts";
import { runHelper } from "../../process/helper.ts";
import { isRecord } from "../../util/record.ts";

/** PRs created this long before a dispatch started still count as its own (clocks differ). */
const DEFAULT_SKEW_MS = 5 * 60_000;

/**
 * A poll that takes longer than this is a failure (gh has no timeout of its
 * own); the watch loop passes a shorter, tick-sized bound per poll.
 */
const DEFAULT_GH_TIMEOUT_MS = 60_000;

/** `gh auth status` answers from its config (and one API call): this is plenty. */
const AUTH_TIMEOUT_MS = 20_000;

/** More output than this is not a PR list: stop reading, kill gh, fail the tick. */
const MAX_GH_OUTPUT_BYTES = 16 * 1024 * 1024;

/** PRs asked per branch: enough to see past a few old attempts. */
const PRS_PER_BRANCH = 5;

/** Error lines are one line of at most this many characters. */
const MAX_REASON_LENGTH = 300;

/** Text squeezed to one bounded line. */
const oneLine = (text: string) => foldLine(text, MAX_REASON_LENGTH);

/** Options of {@linkcode createGhProvider}. */
export interface GhProviderOptions {
  /** Directory `gh` runs in; its git remote decides `{owner}`/`{repo}`. */
  cwd: string;
  /** The `gh` command (a name looked up on PATH, or a path). Default `"gh"`. */
  gh?: string;
  /** Accept PRs created up to this long before `startedAt`. Default 5 minutes. */
  skewMs?: number;
  /** Extra environment for `gh` (added to ours); read at every poll. */
  env?: Record<string, string>;
  /** Kill `gh` and fail a poll after this long, unless the poll says otherwise. Default 1 minute. */
  timeoutMs?: number;
  /** Cap on stdout bytes read. Default 16 MB. */
  maxOutputBytes?: number;
  /** The base branch (`main`), whose head commit's checks each poll also reads. */
  baseBranch?: string;
}

/**
 * A {@linkcode PrProvider} named `gh`: one `gh api graphql` call per poll for
 * all branches, none when there are no branches.
 *
 * @param options where to run `gh`, which `gh`, the clock skew
 * @returns the provider
 *
 * @example
 * ```ts
 * const provider = createGhProvider({ cwd: "/repo" });
 * const r = await provider.poll([
 *   { branch: "claude/auto-013", startCommit: "abc123", startedAt: Date.now() },
 * ], { timeoutMs: 30_000 });
 * if (r.ok) console.log(r.value.get("claude/auto-013")); // { state: "open", number: 12 }
 * ```
 */
export function createGhProvider(options: GhProviderOptions): PrProvider {
  const {
    cwd,
    gh = "gh",
    skewMs = DEFAULT_SKEW_MS,
    timeoutMs = DEFAULT_GH_TIMEOUT_MS,
    maxOutputBytes = MAX_GH_OUTPUT_BYTES,
  } = options;
  let base: BaseState | undefined;
  return {
    name: "gh",
    async poll(branches, bounds = {}) {
      if (branches.length === 0 && options.baseBranch === undefined) return ok(new Map());
      const names = uniqueBranches(branches);
      const run = await runGh(gh, ghArgs(buildQuery(names, options.baseBranch)), {
        cwd,
        env: options.env,
        timeoutMs: bounds.timeoutMs ?? timeoutMs,
        signal: bounds.signal,
        maxOutputBytes,
      });
      if (!run.ok) return run;
      const parsed = parseGhResponse(run.value, names, branches, skewMs);
      if (parsed.ok) base = parsed.value.base;
      return parsed.ok ? ok(parsed.value.states) : parsed;
    },
    base: () => base,
    async failedLog(runId, { maxBytes, signal }) {
      const run = await runGh(gh, ["run", "view", String(runId), "--log-failed"], {
        cwd,
        env: options.env,
        signal,
        timeoutMs: Math.min(timeoutMs, HELPER_TIMEOUT_MS),
        maxOutputBytes: LOG_READ_BYTES,
      });
      if (!run.ok) return run;
      return ok(tailBytes(run.value, maxBytes));
    },
    async requestAutoMerge(pr) {
      const run = await runGh(gh, ["pr", "merge", String(pr), "--auto", "--squash"], {
        cwd,
        env: options.env,
        timeoutMs: Math.min(timeoutMs, HELPER_TIMEOUT_MS),
        maxOutputBytes: 64 << 10,
      });
      return run.ok ? ok(undefined) : run;
    },
  };
}

/** A `gh run view` or `gh pr merge` is given at most this long. */
const HELPER_TIMEOUT_MS = 30_000;

/** Bytes of a failed log read (its end is kept). */
const LOG_READ_BYTES = 8 << 20;

/** The last `maxBytes` (about: whole characters) of `text`, from a line start when it can. */
function tailBytes(text: string, maxBytes: number): string {
  if (text.length <= maxBytes) return text;
  const cut = text.slice(-maxBytes);
  const nl = cut.indexOf("\n");
  return nl >= 0 && nl < cut.length - 1 ? cut.slice(nl + 1) : cut;
}

/**
 * The argv after `gh` for one poll: `{owner}` and `{repo}` are filled in by
 * `gh` from the git remote of its working directory.
 *
 * @example
 * ```ts
 * ghArgs("query { viewer { login } }");
 * // ["api", "graphql", "-F", "owner={owner}", "-F", "repo={repo}", "-f", "query=query { viewer { login } }"]
 * ```
 */
export function ghArgs(query: string): string[] {
  return ["api", "graphql", "-F", "owner={owner}", "-F", "repo={repo}", "-f", `query=${query}`];
}

/**
 * The GraphQL query for these branches: field `b<i>` holds the PRs of
 * `branches[i]`. Branch names are JSON-quoted, which is valid GraphQL string
 * syntax, so no name can change the query's shape.
 *
 * @example
 * ```ts
 * buildQuery(["claude/auto-013"]).includes('b0: pullRequests(headRefName: "claude/auto-013"'); // true
 * ```
 */
export function buildQuery(branches: readonly string[], baseBranch?: string): string {
  const fields = branches.map((branch, i) =>
    `b${i}: pullRequests(headRefName: ${JSON.stringify(branch)}, first: ${PRS_PER_BRANCH}, ` +
    `states: [OPEN, CLOSED, MERGED], orderBy: {field: CREATED_AT, direction: DESC}) ` +
    `{ nodes { number state headRefName createdAt closedAt mergedAt isCrossRepository ` +
    `${REVIEW_SELECTION} } }`
  );
  if (baseBranch !== undefined) fields.push(baseSelection(baseBranch));
  return `query($owner: String!, $repo: String!) { repository(owner: $owner, name: $repo) { ${
    fields.join(" ")
  } } }`;
}

/** One PR as the query returns it (fields may be missing in odd responses). */
interface PrNode {
  number?: unknown;
  state?: unknown;
  headRefName?: unknown;
  createdAt?: unknown;
  closedAt?: unknown;
  mergedAt?: unknown;
  isCrossRepository?: unknown;
  mergeable?: unknown;
}

/**
 * Turn `gh api graphql` output into the PR state of every watched branch.
 * `names[i]` is the branch queried as field `b<i>`.
 */
function parseGhResponse(
  stdout: string,
  names: readonly string[],
  branches: readonly WatchedBranch[],
  skewMs: number,
): Result<{ states: Map<string, PrState>; base?: BaseState }> {
  let body: unknown;
  try {
    body = JSON.parse(stdout);
  } catch (e) {
    return fail(`gh: invalid JSON from gh api graphql: ${oneLine(errorMessage(e))}`);
  }
  if (!isRecord(body)) return fail("gh: unexpected response from gh api graphql (not an object)");
  const errors = body.errors;
  if (Array.isArray(errors) && errors.length > 0) {
    const first = errors[0];
    const message = isRecord(first) && typeof first.message === "string"
      ? first.message
      : JSON.stringify(first);
    const more = errors.length > 1 ? ` (+${errors.length - 1} more)` : "";
    return fail(`gh: GraphQL error: ${oneLine(message)}${more}`);
  }
  const data = body.data;
  const repository = isRecord(data) ? data.repository : undefined;
  if (!isRecord(repository)) return fail("gh: response has no data.repository");
  const nodesOf = new Map<string, PrNode[]>();
  for (const [i, name] of names.entries()) {
    const field = repository[`b${i}`];
    const nodes = isRecord(field) ? field.nodes : undefined;
    if (!Array.isArray(nodes)) return fail(`gh: response has no pull requests for ${name}`);
    nodesOf.set(name, nodes.filter(isRecord) as PrNode[]);
  }
  const states = new Map<string, PrState>();
  for (const watched of branches) {
    states.set(watched.branch, newestState(nodesOf.get(watched.branch) ?? [], watched, skewMs));
  }
  return ok({ states, base: baseOf(repository.base) });
}

/** The state of the newest PR of this dispatch, ignoring earlier attempts' and fork PRs. */
function newestState(nodes: readonly PrNode[], watched: WatchedBranch, skewMs: number): PrState {
  const notBefore = watched.startedAt - skewMs;
  let best:
    | { state: "open" | "merged" | "closed"; number?: number; created: number; node: PrNode }
    | undefined;
  for (const node of nodes) {
    const state = mapState(node.state);
    if (state === undefined) continue;
    if (typeof node.headRefName === "string" && node.headRefName !== watched.branch) continue;
    if (node.isCrossRepository === true) continue;
    const created = dateOf(node.createdAt);
    if (created < notBefore) continue;
    if (state !== "open") {
      const ended = dateOf(state === "merged" ? node.mergedAt ?? node.closedAt : node.closedAt);
      if (ended < watched.startedAt) continue; // ended before this dispatch began
    }
    const number = typeof node.number === "number" && Number.isInteger(node.number)
      ? node.number
      : undefined;
    const newer = best === undefined || created > best.created ||
      (created === best.created && (number ?? -1) > (best.number ?? -1));
    if (newer) best = { state, number, created, node };
  }
  if (best === undefined) return { state: "none" };
  const review = best.state === "open"
    ? { review: reviewOf(best.node as Record<string, unknown>) }
    : {};
  return best.number === undefined
    ? { state: best.state, ...review }
    : { state: best.state, number: best.number, ...review };
}

/** A GitHub timestamp in ms; an absent or unreadable one cannot prove a PR old, so it is "now or later". */
function dateOf(value: unknown): number {
  const parsed = typeof value === "string" ? Date.parse(value) : NaN;
  return Number.isNaN(parsed) ? Infinity : parsed;
}

/** GitHub's PR state to ours; anything else is not understood (and skipped). */
function mapState(state: unknown): "open" | "merged" | "closed" | undefined {
  switch (state) {
    case "OPEN":
      return "open";
    case "MERGED":
      return "merged";
    case "CLOSED":
      return "closed";
    default:
      return undefined;
  }
}

/** Branch names in first-seen order, each once. */
function uniqueBranches(branches: readonly WatchedBranch[]): string[] {
  return [...new Set(branches.map((b) => b.branch))];
}

/**
 * Run `gh` without a shell (in its own process group, see process/helper.ts),
 * reading at most `maxOutputBytes` of stdout, ended after `timeoutMs`.
 * Success is its stdout; anything else is one line.
 */
async function runGh(
  gh: string,
  args: string[],
  options: {
    cwd: string;
    env?: Record<string, string>;
    timeoutMs: number;
    signal?: AbortSignal;
    maxOutputBytes: number;
  },
): Promise<Result<string>> {
  const out = await runHelper(gh, args, {
    cwd: options.cwd,
    env: { GH_PROMPT_DISABLED: "1", NO_COLOR: "1", ...options.env },
    timeoutMs: options.timeoutMs,
    signal: options.signal,
    maxOutputBytes: options.maxOutputBytes,
  });
  if (!out.started) {
    const e = out.error;
    const hint = e instanceof Deno.errors.NotFound ? " (is the GitHub CLI installed?)" : "";
    return fail(`gh: cannot run ${JSON.stringify(gh)}: ${oneLine(errorMessage(e))}${hint}`);
  }
  if (out.stopped === "timeout") {
    return fail(`gh: timed out after ${formatDuration(options.timeoutMs)}`);
  }
  if (out.stopped === "overflow") return fail(`gh: output exceeds ${options.maxOutputBytes} bytes`);
  if (out.stopped === "aborted") return fail("gh: interrupted");
  const dec = new TextDecoder();
  if (out.code !== 0) {
    // gh prints its complaint on stderr; `gh auth status` on stdout in some versions.
    const said = firstLine(dec.decode(out.stderr)) || firstLine(dec.decode(out.stdout));
    const line = said.replace(/^gh:\s*/, "");
    return fail(`gh: exited ${out.code}${line === "" ? "" : `: ${line}`}`);
  }
  return ok(dec.decode(out.stdout));
}

/**
 * Can `gh` work at all? `gh auth status` once, before anything is dispatched:
 * a gh that is not logged in would otherwise fail every tick of the run.
 *
 * @param options where to run it, which `gh`, extra environment
 * @returns ok, or one line saying why not
 * @example
 * ```ts
 * const ready = await checkGhAuth({ cwd: "/repo" });
 * if (!ready.ok) console.error(ready.error); // "gh auth status: exited 1: You are not logged into any GitHub hosts..."
 * ```
 */
export async function checkGhAuth(
  options: { cwd: string; gh?: string; env?: Record<string, string>; signal?: AbortSignal },
): Promise<Result<void>> {
  const ran = await runGh(options.gh ?? "gh", ["auth", "status"], {
    cwd: options.cwd,
    env: options.env,
    timeoutMs: AUTH_TIMEOUT_MS,
    signal: options.signal,
    maxOutputBytes: 1024 * 1024,
  });
  if (!ran.ok) return fail(ran.error.replace(/^gh: /, "gh auth status: "));
  return ok(undefined);
}

/** The first non-blank line, trimmed and bounded. */
function firstLine(text: string): string {
  const line = text.split(/\r?\n/).find((l) => l.trim() !== "") ?? "";
  return oneLine(line);
}
