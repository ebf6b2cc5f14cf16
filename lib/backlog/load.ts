/**
 * The backlog: a YAML file with a top-level `gaps:` list, or a directory of `*.yaml` files read
 * in byte-wise name order (the fast path when it is sure, lib/backlog/fast.ts). Each gap keeps
 * its file and line. Messy backlogs load: duplicate ids, dependencies on ids that do not exist
 * and keys repeated inside one gap are warnings. What cannot be read as a backlog at all
 * (unreadable path, invalid YAML, no `gaps` list, a gap that is not a mapping, a missing or
 * non-string id) is an error naming the file and, where known, the line and column.
 *
 * @module
 */
import { join } from "../util/path.ts";
import { parseYaml } from "./yaml.ts";
import { scanBacklog } from "./fast.ts";
import { isRecord } from "../util/record.ts";
import { errorMessage, fail, ok, type Result } from "../util/result.ts";
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

/** A loaded backlog: gaps in file order plus warnings to show the operator. */
export interface Backlog {
  /** The path that was loaded (file or directory). */
  source: string;
  gaps: Gap[];
  /** One line each, `<file>:<line>: <what>`; never fatal. */
  warnings: string[];
}

/**
 * Largest backlog file read, in bytes: what one JavaScript string can hold
 * (V8's limit is 2^29 - 24 characters). A 100,000-gap backlog at the real
 * backlog's density is about 150 MB; a larger backlog is split into a
 * directory of files, which has no total limit.
 */
const MAX_FILE_BYTES = 512 * 1024 * 1024 - 64;

/**
 * Read a backlog from a file or a directory of `*.yaml` files.
 *
 * @param path file or directory
 * @returns the backlog, or one line saying what is wrong and where
 * @example
 * ```ts
 * const r = await loadBacklog("docs/gaps.yaml");
 * if (!r.ok) console.error(r.error);
 * ```
 */
export async function loadBacklog(path: string): Promise<Result<Backlog>> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    return fail(describeReadError(path, e));
  }
  let files: string[];
  if (info.isDirectory) {
    const listed = await listYamlFiles(path);
    if (!listed.ok) return listed;
    files = listed.value;
    if (files.length === 0) return fail(`backlog directory ${path} has no *.yaml files`);
  } else if (info.isFile) {
    files = [path];
  } else {
    return fail(`backlog ${path} is not a regular file or directory`);
  }

  const gaps: Gap[] = [];
  const warnings: string[] = [];
  for (const file of files) {
    const read = await readBytes(file);
    if (!read.ok) return read;
    const parsed = parseBacklogBytes(read.value, file);
    if (!parsed.ok) return parsed;
    // A loop, not push(...): spreading 100,000+ gaps as arguments overflows the stack.
    for (const g of parsed.value.gaps) gaps.push(g);
    for (const w of parsed.value.warnings) warnings.push(w);
  }
  for (const w of crossGapWarnings(gaps)) warnings.push(w);
  return ok({ source: path, gaps, warnings });
}

/**
 * One backlog file's bytes: the fast path when it is sure (lib/backlog/fast.ts), else the text.
 *
 * @example
 * ```ts
 * parseBacklogBytes(new TextEncoder().encode("gaps:\n  - id: A-1\n"), "x.yaml");
 * ```
 */
export function parseBacklogBytes(
  bytes: Uint8Array,
  file: string,
): Result<{ gaps: Gap[]; warnings: string[] }> {
  const fast = fastGaps(bytes, file);
  if (fast) return ok(fast);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return fail(`${file}: not UTF-8 text`);
  }
  return parseBacklogText(text, file, { fast: false });
}

/**
 * Parse the text of one backlog file: a `gaps:` mapping, a bare list of
 * gaps, or a single gap mapping (the per-file registry form).
 *
 * @param text YAML source
 * @param file name used in messages
 * @param options `fast: false`: the full parser only (the fast path's differential test)
 * @returns the gaps in file order and the warnings local to this file
 * @example
 * ```ts
 * const r = parseBacklogText("gaps:\n  - id: A-1\n    status: open\n", "x.yaml");
 * ```
 */
export function parseBacklogText(
  text: string,
  file: string,
  options: { fast?: boolean } = {},
): Result<{ gaps: Gap[]; warnings: string[] }> {
  if (!/\S/.test(text)) return fail(`${file}: empty backlog (expected a top-level 'gaps:' list)`);
  // A lone surrogate has no UTF-8: such text is the full parser's (it refuses it).
  const sure = options.fast !== false && text.isWellFormed();
  const fast = sure ? fastGaps(new TextEncoder().encode(text), file) : undefined;
  if (fast) return ok(fast);
  const parsed = parseYaml(text);
  if (!parsed.ok) {
    const { reason, line, column } = parsed.error;
    const where = line === undefined ? file : `${file}:${line}${column ? `:${column}` : ""}`;
    return fail(`${where}: invalid YAML: ${reason}`);
  }
  const { value: doc, lineOf, duplicateKeys } = parsed.value;
  const warnings = duplicateKeys.map((d) =>
    `${file}:${d.line}:${d.column}: key '${d.key}' appears twice in one mapping; the later value wins`
  );

  let list: unknown[];
  let listLine: number | undefined;
  if (Array.isArray(doc)) {
    list = doc;
    listLine = 1;
  } else if (isRecord(doc)) {
    if (Object.hasOwn(doc, "gaps")) {
      const g = doc.gaps;
      listLine = lineOf(doc);
      if (!Array.isArray(g)) {
        const hint = g === null ? " (write 'gaps: []' for an empty backlog)" : "";
        return fail(
          `${file}:${listLine ?? 1}: 'gaps' must be a list of gaps, found ${kindOf(g)}${hint}`,
        );
      }
      list = g;
    } else if (Object.hasOwn(doc, "id")) {
      list = [doc];
    } else {
      return fail(`${file}: no top-level 'gaps:' list`);
    }
  } else {
    return fail(`${file}: expected a top-level 'gaps:' list, found ${kindOf(doc)}`);
  }

  const gaps: Gap[] = [];
  for (let i = 0; i < list.length; i++) {
    const item = list[i];
    if (!isRecord(item)) {
      return fail(
        `${file}:${listLine ?? 1}: gap #${i + 1} of the list is not a mapping (found ${
          kindOf(item)
        })`,
      );
    }
    const gap = toGap(item, file, lineOf(item) ?? listLine ?? 1);
    if (typeof gap === "string") return fail(gap);
    gaps.push(gap);
    const odd = valueWarning(gap);
    if (odd !== undefined) warnings.push(odd);
  }
  return ok({ gaps, warnings });
}

/**
 * The gaps the fast scanner is sure of, made as the full path makes them;
 * undefined: the full path decides (a refused gap too: its error is the full path's).
 */
function fastGaps(
  bytes: Uint8Array,
  file: string,
): { gaps: Gap[]; warnings: string[] } | undefined {
  const scan = scanBacklog(bytes, file);
  if (!scan) return undefined;
  const gaps: Gap[] = [];
  const warnings = scan.duplicateWarnings;
  for (const { fields, line } of scan.items) {
    const gap = toGap(fields, file, line);
    if (typeof gap === "string") return undefined;
    gaps.push(gap);
  }
  for (const gap of gaps) {
    const odd = valueWarning(gap);
    if (odd !== undefined) warnings.push(odd);
  }
  return { gaps, warnings };
}

/** A mapping as a gap, or the one line saying why it is not one. */
function toGap(m: Record<string, unknown>, file: string, line: number): Gap | string {
  // Hot on huge backlogs: no per-gap allocations beyond the gap itself until something is wrong.
  const at = () => `${file}:${line}`;
  if (!Object.hasOwn(m, "id") || m.id === null || m.id === undefined) {
    return `${at()}: gap has no 'id'`;
  }
  if (typeof m.id !== "string") {
    return `${at()}: gap id must be a string, found ${kindOf(m.id)}`;
  }
  const id = m.id.trim();
  if (id === "") return `${at()}: gap id is empty`;

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
    return `${at()}: gap ${id}: '${field}' must be a single value, found ${kindOf(m[field!])}`;
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
        return `${at()}: gap ${id}: 'depends_on' entries must be gap ids, found ${kindOf(d)}`;
      }
      const s = typeof d === "string" ? d.trim() : String(d);
      if (s !== "") dependsOn.push(s);
    }
  } else {
    return `${at()}: gap ${id}: 'depends_on' must be a list of gap ids, found ${kindOf(deps)}`;
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
 * A priority or effort the picker and the monitor do not know (`high`,
 * `constructor`): the gap is never picked, or gets effort `m`'s deadline.
 * Empty values are common and stay silent.
 */
function valueWarning(g: Gap): string | undefined {
  const at = `${g.file}:${g.line}: gap ${oneLine(g.id)}`;
  if (g.priority !== "" && !isPriorityLike(g.priority)) {
    return `${at}: unknown priority '${oneLine(g.priority)}' (P0, P1, P2, ...); it is never picked`;
  }
  const effort = g.effort.toLowerCase();
  if (effort !== "" && !isEffort(effort)) {
    return `${at}: unknown effort '${oneLine(g.effort)}' (${EFFORTS.join(", ")}); ` +
      `its deadline is effort m's`;
  }
  return undefined;
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

/** Duplicate ids and dependencies on ids that no gap has. */
function crossGapWarnings(gaps: readonly Gap[]): string[] {
  const warnings: string[] = [];
  const first = new Map<string, Gap>();
  for (const g of gaps) {
    const seen = first.get(g.id);
    if (seen) {
      warnings.push(
        `${g.file}:${g.line}: duplicate gap id ${g.id} (first at ${seen.file}:${seen.line}); ` +
          `the first pickable occurrence wins`,
      );
    } else first.set(g.id, g);
  }
  for (const g of gaps) {
    for (const d of g.dependsOn) {
      if (!first.has(d)) {
        warnings.push(
          `${g.file}:${g.line}: gap ${g.id} depends on unknown id ${d}; it stays blocked`,
        );
      }
    }
  }
  return warnings;
}

async function listYamlFiles(dir: string): Promise<Result<string[]>> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.name.startsWith(".")) continue;
      if (!/\.ya?ml$/i.test(entry.name)) continue;
      const full = join(dir, entry.name);
      const isFile = entry.isFile ||
        (entry.isSymlink && (await Deno.stat(full).catch(() => null))?.isFile);
      if (isFile) names.push(entry.name);
    }
  } catch (e) {
    return fail(describeReadError(dir, e));
  }
  const enc = new TextEncoder();
  names.sort((a, b) => compareBytes(enc.encode(a), enc.encode(b)));
  return ok(names.map((n) => join(dir, n)));
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

async function readBytes(file: string): Promise<Result<Uint8Array>> {
  try {
    const info = await Deno.stat(file);
    if (info.size > MAX_FILE_BYTES) {
      return fail(
        `${file}: larger than 512 MiB, more than one file can hold here; ` +
          "split it into a directory of *.yaml files",
      );
    }
    return ok(await Deno.readFile(file));
  } catch (e) {
    return fail(describeReadError(file, e));
  }
}

function describeReadError(path: string, e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return `backlog not found: ${path}`;
  if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable) {
    return `cannot read backlog ${path}: permission denied`;
  }
  if (e instanceof Deno.errors.IsADirectory) return `cannot read backlog ${path}: is a directory`;
  return `cannot read backlog ${path}: ${errorMessage(e)}`;
}

function isScalar(v: unknown): v is string | number | boolean {
  return typeof v === "string" || typeof v === "number" || typeof v === "boolean";
}

function kindOf(v: unknown): string {
  if (v === null || v === undefined) return "nothing";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "string") return `a string${v.length <= 40 ? ` (${JSON.stringify(v)})` : ""}`;
  return `a ${typeof v} (${String(v)})`;
}
