/**
 * What the gh provider reads of an open PR beyond its state, in the same one
 * query per tick (GitHub's GraphQL names): `mergeable` (`CONFLICTING`),
 * `reviewDecision` (`CHANGES_REQUESTED`, `APPROVED`, `REVIEW_REQUIRED`), the
 * head commit's `statusCheckRollup` with its contexts (`CheckRun` name,
 * status, conclusion and workflow run id; `StatusContext` context and state),
 * and the latest reviews' bodies with their comments (those of the
 * repository's owners, members and collaborators only); and the base branch's
 * head commit's checks (`--pause-when-base-red`). Pure: the selections, and
 * the parsing of what comes back.
 *
 * @module
 */
import type { BaseState, PrReview } from "./types.ts";
import { isRecord } from "../../util/record.ts";

/** Contexts read per commit; a PR with more shows the first ones. */
const CONTEXTS = 50;

/** The contexts of a commit's check rollup. */
const ROLLUP = `statusCheckRollup { state contexts(first: ${CONTEXTS}) { nodes { __typename ` +
  `... on CheckRun { name status conclusion checkSuite { workflowRun { databaseId } } } ` +
  `... on StatusContext { context state } } } }`;

/** The fields of a PR node that {@linkcode reviewOf} reads. */
export const REVIEW_SELECTION = `mergeable reviewDecision ` +
  `commits(last: 1) { nodes { commit { oid ${ROLLUP} } } } ` +
  `reviews(last: 5) { nodes { state body authorAssociation ` +
  `comments(first: 10) { nodes { body path authorAssociation } } } }`;

/**
 * Whose words reach an agent's prompt: the repository's owners, members and
 * collaborators. Anyone can review a public repository's PR; its text would
 * otherwise be instructions to an agent that runs without asking.
 */
const TRUSTED = new Set(["OWNER", "MEMBER", "COLLABORATOR"]);

/**
 * The base branch's head commit checks, as an aliased field of `repository`.
 *
 * @example
 * ```ts
 * baseSelection("main").startsWith('base: ref(qualifiedName: "refs/heads/main")'); // true
 * ```
 */
export function baseSelection(branch: string): string {
  return `base: ref(qualifiedName: ${JSON.stringify(`refs/heads/${branch}`)}) ` +
    `{ target { ... on Commit { oid ${ROLLUP} } } }`;
}

type Obj = Record<string, unknown>;

function nodes(v: unknown): Obj[] {
  return isRecord(v) && Array.isArray(v.nodes) ? v.nodes.filter(isRecord) : [];
}

/** Conclusions of a completed check run that fail it. */
const FAILED = new Set(["FAILURE", "TIMED_OUT", "CANCELLED", "ACTION_REQUIRED", "STARTUP_FAILURE"]);

/**
 * A check rollup: passing (every context completed and none failed), failing
 * (every context completed, some failed), pending, or none (no checks).
 */
function checksOf(rollup: unknown): Pick<PrReview, "checks" | "failing"> {
  if (!isRecord(rollup)) return { checks: "none", failing: [] };
  const contexts = nodes(rollup.contexts);
  const failing: PrReview["failing"] = [];
  let pending = false;
  for (const c of contexts) {
    if (c.__typename === "StatusContext") {
      const state = String(c.state ?? "");
      if (state === "PENDING" || state === "EXPECTED") pending = true;
      else if (state === "FAILURE" || state === "ERROR") failing.push({ name: String(c.context) });
    } else {
      if (c.status !== undefined && c.status !== "COMPLETED") pending = true;
      else if (FAILED.has(String(c.conclusion ?? ""))) {
        const suite = isRecord(c.checkSuite) ? c.checkSuite : {};
        const run = isRecord(suite.workflowRun) ? suite.workflowRun.databaseId : undefined;
        failing.push({
          name: String(c.name ?? "check"),
          ...(typeof run === "number" ? { runId: run } : {}),
        });
      }
    }
  }
  if (contexts.length === 0) {
    const state = String(rollup.state ?? "");
    if (state === "SUCCESS") return { checks: "passing", failing };
    if (state === "FAILURE" || state === "ERROR") return { checks: "failing", failing };
    return { checks: state === "" ? "none" : "pending", failing };
  }
  if (pending) return { checks: "pending", failing };
  if (failing.length > 0) return { checks: "failing", failing };
  // More contexts than were read: the rollup's own state has the last word on "passing".
  const state = String(rollup.state ?? "SUCCESS");
  if (state === "FAILURE" || state === "ERROR") return { checks: "failing", failing };
  if (state === "PENDING" || state === "EXPECTED") return { checks: "pending", failing };
  return { checks: "passing", failing };
}

/** Longest review text kept per body, and bodies kept per PR. */
const BODY_CHARS = 2000;
const BODIES = 12;

/**
 * What an open PR node says beyond its state.
 *
 * @example
 * ```ts
 * reviewOf({ mergeable: "CONFLICTING", reviewDecision: null }).conflicting; // true
 * ```
 */
export function reviewOf(node: Obj): PrReview {
  const commit = nodes(node.commits).at(-1)?.commit;
  const head = isRecord(commit) ? commit : {};
  const comments: string[] = [];
  for (const r of nodes(node.reviews)) {
    const body = typeof r.body === "string" ? r.body.trim() : "";
    if (body !== "" && TRUSTED.has(String(r.authorAssociation))) {
      comments.push(body.slice(0, BODY_CHARS));
    }
    for (const c of nodes(r.comments)) {
      const text = typeof c.body === "string" ? c.body.trim() : "";
      if (text === "" || !TRUSTED.has(String(c.authorAssociation))) continue;
      const where = typeof c.path === "string" ? `${c.path}: ` : "";
      comments.push(`${where}${text}`.slice(0, BODY_CHARS));
    }
  }
  return {
    ...checksOf(head.statusCheckRollup),
    conflicting: node.mergeable === "CONFLICTING",
    ...(typeof node.reviewDecision === "string" ? { reviewDecision: node.reviewDecision } : {}),
    comments: comments.slice(-BODIES),
    ...(typeof head.oid === "string" ? { headSha: head.oid } : {}),
  };
}

/**
 * The base branch's state from the `base` field, or undefined when the
 * response has none (no such branch).
 *
 * @example
 * ```ts
 * baseOf({ target: { oid: "a", statusCheckRollup: { state: "FAILURE", contexts: { nodes: [] } } } })?.red; // true
 * ```
 */
export function baseOf(field: unknown): BaseState | undefined {
  if (!isRecord(field) || !isRecord(field.target)) return undefined;
  const { checks, failing } = checksOf(field.target.statusCheckRollup);
  return { red: checks === "failing", failing: failing.map((f) => f.name) };
}
