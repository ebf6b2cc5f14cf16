/**
 * Writing a structured agent session, line by line, in the shapes that
 * cost/session.ts reads (Claude Code stream-json, `codex exec --json`): what
 * the demo agent speaks when it is started as `claude ... --output-format
 * stream-json` or `codex exec --json`, and what the bench follows. Pure.
 *
 * @module
 */
import type { Tokens } from "./session.ts";
import type { AgentFormat } from "./formats.ts";

/** One session being written. */
export interface Transcript {
  /** The session's first line(s). */
  start(): string[];
  /** One assistant turn: its text and what it used. */
  turn(text: string, tokens: Tokens): string[];
  /** The session's end. */
  end(end: TranscriptEnd): string[];
}

/** How a session ends. */
export interface TranscriptEnd {
  /** Its answer, or what went wrong. */
  text: string;
  /** `success`, `error_max_turns`, `error_during_execution`. */
  subtype: string;
  /** What it reports it cost (Claude only); absent: not reported. */
  costUsd?: number;
}

/**
 * A transcript writer for `format` (`plain` has none).
 *
 * @param format what to speak
 * @param model the model it says it is
 * @param sessionId its session (Claude) or thread (Codex) id
 * @example
 * ```ts
 * const t = transcriptWriter("codex-json", "gpt-5-codex", "th_1")!;
 * t.start(); // ['{"type":"thread.started","thread_id":"th_1"}']
 * ```
 */
export function transcriptWriter(
  format: AgentFormat,
  model: string,
  sessionId: string,
): Transcript | undefined {
  if (format === "claude-stream") return claudeTranscript(model, sessionId);
  if (format === "codex-json") return codexTranscript(sessionId);
  return undefined;
}

function claudeTranscript(model: string, sessionId: string): Transcript {
  let turns = 0;
  const total = { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 };
  const usage = (t: Tokens) => ({
    input_tokens: t.input,
    cache_creation_input_tokens: t.cacheWrite,
    cache_read_input_tokens: t.cacheRead,
    cache_creation: { ephemeral_5m_input_tokens: t.cacheWrite, ephemeral_1h_input_tokens: 0 },
    output_tokens: t.output,
    service_tier: "standard",
  });
  const line = (v: unknown) => JSON.stringify(v);
  return {
    start: () => [line({
      type: "system",
      subtype: "init",
      cwd: ".",
      session_id: sessionId,
      tools: ["Bash", "Edit", "Read"],
      mcp_servers: [],
      model,
      permissionMode: "bypassPermissions",
      apiKeySource: "none",
    })],
    turn: (text, t) => {
      turns++;
      total.input += t.input;
      total.output += t.output;
      total.cacheRead += t.cacheRead;
      total.cacheWrite += t.cacheWrite;
      return [line({
        type: "assistant",
        message: {
          id: `msg_${sessionId.slice(0, 8)}_${turns}`,
          type: "message",
          role: "assistant",
          model,
          content: [{ type: "text", text }],
          stop_reason: null,
          stop_sequence: null,
          usage: usage(t),
        },
        parent_tool_use_id: null,
        session_id: sessionId,
      })];
    },
    end: (e) => [line({
      type: "result",
      subtype: e.subtype,
      is_error: e.subtype !== "success",
      duration_ms: 0,
      duration_api_ms: 0,
      num_turns: turns,
      result: e.text,
      session_id: sessionId,
      ...(e.costUsd === undefined ? {} : { total_cost_usd: e.costUsd }),
      usage: usage(total),
      permission_denials: [],
    })],
  };
}

function codexTranscript(threadId: string): Transcript {
  let items = 0;
  const line = (v: unknown) => JSON.stringify(v);
  return {
    start: () => [line({ type: "thread.started", thread_id: threadId })],
    turn: (text, t) => [
      line({ type: "turn.started" }),
      line({
        type: "item.completed",
        item: { id: `item_${items++}`, type: "agent_message", text },
      }),
      line({
        type: "turn.completed",
        usage: {
          input_tokens: t.input + t.cacheRead,
          cached_input_tokens: t.cacheRead,
          output_tokens: t.output,
        },
      }),
    ],
    end: (e) =>
      e.subtype === "success"
        ? [
          line({
            type: "item.completed",
            item: { id: `item_${items++}`, type: "agent_message", text: e.text },
          }),
        ]
        : [line({ type: "turn.failed", error: { message: e.text } })],
  };
}
