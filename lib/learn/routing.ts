/**
 * The routing table (`<repo>/docs/dispatch/routing.yaml`, Chump's format):
 * which agent backends and models, in which order (a cascade), a gap is
 * tried with. Reading and checking the file (a malformed one is one line
 * `file:line: what`) and matching a gap to its route are here; both pure but
 * for the file read.
 *
 * The format: `default_candidates:` (a list of candidates) and `routes:`
 * (a list of `{ match, why, model_class, candidates }`; first matching route
 * wins; a `match` has optional `priority`, `effort` and `task_class`, each a
 * string or a list, all of which must match, compared as Chump does: trimmed
 * and case-insensitively, the gap id upper-cased before its task class is
 * read). A route's `model_class` (`haiku`, `sonnet`, `opus`) is the model of
 * its `claude` candidates that name none (`claude --model sonnet`). A
 * candidate has `backend` (`claude`, `chump-local`, or a name of
 * `backends:`), optional `model`, `provider_pfx` and `why`; other keys are
 * kept and ignored. {@linkcode BUILTIN_ROUTING} is Chump's built-in table
 * (`--routing builtin`). Two additions of ours, both optional: `backends:` maps a name
 * to a command template (`{model}` and `{prompt}` are filled in), and
 * `task_classes:` maps a gap-id prefix to a task class, before the built-in
 * `EVAL-`/`RESEARCH-` -> `research`, `COG-` -> `cognition`, `INFRA-` -> `coord`.
 *
 * @module
 */
import { parseYaml } from "../backlog/yaml.ts";
import { isRecord } from "../util/record.ts";
import { errorMessage, fail, ok, type Result } from "../util/result.ts";
import type { BackendSpec } from "../dispatch/agent.ts";
import { AGENT_FORMATS, isAgentFormat } from "../cost/formats.ts";
import { norm } from "./route_gap.ts";

export { armOf, type Routed, routeGap, taskClassOf } from "./route_gap.ts";

/** One entry of a cascade: an agent backend, with its model and provider. */
export interface Candidate {
  backend: string;
  model?: string;
  /** The provider's label (`TOGETHER`, `GROQ`, ...), for logs and the provider's settings. */
  providerPfx?: string;
  why?: string;
}

/** What a route matches on (each absent key matches anything; values lower-cased). */
export interface RouteMatch {
  priority?: string[];
  effort?: string[];
  taskClass?: string[];
  /** Keys this version does not know: the route never matches (and a warning said so). */
  unknown?: string[];
}

/** One route of the table. */
export interface Route {
  match: RouteMatch;
  why?: string;
  /** The model of its `claude` candidates that name none (Chump's `model_class`). */
  modelClass?: string;
  candidates: Candidate[];
  /** 1-based line of the route in its file. */
  line: number;
}

/** A loaded routing table. */
export interface RoutingTable {
  /** The file it came from. */
  path: string;
  defaultCandidates: Candidate[];
  routes: Route[];
  /** Gap-id prefix -> task class, tried before the built-in ones. */
  taskClasses: [string, string][];
  /** Backend name -> command template and format (the file's `backends:`). */
  backends: Record<string, BackendSpec>;
  /** One line each (`file:line: what`), not fatal. */
  warnings: string[];
}

/** The backends every table may name without defining them. */
const BUILTIN_BACKENDS: readonly string[] = ["claude", "chump-local"];

/** The name `--routing` takes for {@linkcode BUILTIN_ROUTING}. */
export const BUILTIN_ROUTING_NAME = "builtin";

/**
 * Chump's built-in table (what Chump routes by when its file is missing):
 * trivial work to the cheap tier, P1 large work to claude, the rest to the
 * cheap tier. Here it is used when asked for (`--routing builtin`): with no
 * file, a run keeps the contract's one agent command.
 */
export const BUILTIN_ROUTING = `default_candidates:
  - { backend: chump-local, why: "default: cheap tier" }
routes:
  - match: { effort: xs }
    candidates:
      - { backend: chump-local, why: "effort=xs: cheap tier (trivial codemod-class)" }
  - match: { priority: P1, effort: [l, xl] }
    candidates:
      - { backend: claude, why: "priority=P1 + effort>=l: frontier (high-stakes large work)" }
`;

/** Where the routing table of `repoRoot` is by default. */
export function defaultRoutingPath(repoRoot: string): string {
  return `${repoRoot}/docs/dispatch/routing.yaml`;
}

/**
 * Read and check the routing table at `path`; one line `path:line: what` when it is malformed.
 *
 * @example
 * ```ts ignore
 * const table = await loadRouting("docs/dispatch/routing.yaml");
 * ```
 */
export async function loadRouting(path: string): Promise<Result<RoutingTable>> {
  if (path === BUILTIN_ROUTING_NAME) return parseRouting(BUILTIN_ROUTING, BUILTIN_ROUTING_NAME);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    return fail(`${path}: cannot read the routing table: ${errorMessage(e)}`);
  }
  return parseRouting(text, path);
}

/**
 * Check the text of a routing table.
 *
 * @example
 * ```ts
 * const t = parseRouting("default_candidates:\n  - { backend: claude }\n", "r.yaml");
 * t.ok && t.value.defaultCandidates; // [{ backend: "claude" }]
 * parseRouting("routes: 3\n", "r.yaml"); // fail("r.yaml:1: routes: must be a list")
 * ```
 */
export function parseRouting(text: string, path: string): Result<RoutingTable> {
  const parsed = parseYaml(text);
  if (!parsed.ok) {
    return fail(`${path}:${parsed.error.line ?? 1}: not valid YAML: ${parsed.error.reason}`);
  }
  const doc = parsed.value.value ?? {};
  const t: TableText = {
    path,
    lineOf: (o, fallback) =>
      (o !== null && typeof o === "object" ? parsed.value.lineOf(o) : undefined) ?? fallback,
  };
  if (!isRecord(doc)) {
    return at(t, 1, "a routing table is a mapping (default_candidates:, routes:)");
  }
  const backends = backendsOf(t, doc);
  if (!backends.ok) return backends;
  const taskClasses = taskClassesOf(t, doc);
  if (!taskClasses.ok) return taskClasses;
  const known = new Set([...BUILTIN_BACKENDS, ...Object.keys(backends.value)]);
  let defaultCandidates: Candidate[] = [];
  if (doc.default_candidates !== undefined) {
    const d = candidatesOf(
      t,
      known,
      doc.default_candidates,
      t.lineOf(doc, 1),
      "default_candidates",
    );
    if (!d.ok) return d;
    defaultCandidates = d.value;
  }
  const warnings: string[] = [];
  const routes = routesOf(t, known, doc, warnings);
  if (!routes.ok) return routes;
  if (defaultCandidates.length === 0 && routes.value.length === 0) {
    return at(t, 1, "no default_candidates and no routes: nothing to dispatch to");
  }
  return ok({
    path,
    defaultCandidates,
    routes: routes.value,
    taskClasses: taskClasses.value,
    backends: backends.value,
    warnings,
  });
}

/** A table's file, for messages that name a line of it. */
interface TableText {
  path: string;
  lineOf: (o: unknown, fallback: number) => number;
}

function at(t: TableText, line: number, what: string): { ok: false; error: string } {
  return fail(`${t.path}:${line}: ${what}`);
}

/**
 * `backends:` names -> command templates: a command (a string), or
 * `{command: <string>, format: claude-stream|codex-json|plain}` for an agent
 * whose stdout speaks a structured session.
 */
function backendsOf(
  t: TableText,
  doc: Record<string, unknown>,
): Result<Record<string, BackendSpec>> {
  const backends: Record<string, BackendSpec> = {};
  if (doc.backends === undefined) return ok(backends);
  if (!isRecord(doc.backends)) {
    return at(t, t.lineOf(doc, 1), "backends: must map names to commands");
  }
  for (const [name, entry] of Object.entries(doc.backends)) {
    const line = t.lineOf(isRecord(entry) ? entry : doc.backends, 1);
    const command = isRecord(entry) ? entry.command : entry;
    if (typeof command !== "string" || command.trim() === "") {
      return at(t, line, `backends: ${name}: must be a command (a string, or {command, format})`);
    }
    const format = isRecord(entry) ? entry.format : undefined;
    if (format !== undefined && (typeof format !== "string" || !isAgentFormat(format))) {
      return at(t, line, `backends: ${name}: format must be one of ${AGENT_FORMATS.join(", ")}`);
    }
    backends[name] = format === undefined ? { command } : { command, format };
  }
  return ok(backends);
}

/** `task_classes:` gap-id prefixes -> task classes. */
function taskClassesOf(t: TableText, doc: Record<string, unknown>): Result<[string, string][]> {
  const out: [string, string][] = [];
  if (doc.task_classes === undefined) return ok(out);
  if (!isRecord(doc.task_classes)) {
    return at(t, t.lineOf(doc, 1), "task_classes: must map gap-id prefixes to task classes");
  }
  for (const [prefix, cls] of Object.entries(doc.task_classes)) {
    if (typeof cls !== "string") {
      return at(t, t.lineOf(doc.task_classes, 1), `task_classes: ${prefix}: must be a string`);
    }
    out.push([prefix, cls]);
  }
  return ok(out);
}

/** A list of candidates (`default_candidates:`, a route's `candidates:`). */
function candidatesOf(
  t: TableText,
  known: ReadonlySet<string>,
  list: unknown,
  line: number,
  where: string,
): Result<Candidate[]> {
  if (!Array.isArray(list) || list.length === 0) {
    return at(t, line, `${where}: must be a non-empty list of candidates`);
  }
  const out: Candidate[] = [];
  for (const [i, c] of list.entries()) {
    const candidate = candidateOf(t, known, c, t.lineOf(c, line), `${where}[${i}]`);
    if (!candidate.ok) return candidate;
    out.push(candidate.value);
  }
  return ok(out);
}

function candidateOf(
  t: TableText,
  known: ReadonlySet<string>,
  c: unknown,
  line: number,
  where: string,
): Result<Candidate> {
  if (!isRecord(c)) return at(t, line, `${where}: a candidate is a mapping`);
  if (typeof c.backend !== "string" || c.backend === "") {
    return at(t, line, `${where}: backend: missing`);
  }
  if (!known.has(c.backend)) {
    return at(
      t,
      line,
      `${where}: unknown backend '${c.backend}' (claude, chump-local, or a name under backends:)`,
    );
  }
  const candidate: Candidate = { backend: c.backend };
  const fields = [["model", "model"], ["provider_pfx", "providerPfx"], ["why", "why"]] as const;
  for (const [key, field] of fields) {
    const v = c[key];
    if (v === undefined || v === null) continue;
    if (typeof v !== "string" && typeof v !== "number") {
      return at(t, line, `${where}: ${key}: must be a string`);
    }
    candidate[field] = String(v);
  }
  return ok(candidate);
}

/** `routes:` each with its match and candidates; a match with unknown keys is a warning. */
function routesOf(
  t: TableText,
  known: ReadonlySet<string>,
  doc: Record<string, unknown>,
  warnings: string[],
): Result<Route[]> {
  const routes: Route[] = [];
  if (doc.routes === undefined || doc.routes === null) return ok(routes);
  if (!Array.isArray(doc.routes)) return at(t, t.lineOf(doc, 1), "routes: must be a list");
  for (const [i, r] of doc.routes.entries()) {
    const line = t.lineOf(r, t.lineOf(doc, 1));
    if (!isRecord(r)) {
      return at(t, line, `routes[${i}]: a route is a mapping (match:, candidates:)`);
    }
    const match = routeMatch(r.match);
    if (!match.ok) return at(t, line, `routes[${i}]: match: ${match.error}`);
    if (match.value.unknown) {
      warnings.push(
        `${t.path}:${line}: routes[${i}]: match: unknown key(s) ${
          match.value.unknown.join(", ")
        }: this route never matches`,
      );
    }
    const c = candidatesOf(t, known, r.candidates, line, `routes[${i}].candidates`);
    if (!c.ok) return c;
    const modelClass = r.model_class;
    if (modelClass !== undefined && modelClass !== null && typeof modelClass !== "string") {
      return at(t, line, `routes[${i}]: model_class: must be a string (haiku, sonnet, opus)`);
    }
    const cls = typeof modelClass === "string" && modelClass.trim() !== ""
      ? modelClass.trim()
      : undefined;
    routes.push({
      match: match.value,
      why: typeof r.why === "string" ? r.why : undefined,
      modelClass: cls,
      // The route's model class is the model of its claude arms that name none.
      candidates: c.value.map((x) =>
        cls !== undefined && x.backend === "claude" && x.model === undefined
          ? { ...x, model: cls }
          : x
      ),
      line,
    });
  }
  return ok(routes);
}

/** A route's `match`, or why it is malformed. */
function routeMatch(m: unknown): Result<RouteMatch> {
  if (m === undefined || m === null) return ok({});
  if (!isRecord(m)) return fail("must be a mapping");
  const out: RouteMatch = {};
  const fields = { priority: "priority", effort: "effort", task_class: "taskClass" } as const;
  for (const [key, v] of Object.entries(m)) {
    if (!Object.hasOwn(fields, key)) {
      (out.unknown ??= []).push(key);
      continue;
    }
    const list = (Array.isArray(v) ? v : [v]).map((e) =>
      typeof e === "string" || typeof e === "number" ? norm(String(e)) : undefined
    );
    if (list.length === 0 || list.some((e) => e === undefined)) {
      return fail(`${key}: must be a string or a list of strings`);
    }
    out[fields[key as keyof typeof fields]] = list as string[];
  }
  return ok(out);
}
