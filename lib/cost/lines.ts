/**
 * Reading one line of a structured agent session (cost/session.ts) as
 * cheaply as it allows: which lines can change the figures (a line's type,
 * read at its start; else the keys that matter), an assistant line's usage
 * without parsing its content, and the shapes of Claude's usage objects.
 * Pure.
 *
 * @module
 */
import type { Tokens } from "./session.ts";
import type { AgentFormat } from "./formats.ts";
import { isRecord } from "../util/record.ts";

/** A JSON object as parsed. */
export type Json = Record<string, unknown>;

/** `{`, `}`, `"` and `\\`. */
export const OPEN = 123;
export const CLOSE = 125;
const QUOTE = 34;
const BACKSLASH = 92;

/**
 * The keys whose lines can change the figures, per format: a line holding
 * none of them (a tool result, a file's contents: most of a session's
 * bytes) is never parsed. A key inside a JSON string is escaped (`\"usage\"`),
 * so text that merely mentions one does not match.
 */
const MARKERS: Readonly<Record<Exclude<AgentFormat, "plain">, RegExp>> = {
  "claude-stream": /"usage"|"result"|"init"/g,
  "codex-json": /"usage"|"thread\.started"|"turn\.failed"|"error"|"agent_message"/g,
};

/** How both formats start a line: its type first. */
const TYPE_FIRST = '{"type":"';

/**
 * Per format and line type: parse it (`yes`), never (`no`), while the
 * session id is unknown (`init`), or when it holds one of the
 * {@linkcode MARKERS} (`marker`; also any type not listed).
 */
type Want = "yes" | "no" | "init" | "marker";
const WANTED: Readonly<Record<Exclude<AgentFormat, "plain">, ReadonlyMap<string, Want>>> = {
  "claude-stream": new Map<string, Want>([
    ["assistant", "yes"],
    ["result", "yes"],
    ["system", "init"],
    ["user", "no"],
    ["stream_event", "no"],
  ]),
  "codex-json": new Map<string, Want>([
    ["thread.started", "yes"],
    ["turn.completed", "yes"],
    ["turn.failed", "yes"],
    ["error", "yes"],
    ["turn.started", "no"],
    ["item.started", "no"],
    ["item.updated", "no"],
    ["item.completed", "marker"],
  ]),
};

/**
 * Could the line `text[a, b)` change the figures? Its type read at its
 * start decides; a line that does not start with its type (or of a type
 * not listed) is searched for the {@linkcode MARKERS}. A false yes costs
 * one parse.
 *
 * @example
 * ```ts
 * const line = '{"type":"user","message":{"content":"a file"}}';
 * lineMatters("claude-stream", line, 0, line.length, true); // false
 * ```
 */
export function lineMatters(
  format: Exclude<AgentFormat, "plain">,
  text: string,
  a: number,
  b: number,
  sessionKnown: boolean,
): boolean {
  if (text.startsWith(TYPE_FIRST, a)) {
    const start = a + TYPE_FIRST.length;
    const end = text.indexOf('"', start);
    if (end > start && end < b) {
      const want = WANTED[format].get(text.slice(start, end));
      if (want === "yes") return true;
      if (want === "no") return false;
      if (want === "init") return !sessionKnown;
      // `marker`, or a type not listed: parsed only when it holds a key that matters.
    }
  }
  const m = MARKERS[format];
  m.lastIndex = a;
  const found = m.exec(text);
  return found !== null && found.index < b;
}

/** How Claude Code starts an assistant line: the message's id first. */
const ASSISTANT_FIRST = '{"type":"assistant","message":{"id":"';

/**
 * An assistant line's message id, model and usage without parsing the whole
 * line (its content may be a large file): the id at its start, the model
 * before the content, the usage object near its end, parsed alone. Claude
 * Code prints the message's keys in the API's order (`id`, `type`, `role`,
 * `model`, `content`, ..., `usage`); a line printed otherwise, or a usage
 * that does not parse, is undefined (the caller parses the whole line).
 */
export function assistantFast(
  text: string,
  a: number,
  b: number,
): { id: string; model?: string; usage: Tokens } | undefined {
  if (!text.startsWith(ASSISTANT_FIRST, a)) return undefined;
  const idStart = a + ASSISTANT_FIRST.length;
  const idEnd = text.indexOf('"', idStart);
  if (idEnd < 0 || idEnd >= b) return undefined;
  const content = text.indexOf('"content":', idEnd);
  if (content < 0 || content >= b) return undefined;
  const at = text.lastIndexOf('"usage":{', b);
  if (at < content) return undefined;
  const open = at + '"usage":'.length;
  let depth = 0;
  let close = -1;
  let inString = false;
  for (let i = open; i < b; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) inString = true;
    else if (c === OPEN) depth++;
    else if (c === CLOSE && --depth === 0) {
      close = i;
      break;
    }
  }
  if (close < 0) return undefined;
  const usage = {
    input: countAt(text, '"input_tokens":', open, close),
    output: countAt(text, '"output_tokens":', open, close),
    cacheRead: countAt(text, '"cache_read_input_tokens":', open, close),
    cacheWrite: countAt(text, '"cache_creation_input_tokens":', open, close),
  };
  const modelKey = text.indexOf('"model":"', idEnd);
  let model: string | undefined;
  if (modelKey >= 0 && modelKey < content) {
    const start = modelKey + '"model":"'.length;
    const end = text.indexOf('"', start);
    if (end > start && end < content) model = text.slice(start, end);
  }
  return { id: text.slice(idStart, idEnd), model, usage };
}

/** The whole number after `key` within `text[from, to)`; 0 when absent or not a count. */
function countAt(text: string, key: string, from: number, to: number): number {
  const at = text.indexOf(key, from);
  if (at < 0 || at >= to) return 0;
  let i = at + key.length;
  while (text.charCodeAt(i) === 32) i++;
  let n = 0;
  let digits = 0;
  for (let c = text.charCodeAt(i); c >= 48 && c <= 57; c = text.charCodeAt(++i)) {
    n = n * 10 + (c - 48);
    digits++;
  }
  return digits > 0 && digits < 16 ? n : 0;
}

export function claudeTokens(u: Json): Tokens {
  return {
    input: num(u.input_tokens),
    output: num(u.output_tokens),
    cacheRead: num(u.cache_read_input_tokens),
    cacheWrite: num(u.cache_creation_input_tokens),
  };
}

/** Claude's `modelUsage`: `{ "<model>": { inputTokens, outputTokens, cacheReadInputTokens, cacheCreationInputTokens } }`. */
export function claudeModelUsage(mu: Json): Map<string, Tokens> {
  const out = new Map<string, Tokens>();
  for (const [model, u] of Object.entries(mu)) {
    if (!isRecord(u)) continue;
    const t = u as Json;
    addTokens(out, model, {
      input: num(t.inputTokens),
      output: num(t.outputTokens),
      cacheRead: num(t.cacheReadInputTokens),
      cacheWrite: num(t.cacheCreationInputTokens),
    });
  }
  return out;
}

export function errorText(e: unknown): string | undefined {
  if (typeof e === "string") return e;
  return isRecord(e) ? str((e as Json).message) : undefined;
}

export function str(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}

export function num(v: unknown): number {
  return typeof v === "number" && Number.isFinite(v) && v > 0 ? v : 0;
}

/** Add `t` to `model`'s tokens in `into`. */
export function addTokens(into: Map<string, Tokens>, model: string, t: Tokens): void {
  const have = into.get(model);
  if (!have) {
    into.set(model, { ...t });
    return;
  }
  have.input += t.input;
  have.output += t.output;
  have.cacheRead += t.cacheRead;
  have.cacheWrite += t.cacheWrite;
}
