/**
 * Structured agent sessions: reading an agent's stdout as the JSON lines its
 * format speaks, into what the dispatch used (tokens, turns, session id,
 * model, the cost the agent reported, its final result).
 *
 * - `claude-stream`: Claude Code's `-p --output-format stream-json --verbose`.
 *   `system`/`init` gives `session_id` and `model`; each `assistant` line
 *   carries its message's `id`, `model` and `usage` (`input_tokens`,
 *   `output_tokens`, `cache_creation_input_tokens`, `cache_read_input_tokens`;
 *   one message is printed once per content block with the same id, so a
 *   message counts once, with its last usage); the final `result` has
 *   `subtype`, `is_error`, `num_turns`, `result`, `session_id`,
 *   `total_cost_usd` and the session's whole `usage`, which then replaces
 *   the sum of the messages.
 * - `codex-json`: `codex exec --json`. `thread.started` gives `thread_id`;
 *   each `turn.completed` adds its `usage` (`input_tokens` counts the
 *   `cached_input_tokens` in it; here input means uncached input);
 *   `turn.failed` and `error` give the error; the last `item.completed`
 *   whose item is an `agent_message` is the result text.
 * - `plain`: no structure (today's agents); no meter.
 *
 * Never fatal, bounded memory: a line that is not a JSON object (garbage, a
 * truncated last line) or longer than {@linkcode MAX_SESSION_LINE} is
 * skipped and counted. Lines that cannot matter (tool results, text
 * deltas) are recognised by a substring test and not parsed, so following
 * a chatty agent costs little more than reading its bytes.
 *
 * @module
 */

import {
  addTokens,
  assistantFast,
  claudeModelUsage,
  claudeTokens,
  CLOSE,
  errorText,
  lineMatters,
  num,
  OPEN,
  str,
} from "./lines.ts";
import { isRecord } from "../util/record.ts";
import type { AgentFormat } from "./formats.ts";

/** Token counts: input is uncached input; cache read and cache write apart. */
export interface Tokens {
  input: number;
  output: number;
  cacheRead: number;
  cacheWrite: number;
}

/** No tokens. */
export function noTokens(): Tokens {
  return { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 };
}

/** What a session has said so far. */
export interface SessionUsage {
  /** All tokens of the session. */
  tokens: Tokens;
  /** The same, per model that reported them (for pricing a session that mixed models). */
  byModel: ReadonlyMap<string, Tokens>;
  turns: number;
  sessionId?: string;
  /** The session's main model (Claude's init line; else the hint it was started with). */
  model?: string;
  /** The cost the agent itself reported (Claude's `total_cost_usd`). */
  reportedCostUsd?: number;
  /** The session's end, when it reported one. */
  result?: { subtype: string; isError: boolean; text: string };
  /** The last error the session reported (Codex `turn.failed` / `error`). */
  error?: string;
  /** Lines skipped: not a JSON object, truncated, or too long. */
  skipped: number;
}

/** Reads one agent's stdout. */
export interface SessionMeter {
  readonly format: AgentFormat;
  /** Raw stdout bytes as they arrive (any chunking). */
  push(chunk: Uint8Array): void;
  /** The stream ended: a last line without a newline is read too. */
  end(): void;
  /** What the session said so far. */
  usage(): SessionUsage;
  /** Grows whenever the usage changed (cheap change detection for throttled reports). */
  readonly version: number;
}

/** Longest line kept while it is assembled, in characters; a longer one is skipped and counted. */
export const MAX_SESSION_LINE = 4 << 20;

/**
 * A meter for `format`, or undefined for `plain`.
 *
 * @param format what the agent's stdout speaks
 * @param modelHint the model it was started with (`--model`), for a format that does not say
 * @example
 * ```ts
 * const m = createSessionMeter("codex-json", "gpt-5-codex")!;
 * m.push(new TextEncoder().encode(
 *   '{"type":"turn.completed","usage":{"input_tokens":100,"cached_input_tokens":40,"output_tokens":7}}\n',
 * ));
 * m.usage().tokens; // { input: 60, output: 7, cacheRead: 40, cacheWrite: 0 }
 * ```
 */
export function createSessionMeter(
  format: AgentFormat,
  modelHint?: string,
): SessionMeter | undefined {
  if (format === "plain") return undefined;
  return new Meter(format, modelHint);
}

/** A JSON object as parsed. */
type Json = Record<string, unknown>;

class Meter implements SessionMeter {
  readonly format: Exclude<AgentFormat, "plain">;
  version = 0;
  #decoder = new TextDecoder("utf-8");
  #partial = "";
  #overflow = false;
  #skipped = 0;
  // Messages whose usage is final (a later message id was seen), and the one still open.
  #done = new Map<string, Tokens>();
  #openId: string | undefined;
  #openModel = "";
  #openTokens: Tokens | undefined;
  #turns = 0;
  #final: Tokens | undefined;
  #finalByModel: Map<string, Tokens> | undefined;
  #sessionId: string | undefined;
  #model: string | undefined;
  #cost: number | undefined;
  #result: SessionUsage["result"];
  #error: string | undefined;

  constructor(format: Exclude<AgentFormat, "plain">, modelHint?: string) {
    this.format = format;
    this.#model = modelHint || undefined;
  }

  push(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    try {
      this.#text(this.#decoder.decode(chunk, { stream: true }));
    } catch {
      // Never fatal, whatever the bytes: what was being read is lost and counted.
      this.#partial = "";
      this.#skip();
    }
  }

  end(): void {
    this.#text(this.#decoder.decode());
    this.#decoder = new TextDecoder("utf-8");
    if (this.#overflow) this.#skip();
    else if (this.#partial !== "") this.#lineIn(this.#partial, 0, this.#partial.length);
    this.#partial = "";
    this.#overflow = false;
  }

  usage(): SessionUsage {
    const byModel = this.#finalByModel ?? this.#sumByModel();
    return {
      tokens: this.#final ?? sum(byModel.values()),
      byModel,
      turns: this.#turns,
      sessionId: this.#sessionId,
      model: this.#model,
      reportedCostUsd: this.#cost,
      result: this.#result,
      error: this.#error,
      skipped: this.#skipped,
    };
  }

  #sumByModel(): Map<string, Tokens> {
    const out = new Map<string, Tokens>();
    for (const [model, t] of this.#done) out.set(model, { ...t });
    if (this.#openTokens) addTokens(out, this.#openModel, this.#openTokens);
    return out;
  }

  #skip(): void {
    this.#skipped++;
    this.version++;
  }

  /**
   * Lines of a decoded block. Both formats print `type` first
   * (`{"type":"assistant",...`): a line's type is read at its start, and only
   * the types that carry the figures are parsed; a line that does not start
   * so is searched for the keys that can change them ({@linkcode MARKERS}).
   * Any other line costs a look at its first and last characters (is it a
   * JSON object at all?).
   */
  #text(text: string): void {
    let from = 0;
    for (;;) {
      const nl = text.indexOf("\n", from);
      if (nl < 0) break;
      if (this.#overflow) {
        this.#skip();
      } else if (this.#partial !== "") {
        const line = this.#partial + text.slice(from, nl);
        this.#lineIn(line, 0, line.length);
      } else if (nl > from) {
        this.#lineIn(text, from, nl);
      }
      this.#partial = "";
      this.#overflow = false;
      from = nl + 1;
    }
    if (from >= text.length || this.#overflow) return;
    if (this.#partial.length + text.length - from > MAX_SESSION_LINE) {
      this.#overflow = true;
      this.#partial = "";
      return;
    }
    this.#partial += text.slice(from);
  }

  /** The line `text[from, to)`: skipped and counted unless it is a JSON object; parsed when it matters. */
  #lineIn(text: string, from: number, to: number): void {
    let a = from;
    let b = to;
    while (a < b && text.charCodeAt(a) <= 32) a++;
    while (b > a && text.charCodeAt(b - 1) <= 32) b--;
    if (a === b) return;
    if (
      b - a > MAX_SESSION_LINE || text.charCodeAt(a) !== OPEN || text.charCodeAt(b - 1) !== CLOSE
    ) {
      return this.#skip();
    }
    if (!this.#matters(text, a, b)) return;
    if (this.format === "claude-stream" && this.#sessionId !== undefined) {
      const fast = assistantFast(text, a, b);
      if (fast) {
        this.version++;
        return this.#message(fast.id, fast.model, fast.usage);
      }
    }
    let value: unknown;
    try {
      value = JSON.parse(text.slice(a, b));
    } catch {
      return this.#skip();
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) return this.#skip();
    this.version++;
    if (this.format === "claude-stream") this.#claude(value as Json);
    else this.#codex(value as Json);
  }

  /** Could the line `text[a, b)` change the figures? */
  #matters(text: string, a: number, b: number): boolean {
    return lineMatters(this.format, text, a, b, this.#sessionId !== undefined);
  }

  #claude(v: Json): void {
    const type = v.type;
    if (type === "system" && v.subtype === "init") {
      this.#sessionId ??= str(v.session_id);
      this.#model = str(v.model) ?? this.#model;
    } else if (type === "assistant" && isRecord(v.message)) {
      this.#sessionId ??= str(v.session_id);
      const m = v.message as Json;
      if (isRecord(m.usage)) this.#message(str(m.id), str(m.model), claudeTokens(m.usage as Json));
    } else if (type === "result") {
      this.#sessionId = str(v.session_id) ?? this.#sessionId;
      if (typeof v.num_turns === "number") this.#turns = v.num_turns;
      if (typeof v.total_cost_usd === "number" && Number.isFinite(v.total_cost_usd)) {
        this.#cost = v.total_cost_usd;
      }
      if (isRecord(v.usage)) this.#final = claudeTokens(v.usage as Json);
      if (isRecord(v.modelUsage)) this.#finalByModel = claudeModelUsage(v.modelUsage as Json);
      this.#result = {
        subtype: str(v.subtype) ?? "",
        isError: v.is_error === true,
        text: typeof v.result === "string" ? v.result : "",
      };
    }
  }

  /** One assistant message's usage (a message printed again replaces its usage). */
  #message(messageId: string | undefined, model: string | undefined, usage: Tokens): void {
    const id = messageId ?? `#${this.#turns}`;
    if (id !== this.#openId) {
      if (this.#openTokens) addTokens(this.#done, this.#openModel, this.#openTokens);
      this.#openId = id;
      this.#turns++;
    }
    this.#openModel = model ?? this.#model ?? "";
    this.#openTokens = usage;
  }

  #codex(v: Json): void {
    const type = v.type;
    if (type === "thread.started") {
      this.#sessionId ??= str(v.thread_id);
    } else if (type === "turn.completed" && isRecord(v.usage)) {
      const u = v.usage as Json;
      const input = num(u.input_tokens);
      const cached = Math.min(input, num(u.cached_input_tokens));
      addTokens(this.#done, this.#model ?? "", {
        input: input - cached,
        output: num(u.output_tokens),
        cacheRead: cached,
        cacheWrite: 0,
      });
      this.#turns++;
    } else if (type === "turn.failed") {
      this.#error = errorText(v.error) ?? "turn failed";
    } else if (type === "error") {
      this.#error = str(v.message) ?? errorText(v.error) ?? "error";
    } else if (type === "item.completed" && isRecord(v.item)) {
      const item = v.item as Json;
      if (item.type === "agent_message" && typeof item.text === "string") {
        this.#result = { subtype: "agent_message", isError: false, text: item.text };
      }
    }
  }
}

/**
 * Tokens added up.
 *
 * @example
 * ```ts
 * sum([{ input: 1, output: 2, cacheRead: 3, cacheWrite: 4 }]).output; // 2
 * ```
 */
export function sum(all: Iterable<Tokens>): Tokens {
  const t = noTokens();
  for (const x of all) {
    t.input += x.input;
    t.output += x.output;
    t.cacheRead += x.cacheRead;
    t.cacheWrite += x.cacheWrite;
  }
  return t;
}

/**
 * The PR number an agent's final answer gives (the prompt asks it to reply
 * with only the PR number): `12`, `#12`, `PR #12`, or a `/pull/12` link.
 *
 * @example
 * ```ts
 * prInAnswer("#42"); // 42
 * prInAnswer("Opened https://github.com/o/r/pull/7 for review"); // 7
 * prInAnswer("I could not finish"); // undefined
 * ```
 */
export function prInAnswer(text: string | undefined): number | undefined {
  if (!text) return undefined;
  const m = /^\s*(?:PR\s*)?#?(\d{1,9})\.?\s*$/i.exec(text) ?? /\/pull\/(\d{1,9})\b/.exec(text);
  return m ? Number(m[1]) : undefined;
}
