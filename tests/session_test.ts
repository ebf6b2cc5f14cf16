import { deepEqual as equal, ok as assert } from "node:assert/strict";
import { createSessionMeter, MAX_SESSION_LINE, prInAnswer } from "../lib/cost/session.ts";
import { BUILT_IN_PRICES, costOf, dispatchCost } from "../lib/cost/prices.ts";
import { classify } from "../lib/learn/classify.ts";

const fixture = (name: string) =>
  Deno.readTextFileSync(new URL(`./fixtures/sessions/${name}`, import.meta.url));
const bytes = (text: string) => new TextEncoder().encode(text);

/** Feed `text` in chunks of `size` bytes (splitting lines and UTF-8 sequences). */
function feed(meter: { push(c: Uint8Array): void }, text: string, size: number) {
  const b = bytes(text);
  for (let i = 0; i < b.length; i += size) meter.push(b.subarray(i, i + size));
}

Deno.test("a Claude Code stream-json session: the result's usage, turns, session, model, reported cost and answer", () => {
  const m = createSessionMeter("claude-stream")!;
  feed(m, fixture("claude-stream.jsonl"), 7);
  m.end();
  const u = m.usage();
  equal(u.tokens, { input: 15, output: 233, cacheRead: 46739, cacheWrite: 5700 });
  equal(u.turns, 5);
  equal(u.sessionId, "9b2f3c1e-5d8a-4f7b-a0c2-1e3d5f7a9b11");
  equal(u.model, "claude-sonnet-4-5-20250929");
  equal(u.reportedCostUsd, 0.04321915);
  equal(u.result, { subtype: "success", isError: false, text: "412" });
  equal(u.skipped, 0);
  equal(prInAnswer(u.result?.text), 412);
  equal(dispatchCost(u, BUILT_IN_PRICES).source, "reported");
});

Deno.test("while a Claude session runs, a message printed once per content block counts once, with its last usage; priced by its model", () => {
  const lines = fixture("claude-stream.jsonl").trimEnd().split("\n");
  const m = createSessionMeter("claude-stream")!;
  feed(m, lines.slice(0, -1).join("\n") + "\n", 4096);
  const u = m.usage();
  // Summing every line would give input 19 and output 236 (the first message twice).
  equal(u.tokens, { input: 15, output: 233, cacheRead: 46739, cacheWrite: 5700 });
  equal(u.turns, 3);
  equal(u.reportedCostUsd, undefined);
  const cost = costOf(u, BUILT_IN_PRICES);
  equal(cost.source, "priced");
  // claude-sonnet-4: $3 in, $15 out, $0.30 cache read, $3.75 cache write per million.
  equal(cost.usd!.toFixed(7), ((15 * 3 + 233 * 15 + 46739 * 0.3 + 5700 * 3.75) / 1e6).toFixed(7));
});

Deno.test("a Claude session that ran out of turns is a max_turns failure, with the cost it reported", () => {
  const m = createSessionMeter("claude-stream")!;
  feed(m, fixture("claude-max-turns.jsonl"), 100);
  m.end();
  const u = m.usage();
  equal(u.result?.subtype, "error_max_turns");
  equal(u.result?.isError, true);
  equal(u.turns, 31);
  equal(u.reportedCostUsd, 2.5125);
  equal(
    classify("killed", "exit code 1", [], { subtype: u.result?.subtype, isError: true }),
    "max_turns",
  );
});

Deno.test("a Codex exec --json session: turns added up, cached input apart, the thread id, the last agent message", () => {
  const m = createSessionMeter("codex-json", "gpt-5-codex")!;
  feed(m, fixture("codex-json.jsonl"), 13);
  m.end();
  const u = m.usage();
  equal(u.tokens, { input: 315 + 1000, output: 222, cacheRead: 24448, cacheWrite: 0 });
  equal(u.turns, 2);
  equal(u.sessionId, "0199a213-81c0-7800-8aa1-bbab2a035a53");
  equal(u.result?.text, "PR #57");
  equal(prInAnswer(u.result?.text), 57);
  const cost = costOf(u, BUILT_IN_PRICES);
  // gpt-5: $1.25 in, $10 out, $0.125 cached input per million.
  equal(cost.usd!.toFixed(7), ((1315 * 1.25 + 222 * 10 + 24448 * 0.125) / 1e6).toFixed(7));
});

Deno.test("a failed Codex turn is its error; a 429 in it is a rate limit", () => {
  const m = createSessionMeter("codex-json")!;
  feed(m, fixture("codex-failed.jsonl"), 64);
  m.end();
  const u = m.usage();
  equal(u.error, "exceeded retry limit, last status: 429 Too Many Requests");
  equal(classify("killed", "exit code 1", [], { isError: true, text: u.error }), "rate_limited");
  equal(costOf(u, BUILT_IN_PRICES), { usd: 0, source: "priced", unpriced: [] });
});

Deno.test("garbage, a truncated last line and a line too long are skipped and counted, never fatal; the rest still counts", () => {
  const m = createSessionMeter("claude-stream")!;
  const good = fixture("claude-stream.jsonl").trimEnd().split("\n");
  m.push(bytes("plain text from a wrapper script\n"));
  m.push(bytes(`${good[0]}\n`));
  m.push(bytes('{"type":"assistant","usage": not json}\n'));
  m.push(bytes("[1,2,3]\n"));
  // A line longer than the limit, in pieces, without keeping it.
  const piece = "x".repeat(1 << 20);
  m.push(bytes('{"type":"user","content":"'));
  for (let n = 0; n <= MAX_SESSION_LINE >> 20; n++) m.push(bytes(piece));
  m.push(bytes('"}\n'));
  m.push(bytes(`${good[4]}\n`));
  m.push(bytes(good[7].slice(0, 120))); // the result line, cut off by a killed agent
  m.end();
  const u = m.usage();
  equal(u.skipped, 5);
  equal(u.sessionId, "9b2f3c1e-5d8a-4f7b-a0c2-1e3d5f7a9b11");
  equal(u.tokens.output, 142);
  equal(u.result, undefined);
});

Deno.test("a multi-byte character split between chunks is read whole", () => {
  const m = createSessionMeter("claude-stream")!;
  const line = JSON.stringify({
    type: "result",
    subtype: "success",
    is_error: false,
    num_turns: 1,
    result: "✓ shipped — #9",
    total_cost_usd: 0.01,
  });
  feed(m, `${line}\n`, 1);
  equal(m.usage().result?.text, "✓ shipped — #9");
  assert(m.version > 0);
});

Deno.test("plain output has no meter; the PR number of an answer", () => {
  equal(createSessionMeter("plain"), undefined);
  equal(prInAnswer("PR #12"), 12);
  equal(prInAnswer("12."), 12);
  equal(prInAnswer("see https://github.com/o/r/pull/33/files"), 33);
  equal(prInAnswer("fixed 3 tests"), undefined);
  equal(prInAnswer(undefined), undefined);
});

Deno.test("the fast reading of a line (its type at its start, an assistant's usage alone) gives what parsing every line whole gives", () => {
  /** The same JSON with every object's keys in reverse order: no line starts with its type. */
  const reversed = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(reversed)
      : v !== null && typeof v === "object"
      ? Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, reversed(x)]))
      : v;
  for (
    const [name, format] of [
      ["claude-stream.jsonl", "claude-stream"],
      ["claude-max-turns.jsonl", "claude-stream"],
      ["codex-json.jsonl", "codex-json"],
      ["codex-failed.jsonl", "codex-json"],
    ] as const
  ) {
    const text = fixture(name);
    const slow = text.trimEnd().split("\n").map((l) => JSON.stringify(reversed(JSON.parse(l))))
      .join("\n") + "\n";
    const typeFirst = slow.split("\n").filter((l) => l.startsWith('{"type":'));
    equal(
      typeFirst.filter((l) => l !== '{"type":"turn.started"}'),
      [],
      "only one-key lines start so",
    );
    const a = createSessionMeter(format, "gpt-5")!;
    const b = createSessionMeter(format, "gpt-5")!;
    feed(a, text, 61);
    feed(b, slow, 61);
    a.end();
    b.end();
    equal(a.usage(), b.usage(), name);
  }
});
