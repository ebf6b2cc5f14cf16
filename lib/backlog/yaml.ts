/**
 * YAML text -> plain data, keeping what a backlog loader needs that a plain
 * parse throws away: the line of every mapping, and the keys repeated inside
 * one mapping (real backlogs have them; the later value wins, with a warning).
 *
 * Why js-yaml: measured on a generated 100,000-gap backlog (27 MB) it parses
 * about ten times faster than `npm:yaml`. Positions come from its `listener`
 * hook (open/close per node); only the lines of shallow mappings are kept,
 * and repeated keys are looked for only in a document js-yaml says has one
 * (`deno task bench` measures the cost against a plain `yaml.load`).
 * The schema is YAML 1.2 core plus `<<` merge keys: dates stay strings
 * (`closed_date: 2026-04-17` is kept as written), aliases are shared, never
 * copied, so alias bombs cost nothing.
 *
 * @module
 */
// @ts-types="npm:@types/js-yaml@4.0.9"
import yaml from "js-yaml";
import { errorMessage } from "../util/result.ts";

/** A repeated key inside one mapping (1-based line and column). */
export interface DuplicateKey {
  key: string;
  line: number;
  column: number;
}

/** What {@linkcode parseYaml} returns on success. */
export interface ParsedYaml {
  /** The document, as plain data (undefined for an empty document). */
  value: unknown;
  /** 1-based line where each mapping of the document starts (the top three levels). */
  lineOf: (mapping: object) => number | undefined;
  /** Keys that appeared twice in the same mapping, in document order. */
  duplicateKeys: DuplicateKey[];
}

/** A parse failure with a 1-based position when one is known. */
export interface YamlError {
  reason: string;
  line?: number;
  column?: number;
}

// The type definitions omit `types`, which js-yaml 4 does export.
const { merge } = (yaml as unknown as { types: Record<string, yaml.Type> }).types;
const SCHEMA = yaml.CORE_SCHEMA.extend({ implicit: [merge] });

// Mappings with this many keys switch from a linear scan to a Set for the
// duplicate check, so a hostile 100,000-key mapping stays linear.
const LINEAR_KEY_LIMIT = 16;

/**
 * Mappings deeper than this get no line: a backlog needs the lines of the
 * document (depth 0), of the `gaps` list (1) and of each gap (1 or 2).
 */
const MAX_LINE_DEPTH = 2;

/**
 * Parse one YAML document.
 *
 * Two passes at most: the first records only the lines of shallow mappings
 * and lets js-yaml refuse duplicate keys (its cheapest mode, a few percent
 * over a plain parse); only a document that has a repeated key is parsed
 * again, keeping the later value and noting where each repeat is.
 *
 * @param text the YAML source
 * @returns the value with positions, or a {@linkcode YamlError}
 * @example
 * ```ts
 * import { parseYaml } from "./yaml.ts";
 *
 * const r = parseYaml("gaps:\n  - id: A-1\n");
 * if (r.ok) console.log(r.value.value);
 * ```
 */
export function parseYaml(
  text: string,
): { ok: true; value: ParsedYaml } | { ok: false; error: YamlError } {
  try {
    return { ok: true, value: parseFast(text) };
  } catch (e) {
    if (!(e instanceof yaml.YAMLException) || !/duplicated mapping key/.test(e.reason)) {
      return { ok: false, error: describeYamlError(e, text) };
    }
  }
  try {
    return { ok: true, value: parseKeepingDuplicates(text) };
  } catch (e) {
    return { ok: false, error: describeYamlError(e, text) };
  }
}

/** Lines of shallow mappings only; throws on a repeated key. */
function parseFast(text: string): ParsedYaml {
  const openLine: number[] = [];
  const lines = new Map<object, number>();
  let depth = 0;
  // deno-lint-ignore no-explicit-any
  const listener = (event: string, state: any) => {
    if (event === "open") {
      if (depth <= MAX_LINE_DEPTH) openLine[depth] = state.line;
      depth++;
      return;
    }
    depth--;
    if (depth <= MAX_LINE_DEPTH && state.kind === "mapping" && !lines.has(state.result)) {
      lines.set(state.result, openLine[depth] + 1);
    }
  };
  const value = yaml.load(text, { schema: SCHEMA, listener });
  return { value, lineOf: (m) => lines.get(m), duplicateKeys: [] };
}

/** Every repeated key noted (the later value wins), lines of shallow mappings. */
function parseKeepingDuplicates(text: string): ParsedYaml {
  const openLine: number[] = [];
  const keysOf: (string[] | Set<string> | null)[] = [];
  const lines = new Map<object, number>();
  const duplicateKeys: DuplicateKey[] = [];
  let depth = 0;

  // deno-lint-ignore no-explicit-any
  const listener = (event: string, state: any) => {
    if (event === "open") {
      openLine[depth] = state.line;
      keysOf[depth] = null;
      depth++;
      return;
    }
    depth--;
    const line = openLine[depth];
    if (state.kind === "mapping") {
      if (depth <= MAX_LINE_DEPTH && !lines.has(state.result)) lines.set(state.result, line + 1);
      return;
    }
    if (state.kind !== "scalar" || depth === 0) return;
    // A scalar directly followed by ':' is a mapping key of its parent node.
    const input: string = state.input;
    let p: number = state.position;
    while (input.charCodeAt(p) === 0x20 || input.charCodeAt(p) === 0x09) p++;
    if (input.charCodeAt(p) !== 0x3a) return;
    const key = String(state.result);
    const parent = depth - 1;
    let seen = keysOf[parent];
    if (seen === null) seen = keysOf[parent] = [];
    const repeated = Array.isArray(seen) ? seen.includes(key) : seen.has(key);
    if (repeated) {
      const lineStart = input.lastIndexOf("\n", state.position - 1) + 1;
      const keyStart = input.indexOf(key, lineStart);
      duplicateKeys.push({
        key,
        line: line + 1,
        column: (keyStart >= 0 && keyStart < state.position ? keyStart - lineStart : 0) + 1,
      });
    } else if (Array.isArray(seen)) {
      seen.push(key);
      if (seen.length > LINEAR_KEY_LIMIT) keysOf[parent] = new Set(seen);
    } else {
      seen.add(key);
    }
  };
  const value = yaml.load(text, { schema: SCHEMA, json: true, listener });
  return { value, lineOf: (m) => lines.get(m), duplicateKeys };
}

function describeYamlError(e: unknown, text: string): YamlError {
  if (e instanceof yaml.YAMLException) {
    const mark = e.mark as { line?: number; column?: number } | undefined;
    const line = typeof mark?.line === "number" ? mark.line + 1 : undefined;
    const column = typeof mark?.column === "number" ? mark.column + 1 : undefined;
    let reason = e.reason || "invalid YAML";
    if (line !== undefined && !/tab/i.test(reason) && hasTabIndent(text, line)) {
      reason += " (tab characters cannot indent YAML; use spaces)";
    }
    return { reason, line, column };
  }
  if (e instanceof RangeError) {
    return { reason: "document nests too deeply to parse" };
  }
  return { reason: errorMessage(e) };
}

/** True when line `line` (1-based) or the one before it is indented with a tab. */
function hasTabIndent(text: string, line: number): boolean {
  return [line - 1, line].some((n) => n >= 1 && /^ *\t/.test(lineText(text, n)));
}

/** The text of line `n` (1-based), without its newline. */
function lineText(text: string, n: number): string {
  let start = 0;
  for (let i = 1; i < n; i++) {
    start = text.indexOf("\n", start) + 1;
    if (start === 0) return "";
  }
  const end = text.indexOf("\n", start);
  return text.slice(start, end < 0 ? undefined : end);
}
