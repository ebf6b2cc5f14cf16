/**
 * One-line values as the full YAML parser reads them, for the fast scanner
 * (lib/backlog/fast.ts): plain, single- or double-quoted scalars and flow
 * lists of them, each then at most a comment. Whatever is not surely read
 * the same way throws {@linkcode Unsure}: the full parser decides.
 *
 * @module
 */

/** A plain scalar that YAML's core schema may read as something else than text. */
const NOT_SURELY_TEXT = /^(?:[-+.0-9~]|(?:null|Null|NULL|true|True|TRUE|false|False|FALSE)$)/;

/**
 * {@linkcode NOT_SURELY_TEXT}, its expression run only where the first character may start a match.
 *
 * @example
 * ```ts
 * mayNotBeText("True"); // true: YAML reads a boolean
 * mayNotBeText("COG-1"); // false
 * ```
 */
export function mayNotBeText(text: string): boolean {
  return !startsSurelyText(text.charCodeAt(0)) && NOT_SURELY_TEXT.test(text);
}

/**
 * Does a plain scalar starting with this character (its code) surely read
 * as text? A letter other than n, t or f, in either case: no number, null
 * or boolean starts so.
 *
 * @example
 * ```ts
 * startsSurelyText("C".charCodeAt(0)); // true
 * ```
 */
export function startsSurelyText(code: number): boolean {
  const lower = code | 0x20; // in a-z exactly when it is a letter
  return lower >= 0x61 && lower <= 0x7a && lower !== 0x6e && lower !== 0x74 && lower !== 0x66;
}

/** Thrown where a value is not surely read as the full parser reads it. */
export class Unsure extends Error {}

/** Stop: the full parser decides. */
export function unsure(): never {
  throw new Unsure();
}

/**
 * A one-line value: a plain scalar (text for sure when `read`, else any),
 * or a single- or double-quoted one, and then at most a comment.
 *
 * @example
 * ```ts
 * inlineScalar("'it''s' # c", true); // "it's"
 * ```
 */
export function inlineScalar(text: string, read: boolean): string {
  const c = text[0];
  if (c === '"') return doubleQuoted(text);
  if (c === "'") return singleQuoted(text);
  if (c === undefined || " -?:,[]{}#&*!|>%@`".includes(c)) {
    if (!((c === "-" || c === "?" || c === ":") && text.length > 1 && text[1] !== " ")) unsure();
  }
  const hash = text.indexOf(" #");
  const value = (hash < 0 ? text : text.slice(0, hash)).trimEnd();
  if (value.includes(": ") || value.endsWith(":")) unsure();
  if (read && mayNotBeText(value)) unsure();
  return value;
}

/** What follows a closing quote: nothing, or a comment. */
function tailIsQuiet(text: string): boolean {
  return /^(?: +(?:#.*)?)?$/.test(text);
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
  const close = text.indexOf('"', 1);
  const escape = text.indexOf("\\", 1);
  if (close > 0 && (escape < 0 || escape > close)) {
    if (!tailIsQuiet(text.slice(close + 1))) unsure();
    return text.slice(1, close);
  }
  let out = "";
  for (let i = 1; i < text.length; i++) {
    const c = text[i];
    if (c === "\\") {
      const e = Object.hasOwn(ESCAPES, text[i + 1]) ? ESCAPES[text[i + 1]] : undefined;
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

/**
 * `[a, "b", c]` on one line: its items as text.
 *
 * @example
 * ```ts
 * flowList("[A-1, 'B-2']"); // ["A-1", "B-2"]
 * ```
 */
export function flowList(text: string): string[] {
  const close = text.lastIndexOf("]");
  if (close < 0 || !tailIsQuiet(text.slice(close + 1))) unsure();
  const inner = text.slice(1, close);
  if (/[[\]{}#]/.test(inner)) unsure();
  if (inner.trim() === "") return [];
  const items: string[] = [];
  for (const part of inner.split(",")) {
    const t = part.trim();
    if (t === "") unsure(); // `[a,,b]` or a trailing comma: the full parser decides
    if ((t[0] === '"' || t[0] === "'") && (t.includes(",") || t.includes("\\"))) unsure();
    items.push(inlineScalar(t, true));
  }
  return items;
}
