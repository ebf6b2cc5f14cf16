/**
 * A backlog file's lines over its bytes, for the fast scanner
 * (lib/backlog/fast.ts): where each line starts, its indent, whether it is
 * blank or a comment, and its values read from the bytes only when asked.
 * Made after lib/backlog/fast_check.ts has found the newlines and refused
 * what the scanner leaves to the full parser.
 *
 * @module
 */
import { checkedNewlinesOf } from "./fast_check.ts";
import { startsSurelyText } from "./fast_values.ts";

const BLANK = 1;
const COMMENT = 2;

const decoder = new TextDecoder();

/** The lines of one file. */
export class Lines {
  private constructor(
    readonly bytes: Uint8Array,
    readonly count: number,
    private readonly starts: Int32Array,
    private readonly indents: Int32Array,
    private readonly flags: Uint8Array,
  ) {}

  /**
   * The lines of `bytes`; undefined when a byte is one the scanner leaves to the full parser.
   *
   * @example
   * ```ts
   * Lines.of(new TextEncoder().encode("a: 1\n  # c\n"))?.count; // 3
   * ```
   */
  static of(bytes: Uint8Array): Lines | undefined {
    const newlines = checkedNewlinesOf(bytes);
    if (!newlines) return undefined;
    const count = newlines.length + 1;
    const starts = new Int32Array(count + 1);
    const indents = new Int32Array(count);
    const flags = new Uint8Array(count);
    const n = bytes.length;
    for (let line = 0; line < count; line++) {
      const start = line === 0 ? 0 : newlines[line - 1] + 1;
      starts[line] = start;
      let i = start;
      while (i < n && bytes[i] === 0x20) i++;
      indents[line] = i - start;
      flags[line] = i >= n || bytes[i] === 0x0a ? BLANK : bytes[i] === 0x23 ? COMMENT : 0;
    }
    starts[count] = n + 1;
    return new Lines(bytes, count, starts, indents, flags);
  }

  /** Leading spaces of line `i`. */
  indent(i: number): number {
    return this.indents[i];
  }

  /** Blank or a comment. */
  quiet(i: number): boolean {
    return this.flags[i] & (BLANK | COMMENT) ? true : false;
  }

  /** Only spaces. */
  blank(i: number): boolean {
    return (this.flags[i] & BLANK) !== 0;
  }

  /** `- ` at its indent: a block list's item. */
  isItem(i: number): boolean {
    const p = this.starts[i] + this.indents[i];
    return this.bytes[p] === 0x2d && this.bytes[p + 1] === 0x20 && p + 1 < this.end(i);
  }

  /** `gaps:` alone (spaces or a comment after it). */
  isGapsKey(i: number): boolean {
    const s = this.starts[i];
    if (this.end(i) - s < 5 || this.ascii(i, 0, 5) !== "gaps:") return false;
    return /^(?: +#.*| *)$/.test(this.text(i, 5));
  }

  /** The column of the first non-space at or after column `col`. */
  spacesFrom(i: number, col: number): number {
    const s = this.starts[i];
    const end = this.end(i);
    while (s + col < end && this.bytes[s + col] === 0x20) col++;
    return col;
  }

  /**
   * The column of the `:` ending a key (`[A-Za-z_][A-Za-z0-9_-]*`) that
   * starts at column `at`, when a space or the line's end follows it; -1: none.
   */
  keyEnd(i: number, at: number): number {
    const s = this.starts[i];
    const end = this.end(i);
    let p = s + at;
    const first = this.bytes[p];
    if (!(isAlpha(first) || first === 0x5f)) return -1;
    for (p++; p < end; p++) {
      const b = this.bytes[p];
      if (isWordByte(b)) continue;
      if (b !== 0x3a) return -1;
      return p + 1 === end || this.bytes[p + 1] === 0x20 ? p - s : -1;
    }
    return -1;
  }

  /** Keys seen, by a hash of their bytes: a key read again is the same string, not a new one. */
  private readonly keys = new Map<number, string>();

  /** Columns `a` to `b` of line `i`, known to be ASCII (a key). */
  ascii(i: number, a: number, b: number): string {
    const s = this.starts[i] + a;
    const e = this.starts[i] + b;
    let h = e - s;
    // Kept a small integer (31 bits), the map's fast key.
    for (let p = s; p < e; p++) h = (Math.imul(h, 31) + this.bytes[p]) & 0x3fffffff;
    const hit = this.keys.get(h);
    if (hit !== undefined && hit.length === e - s && this.same(hit, s)) return hit;
    const key = asciiText(this.bytes, s, e);
    this.keys.set(h, key);
    return key;
  }

  private same(key: string, at: number): boolean {
    for (let k = 0; k < key.length; k++) if (key.charCodeAt(k) !== this.bytes[at + k]) return false;
    return true;
  }

  /**
   * A one-line value that is surely sound and needs no reading (a value a
   * run never uses): plain text with no `: `, or a quote closed on its line
   * with only `\"`, `\\`, `\/`, `\n`, `\t` escapes, then at most a comment.
   * False: decode it and look closer.
   */
  plainlySound(i: number, col: number): boolean {
    const s = this.starts[i] + col;
    const end = this.end(i);
    const bytes = this.bytes;
    const b = bytes[s];
    if (b === 0x27) {
      const close = this.closingQuote(i, col + 1);
      return close >= 0 && this.quietFrom(i, close + 1);
    }
    if (b === 0x22) {
      for (let p = s + 1; p < end; p++) {
        const c = bytes[p];
        if (c === 0x5c) {
          const e = bytes[p + 1];
          if (e !== 0x22 && e !== 0x5c && e !== 0x2f && e !== 0x6e && e !== 0x74) return false;
          p++;
        } else if (c === 0x22) return this.quietTail(p + 1, end);
      }
      return false;
    }
    if (!(isAlpha(b) || (b >= 0x30 && b <= 0x39) || b >= 0x80 || b === 0x2f || b === 0x28)) {
      return false;
    }
    for (let p = s + 1; p < end; p++) {
      const c = bytes[p];
      if (c === 0x3a && (p + 1 === end || bytes[p + 1] === 0x20)) return false;
      if (c === 0x23 && bytes[p - 1] === 0x20) return true; // a comment
    }
    return true;
  }

  /**
   * A plain one-line value of ASCII characters, as inlineScalar reads it (up
   * to a comment, trailing spaces off); `shared`: the same string each time
   * it repeats (`P1`, `done`; not an id, which never does); undefined: not
   * that simple, decode and look closer.
   */
  plainValue(i: number, col: number, shared: boolean): string | undefined {
    const s = this.starts[i] + col;
    const end = this.end(i);
    const bytes = this.bytes;
    const b = bytes[s];
    if (!(isAlpha(b) || (b >= 0x30 && b <= 0x39) || b === 0x5f)) return undefined;
    let last = s;
    for (let p = s; p < end; p++) {
      const c = bytes[p];
      if (c < 0x20 || c >= 0x7f) return undefined;
      if (c === 0x3a && (p + 1 === end || bytes[p + 1] === 0x20)) return undefined;
      if (c === 0x23 && bytes[p - 1] === 0x20) break; // a comment
      if (c !== 0x20) last = p;
    }
    if (last - s > 64) return undefined;
    if (!shared) {
      return asciiText(bytes, s, last + 1);
    }
    return this.ascii(i, col, last + 1 - this.starts[i]);
  }

  /**
   * A flow list of ids at column `col` read from the bytes: `[]`, or
   * `[A-1, B_2]` (items of letters, digits, `-` and `_`, each starting with
   * a letter other than n, t or f, so surely text; `, ` between them), then
   * at most a comment. Undefined: not that simple, decode and look closer.
   */
  plainIds(i: number, col: number): string[] | undefined {
    const end = this.end(i);
    const bytes = this.bytes;
    let p = this.starts[i] + col + 1;
    const ids: string[] = [];
    if (bytes[p] === 0x5d) return this.quietTail(p + 1, end) ? ids : undefined;
    for (;;) {
      const s = p;
      if (!startsSurelyText(bytes[p])) return undefined;
      for (p++; p < end && isWordByte(bytes[p]); p++);
      if (p - s > MAX_ASCII) return undefined;
      ids.push(asciiText(bytes, s, p));
      if (bytes[p] === 0x5d) return this.quietTail(p + 1, end) ? ids : undefined;
      if (bytes[p] !== 0x2c || bytes[p + 1] !== 0x20) return undefined;
      p += 2;
    }
  }

  /**
   * A double-quoted value at column `col` with no escape in it, then at
   * most a comment, read from the bytes between the quotes. Undefined: not
   * that simple, decode and look closer.
   */
  quotedText(i: number, col: number): string | undefined {
    const end = this.end(i);
    const bytes = this.bytes;
    const s = this.starts[i] + col + 1;
    let ascii = true;
    for (let p = s; p < end; p++) {
      const c = bytes[p];
      if (c === 0x22) {
        if (!this.quietTail(p + 1, end)) return undefined;
        return ascii && p - s <= MAX_ASCII
          ? asciiText(bytes, s, p)
          : decoder.decode(bytes.subarray(s, p));
      }
      if (c === 0x5c) return undefined;
      if (c >= 0x80) ascii = false;
    }
    return undefined; // goes on to the next line
  }

  /** A block scalar's header (`|`, `>-`, `|+ # c`) at column `col`, without an indent digit. */
  blockHeader(i: number, col: number): boolean {
    let p = this.starts[i] + col;
    const end = this.end(i);
    const bytes = this.bytes;
    if (bytes[p] !== 0x7c && bytes[p] !== 0x3e) return false;
    p++;
    if (bytes[p] === 0x2d || bytes[p] === 0x2b) p++;
    return this.quietTail(p, end);
  }

  /**
   * The column of the `'` closing a single-quoted scalar on line `i`, looking
   * from column `col` (a doubled `''` is a quote inside); -1: not on this line.
   */
  closingQuote(i: number, col: number): number {
    const s = this.starts[i];
    const end = this.end(i);
    const bytes = this.bytes;
    for (let p = s + col; p < end; p++) {
      if (bytes[p] !== 0x27) continue;
      if (p + 1 < end && bytes[p + 1] === 0x27) p++;
      else return p - s;
    }
    return -1;
  }

  /** Nothing from column `col` of line `i` on but spaces, or spaces and a comment. */
  quietFrom(i: number, col: number): boolean {
    return this.quietTail(this.starts[i] + col, this.end(i));
  }

  /** Nothing after `p` but spaces, or spaces and a comment. */
  private quietTail(p: number, end: number): boolean {
    if (p === end) return true;
    if (this.bytes[p] !== 0x20) return false;
    while (p < end && this.bytes[p] === 0x20) p++;
    return p === end || this.bytes[p] === 0x23;
  }

  /** The text of line `i` from column `from` (a byte column, after ASCII). */
  text(i: number, from = 0): string {
    const s = this.starts[i] + from;
    const end = this.end(i);
    return end <= s ? "" : decoder.decode(this.bytes.subarray(s, end));
  }

  /** The byte at column `col` of line `i` (-1 past its end). */
  byte(i: number, col: number): number {
    const p = this.starts[i] + col;
    return p < this.end(i) ? this.bytes[p] : -1;
  }

  /** Where line `i` ends, as a column. */
  width(i: number): number {
    return this.end(i) - this.starts[i];
  }

  /** Where line `i` ends (its newline, or the end of the bytes). */
  private end(i: number): number {
    return this.starts[i + 1] - 1;
  }
}

/** Longest ASCII text made by {@linkcode asciiText} (its bytes are passed as arguments). */
const MAX_ASCII = 256;

/** Bytes `s` to `e`, known to be ASCII, as a new string. */
function asciiText(bytes: Uint8Array, s: number, e: number): string {
  return String.fromCharCode.apply(null, bytes.subarray(s, e) as unknown as number[]);
}

function isAlpha(b: number): boolean {
  return (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
}

/** A letter, a digit, `_` or `-`: what a key, or an id in a plain list, is made of. */
function isWordByte(b: number): boolean {
  return isAlpha(b) || (b >= 0x30 && b <= 0x39) || b === 0x5f || b === 0x2d;
}
