/**
 * What an agent's stdout speaks: the format names, apart from the meters
 * that read them (cost/session.ts), so the command line can list them
 * without loading the meters.
 *
 * @module
 */

/** What an agent's stdout speaks. */
export type AgentFormat = "plain" | "claude-stream" | "codex-json";

/** Every format, in the order `--help` lists them. */
export const AGENT_FORMATS: readonly AgentFormat[] = ["claude-stream", "codex-json", "plain"];

/**
 * Is `text` a format name?
 *
 * @example
 * ```ts
 * isAgentFormat("codex-json"); // true
 * isAgentFormat("json"); // false
 * ```
 */
export function isAgentFormat(text: string): text is AgentFormat {
  return (AGENT_FORMATS as readonly string[]).includes(text);
}
