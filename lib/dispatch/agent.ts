/**
 * Which agent to run and what to tell it (CONTRACT §3.3): backend presets,
 * the `--agent-cmd` / `CHUMP_AGENT_CMD` template, and the prompt.
 *
 * The template is split into words like a shell would split them (quotes
 * group, backslash escapes) but nothing is expanded and no shell ever runs
 * it: a gap id can only ever be one argument or stdin text.
 *
 * @module
 */
import { basename } from "../util/path.ts";
import { fail, ok, type Result } from "../util/result.ts";
import type { AgentFormat } from "../cost/formats.ts";

/** What to start for one gap. */
export interface AgentCommand {
  argv: string[];
  /** The prompt text for stdin, when no `{prompt}` argument carries it. */
  stdin?: string;
  /** For notes: `claude`, `chump-local` or `custom:<program>`. */
  label: string;
  /** Added to the agent's environment (an arm's model and provider). */
  env?: Record<string, string>;
  /** The arm's model and provider, when a routing table chose them (for notes: `model=`, `provider=`). */
  model?: string;
  provider?: string;
  /** What its stdout speaks (cost/session.ts); `plain` when absent. */
  format?: AgentFormat;
  /** The same agent told something else (a fix round's prompt); absent where it cannot be remade. */
  remake?: (prompt: string) => AgentCommand;
}

/** A routing table's `backends:` entry: a command template and what its stdout speaks. */
export interface BackendSpec {
  command: string;
  format?: AgentFormat;
}

/** An arm of a routing table, as {@linkcode armAgent} takes it. */
export interface ArmSpec {
  backend: string;
  model?: string;
  providerPfx?: string;
}

/**
 * OpenAI-compatible API bases of the providers Chump's routing tables name,
 * given to a `chump-local` agent as `OPENAI_API_BASE` (and `OPENAI_BASE_URL`).
 */
const PROVIDER_BASES: Readonly<Record<string, string>> = {
  TOGETHER: "https://api.together.xyz/v1",
  GROQ: "https://api.groq.com/openai/v1",
  OPENROUTER: "https://openrouter.ai/api/v1",
  OPENAI: "https://api.openai.com/v1",
  DEEPSEEK: "https://api.deepseek.com/v1",
  MISTRAL: "https://api.mistral.ai/v1",
};

/**
 * The command of one arm for one gap: `claude` (with `--model M` when the arm
 * names one), `chump-local` (`chump --execute-gap <ID>`, the model as
 * `OPENAI_MODEL` and the provider as `CHUMP_PROVIDER` and its API base in the
 * environment), or a name of the table's `backends:` (its template, `{model}`
 * filled in; `{prompt}` as for `--agent-cmd`).
 *
 * @example
 * ```ts
 * const a = armAgent({ backend: "chump-local", model: "m1", providerPfx: "GROQ" }, "A-1", {});
 * a.ok && a.value.env?.OPENAI_MODEL; // "m1"
 * a.ok && a.value.argv; // ["chump", "--execute-gap", "A-1"]
 * ```
 */
export function armAgent(
  arm: ArmSpec,
  gapId: string,
  backends: Readonly<Record<string, BackendSpec>>,
  lessons: readonly string[] = [],
  prompt?: string,
): Result<AgentCommand> {
  const chosen = { model: arm.model, provider: arm.providerPfx };
  if (arm.backend === "claude") {
    const words = arm.model ? [...CLAUDE, "--model", arm.model] : CLAUDE;
    const template = { words, label: "claude", format: CLAUDE_FORMAT };
    return ok({ ...agentCommandFor(template, gapId, lessons, prompt), ...chosen });
  }
  if (arm.backend === "chump-local") {
    const env: Record<string, string> = {};
    if (arm.model) env.OPENAI_MODEL = arm.model;
    if (arm.providerPfx) {
      env.CHUMP_PROVIDER = arm.providerPfx;
      const base = PROVIDER_BASES[arm.providerPfx.toUpperCase()];
      if (base) env.OPENAI_API_BASE = env.OPENAI_BASE_URL = base;
    }
    const template = {
      words: ["chump", "--execute-gap"],
      label: "chump-local",
      preset: "chump-local",
    };
    return ok({ ...agentCommandFor(template, gapId, lessons, prompt), env, ...chosen });
  }
  const spec = backends[arm.backend];
  if (spec === undefined) return fail(`unknown backend '${arm.backend}'`);
  const words = splitCommand(spec.command.replaceAll("{model}", arm.model ?? ""));
  if (!words.ok) return fail(`backend '${arm.backend}': ${words.error}`);
  const template = { words: words.value, label: arm.backend, format: spec.format };
  return ok({ ...agentCommandFor(template, gapId, lessons, prompt), ...chosen });
}

/** The placeholder replaced by the prompt inside an agent-command argument. */
const PROMPT_PLACEHOLDER = "{prompt}";

/**
 * The default backend's command: Claude Code, non-interactive, prompt on
 * stdin, speaking a structured session on stdout (tokens and cost).
 */
const CLAUDE = [
  "claude",
  "-p",
  "--dangerously-skip-permissions",
  "--output-format",
  "stream-json",
  "--verbose",
];

/** What the claude preset's stdout speaks. */
const CLAUDE_FORMAT: AgentFormat = "claude-stream";

/**
 * The prompt an agent gets, as the seed's `build_prompt`: the gap, where the
 * rules are, how to ship, and to answer with the PR number only.
 *
 * @example
 * ```ts
 * buildPrompt("AUTO-013").includes("scripts/bot-merge.sh --gap AUTO-013 --auto-merge"); // true
 * ```
 */
export function buildPrompt(gapId: string): string {
  return [
    `You are an autonomous coding agent dispatched by chump-orchestrator to close gap ${gapId}.`,
    "Read CLAUDE.md in this worktree first and follow its rules.",
    `The gap is described in the backlog (docs/gaps.yaml or docs/gaps/${gapId}.yaml).`,
    "Implement it in this worktree, on this branch, with tests.",
    `When it is done, ship it with: scripts/bot-merge.sh --gap ${gapId} --auto-merge`,
    "Reply with only the PR number.",
  ].join("\n");
}

/**
 * Split a command template into words: whitespace separates, single and
 * double quotes group, backslash escapes the next character. No expansion.
 *
 * @example
 * ```ts
 * splitCommand(`my-agent --msg "{prompt}" 'a b'`); // ok(["my-agent", "--msg", "{prompt}", "a b"])
 * ```
 */
export function splitCommand(text: string): Result<string[]> {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let quote: "'" | '"' | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote === "'") {
      if (c === "'") quote = null;
      else word += c;
    } else if (quote === '"') {
      if (c === '"') quote = null;
      else if (c === "\\" && i + 1 < text.length && `"\\`.includes(text[i + 1])) word += text[++i];
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === "\\" && i + 1 < text.length) {
      word += text[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote !== null) return fail(`agent command has an unclosed ${quote} quote: ${text}`);
  if (inWord) words.push(word);
  if (words.length === 0) return fail("agent command is empty");
  return ok(words);
}

/** Where the agent command comes from. */
export interface AgentSource {
  /** `--agent-cmd`, which wins. */
  agentCmd?: string;
  /** `CHUMP_AGENT_CMD`. */
  envCmd?: string;
  /** `CHUMP_DISPATCH_BACKEND`. */
  backend?: string;
  /** `--agent-format`: what the agent's stdout speaks (default: the preset's; `plain` for a custom command). */
  format?: AgentFormat;
}

/** A resolved agent command template, still independent of the gap. */
export interface AgentTemplate {
  words: string[];
  label: string;
  /** Preset that needs the gap id in its argv (chump-local). */
  preset?: string;
  /** A one-line warning for the operator (unknown backend). */
  warning?: string;
  /** What its stdout speaks; `plain` when absent. */
  format?: AgentFormat;
}

/**
 * Decide the agent template once per run: `--agent-cmd`, then
 * `CHUMP_AGENT_CMD`, then the backend preset (unknown backend: warn, use claude).
 *
 * @example
 * ```ts
 * resolveAgentTemplate({ backend: "chump-local" }); // chump --execute-gap <ID>
 * ```
 */
export function resolveAgentTemplate(source: AgentSource): Result<AgentTemplate> {
  const t = templateOf(source);
  if (!t.ok || source.format === undefined) return t;
  return ok({ ...t.value, format: source.format });
}

function templateOf(source: AgentSource): Result<AgentTemplate> {
  const custom = source.agentCmd ?? (source.envCmd?.trim() ? source.envCmd : undefined);
  if (custom !== undefined) {
    const words = splitCommand(custom);
    if (!words.ok) return words;
    return ok({ words: words.value, label: `custom:${basename(words.value[0])}` });
  }
  const backend = (source.backend ?? "").trim();
  if (backend === "" || backend === "claude") {
    return ok({ words: CLAUDE, label: "claude", format: CLAUDE_FORMAT });
  }
  if (backend === "chump-local") {
    return ok({ words: ["chump", "--execute-gap"], label: "chump-local", preset: "chump-local" });
  }
  return ok({
    words: CLAUDE,
    label: "claude",
    format: CLAUDE_FORMAT,
    warning: `unknown CHUMP_DISPATCH_BACKEND '${backend}'; using claude`,
  });
}

/**
 * The command for one gap: the template with `{prompt}` replaced, or the prompt on stdin.
 *
 * @example
 * ```ts
 * agentCommandFor({ words: ["claude", "-p"], label: "claude" }, "AUTO-013");
 * ```
 */
export function agentCommandFor(
  template: AgentTemplate,
  gapId: string,
  lessons: readonly string[] = [],
  promptOverride?: string,
): AgentCommand {
  const prompt = promptOverride ??
    (lessons.length === 0 ? buildPrompt(gapId) : `${buildPrompt(gapId)}\n\n${lessons.join("\n")}`);
  const words = template.preset === "chump-local" ? [...template.words, gapId] : template.words;
  const hasPlaceholder = words.some((w) => w.includes(PROMPT_PLACEHOLDER));
  const argv = words.map((w) => w.replaceAll(PROMPT_PLACEHOLDER, prompt));
  const format = template.format === undefined ? {} : { format: template.format };
  return hasPlaceholder
    ? { argv, label: template.label, ...format }
    : { argv, stdin: prompt, label: template.label, ...format };
}

/**
 * The argv that resumes a Claude Code session (`--resume <id>` after
 * `claude`), so a fix round keeps the agent's context; other agents, or an
 * unknown session, are started afresh.
 *
 * @example
 * ```ts
 * resumeArgv(["claude", "-p", "--verbose"], "claude-stream", "s-1"); // ["claude", "--resume", "s-1", "-p", "--verbose"]
 * resumeArgv(["aider"], undefined, "s-1"); // ["aider"]
 * ```
 */
export function resumeArgv(
  argv: readonly string[],
  format: AgentFormat | undefined,
  sessionId: string | undefined,
): string[] {
  if (format !== "claude-stream" || !sessionId || basename(argv[0] ?? "") !== "claude") {
    return [...argv];
  }
  if (argv.includes("--resume")) return [...argv];
  return [argv[0], "--resume", sessionId, ...argv.slice(1)];
}

/**
 * The model an agent command names (`--model M`, `--model=M`, `-m M`), for
 * pricing a session that does not say its model.
 *
 * @example
 * ```ts
 * modelInArgv(["codex", "exec", "--json", "-m", "gpt-5-codex"]); // "gpt-5-codex"
 * modelInArgv(["claude", "-p"]); // undefined
 * ```
 */
export function modelInArgv(argv: readonly string[]): string | undefined {
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i];
    if ((a === "--model" || a === "-m") && i + 1 < argv.length) return argv[i + 1];
    if (a.startsWith("--model=")) return a.slice("--model=".length);
  }
  return undefined;
}
