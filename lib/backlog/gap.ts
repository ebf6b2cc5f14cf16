/**
 * One work item of the backlog, and how a parsed mapping becomes one: what
 * both ways of reading a backlog (lib/backlog/fast.ts and the full parser,
 * lib/backlog/parse.ts) make their gaps with, so they agree.
 *
 * @module
 */
import { EFFORTS, isEffort } from "../util/duration.ts";
import { oneLine } from "../util/text.ts";

/** One work item of the backlog. */
export interface Gap {
  /** Non-empty id, as written. */
  id: string;
  title: string;
  /** As written (e.g. `P1`); compared case-insensitively by the picker. */
  priority: string;
  /** As written (`xs`, `s`, `m`, `l`, `xl`) or empty. */
  effort: string;
  /** As written (`open`, `done`, ...) or empty. */
  status: string;
  /** Ids this gap waits for; a single string counts as one id, null as none. */
  dependsOn: string[];
  /** The file it came from, as given or joined from the directory. */
  file: string;
  /** 1-based line of the gap's mapping. */
  line: number;
}

/**
 * A mapping as a gap, or the one line saying why it is not one.
 *
 * @example
 * ```ts
 * toGap({ id: "A-1", priority: "P1" }, "g.yaml", 2); // a gap, its title ""
 * ```
 */
export function toGap(m: Record<string, unknown>, file: string, line: number): Gap | string {
  // Hot on huge backlogs: no per-gap allocations beyond the gap itself until something is wrong.
  if (!Object.hasOwn(m, "id") || m.id === null || m.id === undefined) {
    return `${file}:${line}: gap has no 'id'`;
  }
  if (typeof m.id !== "string") {
    return `${file}:${line}: gap id must be a string, found ${kindOf(m.id)}`;
  }
  const id = m.id.trim();
  if (id === "") return `${file}:${line}: gap id is empty`;

  const title = scalarText(m.title);
  const priority = scalarText(m.priority);
  const effort = scalarText(m.effort);
  const status = scalarText(m.status);
  if (
    title === undefined || priority === undefined || effort === undefined || status === undefined
  ) {
    const field = ["title", "priority", "effort", "status"].find((f) =>
      scalarText(m[f]) === undefined
    );
    return `${file}:${line}: gap ${id}: '${field}' must be a single value, found ${
      kindOf(m[field!])
    }`;
  }

  const deps = m.depends_on;
  let dependsOn: string[];
  if (deps === undefined || deps === null) dependsOn = [];
  else if (isScalar(deps)) dependsOn = [String(deps).trim()].filter((d) => d !== "");
  else if (Array.isArray(deps) && deps.every(isCleanId)) {
    dependsOn = deps; // the common case: the parsed list itself, no copy per gap
  } else if (Array.isArray(deps)) {
    dependsOn = [];
    for (const d of deps) {
      if (!isScalar(d)) {
        return `${file}:${line}: gap ${id}: 'depends_on' entries must be gap ids, found ${
          kindOf(d)
        }`;
      }
      const s = typeof d === "string" ? d.trim() : String(d);
      if (s !== "") dependsOn.push(s);
    }
  } else {
    return `${file}:${line}: gap ${id}: 'depends_on' must be a list of gap ids, found ${
      kindOf(deps)
    }`;
  }

  // Only what the picker, the dispatch and the prompt read: the rest of the parsed gap (its
  // description, notes, ...) is garbage once the gap is made.
  return { id, title, priority, effort, status, dependsOn, file, line };
}

/** A dependency id that needs no trimming, converting or dropping. */
function isCleanId(d: unknown): d is string {
  return typeof d === "string" && d !== "" && d.trim() === d;
}

/** A field as trimmed text: "" when absent or null, undefined when it is not a single value. */
function scalarText(v: unknown): string | undefined {
  if (typeof v === "string") return v.trim();
  if (v === undefined || v === null) return "";
  return isScalar(v) ? String(v) : undefined;
}

/**
 * The warning of a gap whose priority or effort the picker and the monitor do not know (`high`,
 * `constructor`): the gap is never picked, or gets effort `m`'s deadline.
 * Empty values are common and stay silent.
 */
export function valueWarning(g: Gap): string | undefined {
  // Hot on huge backlogs: nothing is built for a gap with nothing to say.
  if (g.priority !== "" && !isPriorityLike(g.priority)) {
    return `${gapAt(g)}: unknown priority '${oneLine(g.priority)}' (P0, P1, P2, ...); ` +
      "it is never picked";
  }
  if (g.effort !== "" && !isEffort(g.effort.toLowerCase())) {
    return `${gapAt(g)}: unknown effort '${oneLine(g.effort)}' (${EFFORTS.join(", ")}); ` +
      `its deadline is effort m's`;
  }
  return undefined;
}

/**
 * The warning of a key written twice in one mapping, as both ways of
 * reading a backlog word it (1-based line and column of the second one).
 *
 * @example
 * ```ts
 * duplicateKeyWarning("g.yaml", 7, 5, "notes");
 * // "g.yaml:7:5: key 'notes' appears twice in one mapping; the later value wins"
 * ```
 */
export function duplicateKeyWarning(
  file: string,
  line: number,
  column: number,
  key: string,
): string {
  return `${file}:${line}:${column}: key '${key}' appears twice in one mapping; the later value wins`;
}

/** `file:line: gap ID`, the start of a gap's warning. */
function gapAt(g: Gap): string {
  return `${g.file}:${g.line}: gap ${oneLine(g.id)}`;
}

/** `P` or `p` then digits (a regex per gap costs more on 100,000 gaps). */
function isPriorityLike(p: string): boolean {
  if (p.length < 2 || (p.charCodeAt(0) | 0x20) !== 0x70) return false;
  for (let i = 1; i < p.length; i++) {
    const c = p.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

function isScalar(v: unknown): v is string | number | boolean {
  return typeof v === "string" || typeof v === "number" || typeof v === "boolean";
}

/**
 * What a value is, for an error line (`a list`, `a string ("x")`, `nothing`).
 *
 * @example
 * ```ts
 * kindOf([1]); // "a list"
 * ```
 */
export function kindOf(v: unknown): string {
  if (v === null || v === undefined) return "nothing";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "string") return `a string${v.length <= 40 ? ` (${JSON.stringify(v)})` : ""}`;
  return `a ${typeof v} (${String(v)})`;
}
