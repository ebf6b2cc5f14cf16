/**
 * How the demo agent speaks on stdout (commands/demo_agent.ts): plain
 * lines, or a structured session (Claude Code stream-json, `codex exec
 * --json`) when its command line asks for one as those programs' do.
 *
 * @module
 */
import { modelInArgv } from "../dispatch/agent.ts";
import type { Tokens } from "../cost/session.ts";
import type { AgentFormat } from "../cost/formats.ts";
import { BUILT_IN_PRICES, priceOf, tokensCost } from "../cost/prices.ts";
import { transcriptWriter } from "../cost/transcript.ts";
import { envVar } from "../util/env.ts";

/** What the agent says on stdout: plain lines, or a structured session. */
export interface Voice {
  begin(): void;
  /** A line of its answer. */
  say(text: string): void;
  /** One more assistant turn (a structured session's tokens). */
  turn(): void;
  /** How its session ends when it fails (default `error_during_execution`). */
  failAs?: string;
  finish(code: number): void;
}

/** The voice its command line asks for: Claude Code's or Codex's session, else plain lines. */
export function voiceFor(args: readonly string[]): Voice {
  const at = args.indexOf("--output-format");
  const format: AgentFormat = at >= 0 && args[at + 1] === "stream-json"
    ? "claude-stream"
    : args.includes("--json")
    ? "codex-json"
    : "plain";
  const model = modelInArgv(["demo-agent", ...args]) ??
    (format === "codex-json" ? "gpt-5-codex" : "claude-sonnet-4-5-20250929");
  const writer = transcriptWriter(format, model, crypto.randomUUID());
  if (!writer) {
    return { begin() {}, say: (text) => console.log(text), turn() {}, finish() {} };
  }
  const tokens = demoTokens(envVar("CHUMP_DEMO_TOKENS"));
  const said: string[] = [];
  let turns = 0;
  const print = (lines: string[]) => lines.forEach((l) => console.log(l));
  const voice: Voice = {
    begin: () => {
      print(writer.start());
      voice.turn();
    },
    say: (text) => said.push(text),
    turn: () => {
      turns++;
      print(writer.turn(`working (turn ${turns})`, tokens));
    },
    finish: (code) => {
      const cost = envVar("CHUMP_DEMO_COST_USD");
      const priced = tokensCost(tokens, priceOf(BUILT_IN_PRICES, model)!) * turns;
      print(writer.end({
        text: said.join("\n") || `exit code ${code}`,
        subtype: code === 0 ? "success" : voice.failAs ?? "error_during_execution",
        costUsd: cost === "none" ? undefined : cost ? Number(cost) : priced,
      }));
    },
  };
  return voice;
}

/** `in,out,cache_read,cache_write` tokens of each demo turn. */
function demoTokens(text: string | undefined): Tokens {
  const [input, output, cacheRead, cacheWrite] = (text ?? "12000,800,30000,2000").split(",")
    .map((x) => Number(x) || 0);
  return { input, output: output ?? 0, cacheRead: cacheRead ?? 0, cacheWrite: cacheWrite ?? 0 };
}
