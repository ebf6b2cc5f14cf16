/**
 * The fast path of loading a backlog: a line scanner for the shape real
 * backlogs have (a top-level `gaps:` block list of block mappings whose
 * values are plain, quoted, flow-list or block-list scalars and block text),
 * reading only the fields a run uses. It is exactly as strict as the full
 * parser (lib/backlog/yaml.ts) because it never decides anything it is not
 * sure of: whatever it does not recognise (anchors, tags, flow mappings,
 * multi-line quotes, tabs, a BOM, CR, control characters, a value that may
 * not be text, a gap the loader would refuse, ...) returns `undefined`, and
 * the caller parses the file the full way. The rest of the document (`meta:`,
 * `domains:`, ...) is checked by the full parser, without the gaps.
 * `tests/fast_backlog_test.ts` holds it to the full parser's gaps, warnings
 * and errors on every fixture and thousands of generated backlogs.
 *
 * @module
 */
import { parseYaml } from "./yaml.ts";
import { isRecord } from "../util/record.ts";

/** A gap's fields as the full parser would give them (only those a run reads). */
export type FastItem = { fields: Record<string, unknown>; line: number };

/** What the scanner found: the gaps' fields and lines, and the repeated keys' warnings. */
export interface FastScan {
  items: FastItem[];
  /** `file:line:col: key 'k' appears twice ...`, in document order. */
  duplicateWarnings: string[];
}

/** The fields a run reads: their values must be read exactly (else: the full parser). */
const READ = new Set(["id", "title", "priority", "effort", "status", "depends_on"]);

/** A plain scalar that YAML's core schema may read as something else than text. */
const NOT_SURELY_TEXT = /^(?:[-+.0-9~]|(?:null|Null|NULL|true|True|TRUE|false|False|FALSE)$)/;

/** Stops the scan: the full parser decides. */
class Unsure extends Error {}

function unsure(): never {
  throw new Unsure();
}

/**
 * Scan a backlog's text; undefined when the full parser must decide.
 *
 * @example
 * ```ts
 * const s = scanBacklog("gaps:\n  - id: A-1\n    priority: P1\n", "g.yaml");
 * s?.items[0].fields.id; // "A-1"
 * ```
 */
export function scanBacklog(text: string, file: string): FastScan | undefined {
  try {
    if (!printable(text)) return undefined;
    const lines = text.split("\n");
    const start = lines.findIndex((l) => /^gaps:(?: +#.*| *)$/.test(l));
    if (start < 0) return undefined;
    const scan = new Scanner(lines, file);
    const end = scan.list(start + 1);
    if (!restIsSound(lines, start, end)) return undefined;
    return { items: scan.items, duplicateWarnings: scan.duplicates };
  } catch (e) {
    if (e instanceof Unsure) return undefined;
    throw e;
  }
}

/**
 * No character js-yaml refuses or that this scanner leaves to it: controls
 * (tabs and CR too), DEL and C1, a surrogate out of its pair, U+FFFE/U+FFFF,
 * a BOM. One regular expression over the text (an emoji's pair is fine).
 */
const UNUSUAL =
  /[^\n\x20-\x7e\u00a0-\ufefe\uff00-\ufffd]|[\ud800-\udbff](?![\udc00-\udfff])|(?:[^\ud800-\udbff]|^)[\udc00-\udfff]/;

function printable(text: string): boolean {
  return !UNUSUAL.test(text);
}

/**
 * The document without its gaps list is a mapping the full parser reads
 * without a repeated key, with no second `gaps`, no directive and no second
 * document (a gap's anchor used there, or there a key repeated, is left to
 * the full parse).
 */
function restIsSound(lines: string[], start: number, end: number): boolean {
  const rest = [...lines.slice(0, start), ...lines.slice(end)];
  if (rest.some((l) => /^(?:---|\.\.\.|%)/.test(l))) return false;
  const parsed = parseYaml(rest.join("\n"));
  if (!parsed.ok || parsed.value.duplicateKeys.length > 0) return false;
  const doc = parsed.value.value;
  return (doc === undefined || doc === null || isRecord(doc)) &&
    !(isRecord(doc) && Object.hasOwn(doc, "gaps"));
}

/** Indent of a line: its leading spaces. */
function indentOf(line: string): number {
  let i = 0;
  while (line.charCodeAt(i) === 0x20) i++;
  return i;
}

/** A line with nothing to read: blank, or a comment. */
function isQuiet(line: string): boolean {
  const i = indentOf(line);
  return i === line.length || line.charCodeAt(i) === 0x23;
}

/** Scans the gaps list, line by line. */
class Scanner {
  readonly items: FastItem[] = [];
  readonly duplicates: string[] = [];

  constructor(readonly lines: string[], readonly file: string) {}

  /** The list's items from line `i`; returns the index of the first line after the list. */
  list(i: number): number {
    const lines = this.lines;
    while (i < lines.length && isQuiet(lines[i])) i++;
    // `gaps:` with no list under it: the full parser says what is wrong.
    if (i >= lines.length || !lines[i].startsWith("- ", indentOf(lines[i]))) unsure();
    const dash = indentOf(lines[i]);
    for (;;) {
      while (i < lines.length && isQuiet(lines[i])) i++;
      if (i >= lines.length) return i;
      const line = lines[i];
      const indent = indentOf(line);
      if (indent === 0 && !line.startsWith("- ")) return i; // the next top-level key
      if (indent !== dash || !line.startsWith("- ", indent)) unsure();
      i = this.item(i, dash);
    }
  }

  /** One gap (`- key: value` and its keys below); returns the next line's index. */
  item(i: number, dash: number): number {
    const lines = this.lines;
    let key = dash + 2;
    while (lines[i].charCodeAt(key) === 0x20) key++;
    const fields: Record<string, unknown> = {};
    const seen = new Set<string>();
    this.items.push({ fields, line: i + 1 });
    i = this.entry(i, key, fields, seen);
    for (;;) {
      while (i < lines.length && isQuiet(lines[i])) i++;
      if (i >= lines.length) return i;
      const indent = indentOf(lines[i]);
      if (indent <= dash) return i;
      if (indent !== key) unsure();
      i = this.entry(i, key, fields, seen);
    }
  }

  /** One `key: value` at column `at` of line `i`; returns the next line's index. */
  entry(i: number, at: number, fields: Record<string, unknown>, seen: Set<string>): number {
    const line = this.lines[i];
    const m = /^([A-Za-z_][A-Za-z0-9_-]*):(?: +|$)/.exec(line.slice(at));
    if (!m) unsure();
    const key = m[1];
    if (seen.has(key)) {
      this.duplicates.push(
        `${this.file}:${i + 1}:${at + 1}: key '${key}' appears twice in one mapping; ` +
          "the later value wins",
      );
    }
    seen.add(key);
    const rest = line.slice(at + m[0].length);
    if (rest === "" || rest.startsWith("#")) return this.nested(i, at, key, fields);
    const c = rest[0];
    if (c === "|" || c === ">") {
      if (READ.has(key)) unsure();
      if (!/^[|>][-+]?(?: +#.*| *)$/.test(rest)) unsure();
      return this.blockText(i + 1, at);
    }
    const value = c === "[" ? flowList(rest) : inlineScalar(rest, READ.has(key));
    if (READ.has(key)) fields[key] = value;
    return this.after(i + 1, at);
  }

  /** After a one-line value: the next line that says something must not be deeper. */
  after(i: number, at: number): number {
    const lines = this.lines;
    let j = i;
    while (j < lines.length && isQuiet(lines[j])) j++;
    if (j < lines.length && indentOf(lines[j]) > at) unsure();
    return i;
  }

  /** `key:` with nothing after it: null, or a block list of scalars below it. */
  nested(i: number, at: number, key: string, fields: Record<string, unknown>): number {
    const lines = this.lines;
    let j = i + 1;
    while (j < lines.length && isQuiet(lines[j])) j++;
    const indent = j < lines.length ? indentOf(lines[j]) : -1;
    const isItem = j < lines.length && lines[j].startsWith("- ", indent);
    if (indent > at && !isItem) unsure(); // a nested mapping, or a multi-line scalar
    if (!(isItem && indent >= at)) {
      if (READ.has(key)) fields[key] = null;
      return i + 1;
    }
    const list: string[] = [];
    for (;;) {
      list.push(inlineScalar(lines[j].slice(indent + 2), READ.has(key)));
      j = this.after(j + 1, indent);
      while (j < lines.length && isQuiet(lines[j])) j++;
      if (j >= lines.length || indentOf(lines[j]) !== indent) break;
      if (!lines[j].startsWith("- ", indent)) {
        if (indent > at) unsure();
        break;
      }
    }
    if (READ.has(key)) fields[key] = list;
    return j;
  }

  /** The lines of a block scalar under a key at column `at`; returns the next line's index. */
  blockText(i: number, at: number): number {
    const lines = this.lines;
    let content = -1;
    let blankSpaces = 0;
    for (; i < lines.length; i++) {
      const line = lines[i];
      const indent = indentOf(line);
      if (indent === line.length) {
        if (content < 0) blankSpaces = Math.max(blankSpaces, indent);
        continue;
      }
      if (indent <= at) return i;
      if (content < 0) {
        content = indent;
        if (blankSpaces > content) unsure();
      } else if (indent < content) unsure();
    }
    return i;
  }
}

/**
 * A one-line value: a plain scalar (text for sure when `read`, else any),
 * or a single- or double-quoted one, and then at most a comment.
 */
function inlineScalar(text: string, read: boolean): string {
  const c = text[0];
  if (c === '"') return doubleQuoted(text);
  if (c === "'") return singleQuoted(text);
  if (c === undefined || "-?:,[]{}#&*!|>%@`".includes(c)) {
    if (!((c === "-" || c === "?" || c === ":") && text.length > 1 && text[1] !== " ")) unsure();
  }
  const hash = text.indexOf(" #");
  const value = (hash < 0 ? text : text.slice(0, hash)).trimEnd();
  if (value.includes(": ") || value.endsWith(":")) unsure();
  if (read && NOT_SURELY_TEXT.test(value)) unsure();
  return value;
}

/** What follows a closing quote: nothing, or a comment. */
function tailIsQuiet(text: string): boolean {
  return /^ *(?:#.*)?$/.test(text) && !/^#/.test(text);
}

function singleQuoted(text: string): string {
  for (let i = 1; i < text.length; i++) {
    if (text[i] !== "'") continue;
    if (text[i + 1] === "'") {
      i++;
      continue;
    }
    if (!tailIsQuiet(text.slice(i + 1))) unsure();
    return text.slice(1, i).replaceAll("''", "'");
  }
  return unsure(); // a quote that goes on to the next line
}

/** The escapes read exactly here; any other is left to the full parser. */
const ESCAPES: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", n: "\n", t: "\t" };

function doubleQuoted(text: string): string {
  let out = "";
  for (let i = 1; i < text.length; i++) {
    const c = text[i];
    if (c === "\\") {
      const e = ESCAPES[text[i + 1]];
      if (e === undefined) unsure();
      out += e;
      i++;
      continue;
    }
    if (c === '"') {
      if (!tailIsQuiet(text.slice(i + 1))) unsure();
      return out;
    }
    out += c;
  }
  return unsure(); // a quote that goes on to the next line
}

/** `[a, "b", c]` on one line: its items as text. */
function flowList(text: string): string[] {
  const close = text.lastIndexOf("]");
  if (close < 0 || !tailIsQuiet(text.slice(close + 1))) unsure();
  const inner = text.slice(1, close);
  if (/[[\]{}#]/.test(inner)) unsure();
  if (inner.trim() === "") return [];
  const items: string[] = [];
  for (const part of inner.split(",")) {
    const t = part.trim();
    if (t === "") unsure(); // `[a,,b]` or a trailing comma: the full parser decides
    if (t[0] === '"' || t[0] === "'") {
      if (t.includes(",") || t.includes("\\")) unsure();
      items.push(inlineScalar(t, true));
    } else items.push(inlineScalar(t, true));
  }
  return items;
}
