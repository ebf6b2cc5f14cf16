/**
 * Text that came from a backlog or an agent, made safe to print on one line.
 *
 * @module
 */

/** Longest text kept on a summary line; the rest is cut with an ellipsis. */
const MAX_LINE = 200;

/**
 * Collapse control characters and line breaks to single spaces and cut long text.
 *
 * @param text anything, e.g. a gap title with newlines or escape codes
 * @param max longest result, in characters
 * @example
 * ```ts
 * oneLine("a\nb\u001b[31m"); // "a b [31m"
 * ```
 */
export function oneLine(text: string, max = MAX_LINE): string {
  // deno-lint-ignore no-control-regex
  const flat = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, " ").trim();
  return cutTo(flat, max);
}

/**
 * `line` cut to `width` characters (an ellipsis as the last one), so that a
 * terminal never wraps it.
 *
 * @example
 * ```ts
 * cutTo("abcdef", 4); // "abc…"
 * ```
 */
export function cutTo(line: string, width: number): string {
  return line.length > width ? line.slice(0, Math.max(0, width - 1)) + "…" : line;
}

/**
 * The terminal's width in columns (80 when it does not say, or stdout is not one).
 *
 * @example
 * ```ts
 * terminalWidth() >= 1; // true
 * ```
 */
export function terminalWidth(): number {
  try {
    return Deno.consoleSize().columns || 80;
  } catch {
    return 80;
  }
}

/** Control characters and the Unicode line/paragraph separators. */
const CONTROLS = /[\p{Cc}\u2028\u2029]/gu;

/**
 * Replace each control character (and U+2028/U+2029) with one space, keeping
 * everything else exactly: for contract strings whose bytes downstream
 * readers match on (see store/reflection.ts).
 *
 * @example
 * ```ts
 * import { controlsToSpaces } from "./text.ts";
 *
 * controlsToSpaces("a\n\tb"); // "a  b"
 * ```
 */
export function controlsToSpaces(text: string): string {
  return String(text).replace(CONTROLS, " ");
}

/**
 * Fold `text` into lines of at most `width` characters, at spaces (a word
 * longer than `width` stays whole); a newline in `text` always breaks.
 *
 * @example
 * ```ts
 * wrap("one two three", 8); // ["one two", "three"]
 * ```
 */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  for (const paragraph of text.split("\n")) {
    let line = "";
    for (const word of paragraph.split(" ").filter((w) => w !== "")) {
      if (line !== "" && line.length + 1 + word.length > width) {
        lines.push(line);
        line = word;
      } else line = line === "" ? word : `${line} ${word}`;
    }
    lines.push(line);
  }
  return lines;
}
