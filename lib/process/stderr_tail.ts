/**
 * A bounded tail of an agent's stderr: the last 64 lines that contain WARN,
 * ERROR, FAIL or PANIC (case-insensitive). Memory stays bounded whatever the
 * agent prints (a 1 GB flood, a 1 MB line without a newline).
 *
 * Why filtered: the tail becomes the reflection's notes, where the lines that
 * explain a failure matter and progress chatter does not.
 *
 * Why it is fast: an agent may flood stderr, and the orchestrator reads it on
 * the same thread that watches every other agent. Per chunk, one regex test
 * over the chunk's complete lines decides whether any line work is needed at
 * all; when it is, lines are walked backward from the end of the chunk and at
 * most `maxLines` matches are taken (earlier ones would be pushed out anyway).
 *
 * Why strings are copied before they are kept: a substring can pin its whole
 * parent chunk in memory, so every kept string is detached from the chunk.
 *
 * @module
 */
import { oneLine } from "../util/text.ts";

/**
 * Lines kept (CONTRACT §4).
 *
 * @example
 * ```ts
 * createStderrTail().lines().length <= TAIL_LINES; // true, always
 * ```
 */
export const TAIL_LINES = 64;

/**
 * Longest kept line, in characters: long enough for a stack frame or a JSON
 * error, small enough that 64 of them stay well under a megabyte.
 */
const MAX_TAIL_LINE_LENGTH = 4096;

/** The words that make a line worth keeping (CONTRACT §4); substrings count ("warning", "failed"). */
const KEYWORD = /warn|error|fail|panic/i;

/** The same, for scanning a whole chunk from a given offset. */
const KEYWORD_SCAN = /warn|error|fail|panic/gi;

/**
 * Characters carried across chunk boundaries so that a keyword split between
 * two chunks still matches: the longest keyword has 5.
 */
const KEYWORD_OVERLAP = 4;

/**
 * Keeps the last matching stderr lines of one agent.
 *
 * @example
 * ```ts
 * const tail: StderrTail = createStderrTail();
 * tail.push(new TextEncoder().encode("PANIC: out of memory\n"));
 * tail.lines(); // ["PANIC: out of memory"]
 * ```
 */
export interface StderrTail {
  /** Feed raw bytes as they arrive (any chunking; UTF-8 may be split across chunks). */
  push(chunk: Uint8Array): void;
  /** The stream ended: a final line without a newline counts too. */
  end(): void;
  /** The kept lines, oldest first, each without its newline, control characters removed. */
  lines(): string[];
  /** Total bytes seen. */
  readonly bytes: number;
}

/** Options for {@linkcode createStderrTail}. */
export interface StderrTailOptions {
  /** How many matching lines to keep (default {@linkcode TAIL_LINES}). */
  maxLines?: number;
  /** Longer lines are cut to this many characters (default {@linkcode MAX_TAIL_LINE_LENGTH}). */
  maxLineLength?: number;
}

/**
 * Create an empty tail. Feed it stderr bytes with `push`, call `end` when the
 * stream closes, read the kept lines with `lines`.
 *
 * @param options how many lines to keep and how long each may be
 * @returns a tail that never holds more than `maxLines` lines of at most
 *   `maxLineLength` characters, plus one partial line of that size
 * @example
 * ```ts
 * const tail = createStderrTail();
 * tail.push(new TextEncoder().encode("compiling\nwarning: unused x\r\nError: boom"));
 * tail.end();
 * tail.lines(); // ["warning: unused x", "Error: boom"]
 * tail.bytes; // 40
 * ```
 */
export function createStderrTail(options?: StderrTailOptions): StderrTail {
  return new Tail(options ?? {});
}

/** The ring of kept lines, and the line being assembled across chunks. */
class Tail implements StderrTail {
  readonly #capacity: number;
  readonly #lineCap: number;
  /**
   * One character more than the cap is kept, so oneLine() sees the line is
   * too long and marks the cut with an ellipsis.
   */
  readonly #keepChars: number;
  readonly #ring: string[] = [];
  #ringStart = 0;
  #bytes = 0;
  #decoder = new TextDecoder("utf-8");
  // The line being assembled across chunks: its first `keepChars` characters,
  // whether a keyword was seen anywhere in it, and its last few characters.
  #partial = "";
  #partialMatched = false;
  #partialEnd = "";
  #partialEmpty = true;

  constructor(options: StderrTailOptions) {
    const { maxLines = TAIL_LINES, maxLineLength = MAX_TAIL_LINE_LENGTH } = options;
    this.#capacity = Math.max(0, Math.floor(maxLines));
    this.#lineCap = Math.max(1, Math.floor(maxLineLength));
    this.#keepChars = this.#lineCap + 1;
  }

  push(chunk: Uint8Array): void {
    this.#bytes += chunk.byteLength;
    if (chunk.byteLength === 0) return;
    this.#pushText(this.#decoder.decode(chunk, { stream: true }));
  }

  end(): void {
    this.#pushText(this.#decoder.decode());
    if (!this.#partialEmpty) this.#finishPartial();
    this.#decoder = new TextDecoder("utf-8");
  }

  lines(): string[] {
    return [...this.#ring.slice(this.#ringStart), ...this.#ring.slice(0, this.#ringStart)];
  }

  get bytes(): number {
    return this.#bytes;
  }

  #keep(line: string): void {
    if (this.#capacity === 0) return;
    const cleaned = detach(oneLine(stripCr(line), this.#lineCap));
    if (this.#ring.length < this.#capacity) {
      this.#ring.push(cleaned);
    } else {
      this.#ring[this.#ringStart] = cleaned;
      this.#ringStart = (this.#ringStart + 1) % this.#capacity;
    }
  }

  /** Add `text` (no newline in it) to the line being assembled. */
  #extendPartial(text: string): void {
    if (text === "") return;
    this.#partialEmpty = false;
    if (!this.#partialMatched) {
      this.#partialMatched = KEYWORD.test(text) ||
        (this.#partialEnd !== "" &&
          KEYWORD.test(this.#partialEnd + text.slice(0, KEYWORD_OVERLAP)));
    }
    this.#partialEnd = detach(
      (this.#partialEnd + text.slice(-KEYWORD_OVERLAP)).slice(-KEYWORD_OVERLAP),
    );
    // Once the partial line is at the cap, the rest of the line is dropped.
    if (this.#partial.length < this.#keepChars) {
      this.#partial = detach(this.#partial + text.slice(0, this.#keepChars - this.#partial.length));
    }
  }

  /** The line being assembled is complete: keep it if it matched, start a new one. */
  #finishPartial(): void {
    if (this.#partialMatched) this.#keep(this.#partial);
    this.#partial = "";
    this.#partialMatched = false;
    this.#partialEnd = "";
    this.#partialEmpty = true;
  }

  /** Keep the matching lines of `text.slice(from, to)`, where `text[to]` is a newline. */
  #scanCompleteLines(text: string, from: number, to: number): void {
    if (from >= to || this.#capacity === 0) return;
    KEYWORD_SCAN.lastIndex = from;
    const first = KEYWORD_SCAN.exec(text);
    if (first === null || first.index >= to) return; // the common case in a flood of chatter
    // Lines before the one holding the first match cannot match.
    const walkFrom = Math.max(from, text.lastIndexOf("\n", first.index) + 1);
    const found: string[] = [];
    let end = to;
    while (end >= walkFrom && found.length < this.#capacity) {
      const start = text.lastIndexOf("\n", end - 1) + 1;
      const line = text.slice(start, end);
      if (KEYWORD.test(line)) {
        found.push(line.length > this.#keepChars ? line.slice(0, this.#keepChars) : line);
      }
      end = start - 1;
    }
    for (let i = found.length - 1; i >= 0; i--) this.#keep(found[i]);
  }

  #pushText(text: string): void {
    const firstNl = text.indexOf("\n");
    if (firstNl < 0) {
      this.#extendPartial(text);
      return;
    }
    this.#extendPartial(text.slice(0, firstNl));
    this.#finishPartial();
    const lastNl = text.lastIndexOf("\n");
    this.#scanCompleteLines(text, firstNl + 1, lastNl);
    this.#extendPartial(text.slice(lastNl + 1));
  }
}

function stripCr(line: string): string {
  return line.endsWith("\r") ? line.slice(0, -1) : line;
}

/**
 * A copy of `s` that does not share memory with the string it was cut from.
 * V8 keeps a substring as a view on its parent; concatenating forces a flat
 * copy, and the view taken of that copy pins only the copy.
 */
function detach(s: string): string {
  return s.length < 13 ? s : (" " + s).slice(1);
}
