/**
 * The fast path of loading a backlog: a scanner over the file's bytes for
 * the shape real backlogs have (a top-level `gaps:` block list of block
 * mappings whose values are plain, quoted, flow-list or block-list scalars,
 * block text, and, in fields no run reads, nested mappings and text over
 * several lines in single quotes), decoding only the fields a run uses; the
 * file is never turned into one string (a backlog with an em dash would be
 * a two-byte string twice its size). It is exactly as strict as the full
 * parser (lib/backlog/parse.ts) because it never decides anything it is not
 * sure of: whatever it does not recognise (anchors, tags, flow mappings,
 * double-quoted text over several lines, tabs, a BOM, CR, control
 * characters, bytes that are not UTF-8, a value that may not be text, a gap
 * the loader would refuse, ...) returns `undefined`, and the caller parses
 * the file the full way. The rest of the document (`meta:`, `domains:`,
 * ...) is checked here too, as a mapping of values no run reads: a file the
 * scanner is sure of needs no YAML parser at all. `tests/fast_backlog_test.ts`
 * holds it to the full parser's gaps, warnings and errors on every fixture,
 * hand-picked edges and thousands of generated backlogs.
 *
 * @module
 */
import { Lines } from "./fast_lines.ts";
import { flowList, inlineScalar, mayNotBeText, Unsure, unsure } from "./fast_values.ts";
import { duplicateKeyWarning, type Gap, toGap, valueWarning } from "./gap.ts";

/** What the scanner found: the gaps, made as the full path makes them, and the repeated keys' warnings. */
export interface FastScan {
  gaps: Gap[];
  /** `file:line:col: key 'k' appears twice ...`, in document order. */
  duplicateWarnings: string[];
  /**
   * The document without its gaps list, when the scanner could not vouch
   * for it (a flow mapping in `meta:`, say): the full parser checks that
   * much (lib/backlog/parse.ts `restIsSound`). Undefined: checked here.
   */
  rest?: string;
}

/** Nested mappings deeper than this are the full parser's (which refuses a document too deep). */
const MAX_DEPTH = 32;

/** Keys in one mapping past which a repeat is looked up in a set, not a list (as lib/backlog/yaml.ts). */
const LINEAR_KEYS = 16;

/** The fields a run reads (those of {@linkcode newFields}): read exactly, else the full parser. */
const READ: ReadonlySet<string> = new Set(Object.keys(newFields()));

/**
 * The gaps the fast scanner is sure of, made as the full path makes them;
 * undefined: the full path decides (a refused gap too: its error is the full path's).
 *
 * @example
 * ```ts
 * fastGaps(new TextEncoder().encode("gaps:\n  - id: A-1\n"), "g.yaml")?.gaps[0].id; // "A-1"
 * ```
 */
export function fastGaps(
  bytes: Uint8Array,
  file: string,
): { gaps: Gap[]; warnings: string[]; rest?: string } | undefined {
  const scan = scanBacklog(bytes, file);
  if (!scan) return undefined;
  const { gaps, duplicateWarnings: warnings } = scan;
  for (let i = 0; i < gaps.length; i++) {
    const odd = valueWarning(gaps[i]);
    if (odd !== undefined) warnings.push(odd);
  }
  return { gaps, warnings, rest: scan.rest };
}

/**
 * Scan a backlog file's bytes; undefined when the full parser must decide.
 *
 * @example
 * ```ts
 * const bytes = new TextEncoder().encode("gaps:\n  - id: A-1\n    priority: P1\n");
 * scanBacklog(bytes, "g.yaml")?.gaps[0].id; // "A-1"
 * ```
 */
export function scanBacklog(bytes: Uint8Array, file: string): FastScan | undefined {
  try {
    const lines = Lines.of(bytes);
    if (!lines) return undefined;
    let start = -1;
    for (let i = 0; i < lines.count && start < 0; i++) {
      if (lines.indent(i) === 0 && lines.isGapsKey(i)) start = i;
    }
    if (start < 0) return undefined;
    const scan = new Scanner(lines, file);
    const end = scan.list(start + 1);
    const rest = restChecked(scan, start, end) ? undefined : restText(lines, start, end);
    return { gaps: scan.gaps, duplicateWarnings: scan.duplicates, rest };
  } catch (e) {
    // A RangeError too (a stack too deep, say): whatever went wrong here, the full parser decides.
    if (e instanceof Unsure || e instanceof RangeError) return undefined;
    throw e;
  }
}

/**
 * Is the document without its gaps list a block mapping at column 0 of
 * values the scanner vouches for (as a gap's unread values: scalars, lists
 * of them, block text, nested mappings), with no key twice, no second
 * `gaps`, no directive and no second document (none of those is a key at
 * column 0)? Then a typical backlog needs no YAML parser at all
 * (lib/backlog/load.ts loads it only when needed); false: the full parser
 * checks the rest ({@linkcode FastScan}).
 */
function restChecked(scan: Scanner, start: number, end: number): boolean {
  const lines = scan.lines;
  const seen = new Keys();
  seen.repeat("gaps");
  try {
    for (let i = scan.next(0); i < lines.count; i = scan.next(i)) {
      if (i === start) {
        i = end;
        continue;
      }
      i = scan.entry(i, 0, {}, seen, null);
    }
    return true;
  } catch (e) {
    if (e instanceof Unsure) return false;
    throw e;
  }
}

/** The lines of the document outside its gaps list (`start` to `end`), as one text. */
function restText(lines: Lines, start: number, end: number): string {
  const rest: string[] = [];
  for (let i = 0; i < lines.count; i++) if (i < start || i >= end) rest.push(lines.text(i));
  return rest.join("\n");
}

/** The keys of one mapping: a list while short, a set past {@linkcode LINEAR_KEYS}. */
class Keys {
  #list: string[] = [];
  #set: Set<string> | undefined;

  /** Was `key` seen before in this mapping? It is seen from now on. */
  repeat(key: string): boolean {
    if (this.#set) {
      if (this.#set.has(key)) return true;
      this.#set.add(key);
      return false;
    }
    if (this.#list.includes(key)) return true;
    this.#list.push(key);
    if (this.#list.length > LINEAR_KEYS) this.#set = new Set(this.#list);
    return false;
  }

  /** Forget every key (the next gap's mapping). */
  clear(): void {
    this.#list.length = 0;
    this.#set = undefined;
  }
}

/**
 * A gap's fields before its lines are read: every field a run reads (the
 * one list of them: {@linkcode READ} is its keys), as absent (toGap reads
 * undefined as absent), so the object never grows.
 */
function newFields(): Record<string, unknown> {
  return {
    id: undefined,
    title: undefined,
    priority: undefined,
    effort: undefined,
    status: undefined,
    depends_on: undefined,
  };
}

/** Scans the gaps list, line by line. */
class Scanner {
  readonly gaps: Gap[] = [];
  readonly duplicates: string[] = [];
  /** The keys of the gap being read (emptied per gap). */
  private readonly seen = new Keys();
  /** How many nested mappings the line being read is in. */
  private depth = 0;

  constructor(readonly lines: Lines, readonly file: string) {}

  /** The next line from `i` that says something (not blank, not a comment). */
  next(i: number): number {
    while (i < this.lines.count && this.lines.quiet(i)) i++;
    return i;
  }

  /** The list's items from line `i`; returns the index of the first line after the list. */
  list(i: number): number {
    const lines = this.lines;
    i = this.next(i);
    // `gaps:` with no list under it: the full parser says what is wrong.
    if (i >= lines.count || !lines.isItem(i)) unsure();
    const dash = lines.indent(i);
    for (;;) {
      i = this.next(i);
      if (i >= lines.count) return i;
      const indent = lines.indent(i);
      if (indent === 0 && !lines.isItem(i)) return i; // the next top-level key
      if (indent !== dash || !lines.isItem(i)) unsure();
      // Made a gap at once: the fields die young, not after the whole file (fewer GC copies).
      const fields = newFields();
      const line = i + 1;
      i = this.item(i, dash, fields);
      const gap = toGap(fields, this.file, line);
      if (typeof gap === "string") unsure(); // refused: the full path says why
      this.gaps.push(gap);
    }
  }

  /** One gap's mapping (`- key: value` and its keys below) into `fields`; returns the next line's index. */
  item(i: number, dash: number, fields: Record<string, unknown>): number {
    const lines = this.lines;
    const key = lines.spacesFrom(i, dash + 2);
    const seen = this.seen;
    seen.clear();
    i = this.entry(i, key, fields, seen);
    for (;;) {
      i = this.next(i);
      if (i >= lines.count) return i;
      const indent = lines.indent(i);
      if (indent <= dash) return i;
      if (indent !== key) unsure();
      i = this.entry(i, key, fields, seen);
    }
  }

  /**
   * One `key: value` at column `at` of line `i`; returns the next line's
   * index. `keys`: the fields to read into `fields`; null: a mapping no
   * run reads (the rest of the document, a nested one), where a key twice
   * is left to the full parser.
   */
  entry(
    i: number,
    at: number,
    fields: Record<string, unknown>,
    seen: Keys,
    keys: ReadonlySet<string> | null = READ,
  ): number {
    const lines = this.lines;
    const colon = lines.keyEnd(i, at);
    if (colon < 0) unsure();
    const key = lines.ascii(i, at, colon);
    // `true` and `True` are one key to YAML (so are the spellings of null and false).
    if (mayNotBeText(key)) unsure();
    if (seen.repeat(key)) {
      if (keys === null) unsure();
      this.duplicates.push(duplicateKeyWarning(this.file, i + 1, at + 1, key));
    }
    const col = lines.spacesFrom(i, colon + 1);
    const read = keys !== null && keys.has(key);
    if (col === lines.width(i) || lines.byte(i, col) === 0x23) {
      return this.nested(i, at, read ? key : undefined, fields);
    }
    const c = lines.byte(i, col);
    if (c === 0x7c || c === 0x3e) { // `|` or `>`: a block scalar
      if (read || !lines.blockHeader(i, col)) unsure();
      return this.blockText(i + 1, at);
    }
    if (!read) {
      // Text in single quotes may go on over lines; anything else no run reads is one line.
      if (c === 0x27) return this.quotedLines(i, col + 1, at);
      this.unreadValue(i, col);
      return i + 1;
    }
    const plain = lines.plainValue(i, col, key !== "id");
    if (plain !== undefined) {
      if (mayNotBeText(plain)) unsure();
      fields[key] = plain;
      return i + 1;
    }
    // The common lists and titles read from the bytes; anything else decoded and looked at closer.
    const common = c === 0x5b
      ? lines.plainIds(i, col)
      : c === 0x22
      ? lines.quotedText(i, col)
      : undefined;
    if (common !== undefined) {
      fields[key] = common;
      return i + 1;
    }
    const rest = lines.text(i, col);
    fields[key] = c === 0x5b ? flowList(rest) : inlineScalar(rest, true);
    return i + 1;
  }

  /** `key:` with nothing after it: null, or a block list of scalars below it. */
  nested(i: number, at: number, read: string | undefined, fields: Record<string, unknown>): number {
    const lines = this.lines;
    let j = this.next(i + 1);
    const indent = j < lines.count ? lines.indent(j) : -1;
    const isItem = j < lines.count && lines.isItem(j);
    if (indent > at && !isItem) {
      if (read) unsure(); // a nested mapping, or a multi-line scalar, where text must be
      return this.mapping(j, indent);
    }
    if (!(isItem && indent >= at)) {
      if (read) fields[read] = null;
      return i + 1;
    }
    const list: string[] = [];
    for (;;) {
      const col = lines.spacesFrom(j, indent + 2);
      if (read) list.push(inlineScalar(lines.text(j, col), true));
      else this.unreadValue(j, col);
      j = this.next(j + 1);
      if (j >= lines.count || lines.indent(j) !== indent) break;
      if (!lines.isItem(j)) {
        if (indent > at) unsure();
        break;
      }
    }
    if (read) fields[read] = list;
    return j;
  }

  /**
   * Check a one-line value no run reads, from column `col` of line `i`: no
   * text made when it is surely sound, else decoded and looked at closer.
   */
  unreadValue(i: number, col: number): void {
    if (!this.lines.plainlySound(i, col)) inlineScalar(this.lines.text(i, col), false);
  }

  /** A nested block mapping at column `at` from line `i` (no run reads it); the next line's index. */
  mapping(i: number, at: number): number {
    const lines = this.lines;
    const seen = new Keys();
    if (++this.depth > MAX_DEPTH) unsure();
    for (;;) {
      i = this.next(this.entry(i, at, {}, seen, null));
      // Deeper, or a list item: no key at `at` (entry refuses it).
      if (i >= lines.count || lines.indent(i) < at) break;
    }
    this.depth--;
    return i;
  }

  /**
   * The rest of a single-quoted scalar no run reads, from column `col` of
   * line `i` on, its later lines deeper than its key's column `at`; returns
   * the line after the one it closes on.
   */
  quotedLines(i: number, col: number, at: number): number {
    const lines = this.lines;
    for (;;) {
      const close = lines.closingQuote(i, col);
      if (close >= 0) {
        if (!lines.quietFrom(i, close + 1)) unsure();
        return i + 1;
      }
      do i++; while (i < lines.count && lines.blank(i));
      if (i >= lines.count || lines.indent(i) <= at) unsure();
      col = lines.indent(i);
    }
  }

  /** The lines of a block scalar under a key at column `at`; returns the next line's index. */
  blockText(i: number, at: number): number {
    const lines = this.lines;
    let content = -1;
    let blankSpaces = 0;
    for (; i < lines.count; i++) {
      const indent = lines.indent(i);
      if (lines.blank(i)) {
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
