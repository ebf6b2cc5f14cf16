import { deepEqual, equal, ok as assert } from "node:assert/strict";
import {
  agentCommandFor,
  buildPrompt,
  modelInArgv,
  resolveAgentTemplate,
  splitCommand,
} from "../lib/dispatch/agent.ts";

function template(source: Parameters<typeof resolveAgentTemplate>[0]) {
  const r = resolveAgentTemplate(source);
  if (!r.ok) throw new Error(r.error);
  return r.value;
}

Deno.test("the prompt names the gap, CLAUDE.md, bot-merge and asks for the PR number only", () => {
  const p = buildPrompt("AUTO-013");
  assert(p.includes("AUTO-013"));
  assert(p.includes("CLAUDE.md"));
  assert(p.includes("scripts/bot-merge.sh --gap AUTO-013 --auto-merge"));
  assert(p.includes("Reply with only the PR number."));
});

Deno.test("default backend is claude -p --dangerously-skip-permissions speaking stream-json, prompt on stdin", () => {
  const cmd = agentCommandFor(template({}), "AUTO-013");
  deepEqual(cmd.argv, [
    "claude",
    "-p",
    "--dangerously-skip-permissions",
    "--output-format",
    "stream-json",
    "--verbose",
  ]);
  equal(cmd.stdin, buildPrompt("AUTO-013"));
  equal(cmd.label, "claude");
  equal(cmd.format, "claude-stream");
});

Deno.test("--agent-format names what a custom agent speaks (plain by default); it overrides a preset's", () => {
  equal(agentCommandFor(template({ agentCmd: "codex exec --json" }), "A-1").format, undefined);
  equal(
    agentCommandFor(template({ agentCmd: "codex exec --json", format: "codex-json" }), "A-1")
      .format,
    "codex-json",
  );
  equal(agentCommandFor(template({ format: "plain" }), "A-1").format, "plain");
  equal(modelInArgv(["codex", "exec", "--json", "--model=gpt-5-mini"]), "gpt-5-mini");
  equal(modelInArgv(["codex", "-m"]), undefined);
});

Deno.test("chump-local runs chump --execute-gap <ID>", () => {
  const cmd = agentCommandFor(template({ backend: "chump-local" }), "AUTO-013");
  deepEqual(cmd.argv, ["chump", "--execute-gap", "AUTO-013"]);
  equal(cmd.label, "chump-local");
});

Deno.test("an unknown backend warns and falls back to claude", () => {
  const t = template({ backend: "gpt-9" });
  equal(t.label, "claude");
  equal(t.warning, "unknown CHUMP_DISPATCH_BACKEND 'gpt-9'; using claude");
});

Deno.test("--agent-cmd beats CHUMP_AGENT_CMD beats the backend", () => {
  equal(template({ agentCmd: "a1", envCmd: "e1", backend: "chump-local" }).label, "custom:a1");
  equal(template({ envCmd: "/opt/bin/e1 --x", backend: "chump-local" }).label, "custom:e1");
});

Deno.test("{prompt} is replaced inside its argument and stdin is then empty", () => {
  const cmd = agentCommandFor(template({ agentCmd: "aider --message={prompt} --yes" }), "A-1");
  deepEqual(cmd.argv, ["aider", `--message=${buildPrompt("A-1")}`, "--yes"]);
  equal(cmd.stdin, undefined);
});

Deno.test("a hostile gap id stays one argument: nothing is expanded", () => {
  const id = "x; touch /tmp/pwned $(id) `id`";
  const cmd = agentCommandFor(template({ agentCmd: "agent {prompt}" }), id);
  equal(cmd.argv.length, 2);
  assert(cmd.argv[1].includes(id));
});

Deno.test("command templates split like a shell, without expansion", () => {
  deepEqual(splitCommand(`a "b c" 'd e' f\\ g "h\\"i" $HOME`), {
    ok: true,
    value: ["a", "b c", "d e", "f g", 'h"i', "$HOME"],
  });
  deepEqual(splitCommand(`a ""`), { ok: true, value: ["a", ""] });
  deepEqual(splitCommand(`a "b`), {
    ok: false,
    error: `agent command has an unclosed " quote: a "b`,
  });
  deepEqual(splitCommand("   "), { ok: false, error: "agent command is empty" });
});
