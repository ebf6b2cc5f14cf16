import { deepEqual as equal, match } from "node:assert/strict";
import { BUILT_IN_PRICES, costOf, formatUsd, priceOf } from "../lib/cost/prices.ts";
import { loadPrices, parsePrices } from "../lib/cost/price_file.ts";
import { budgetReached, overGapBudget } from "../lib/cost/budget.ts";

Deno.test("a model's price is the longest table key that prefixes its name, case-insensitive", () => {
  equal(priceOf(BUILT_IN_PRICES, "claude-opus-4-5-20251101")?.input, 5);
  equal(priceOf(BUILT_IN_PRICES, "claude-opus-4-1-20250805")?.input, 15);
  equal(priceOf(BUILT_IN_PRICES, "GPT-5-MINI-2025-08-07")?.output, 2);
  equal(priceOf(BUILT_IN_PRICES, "gpt-5-codex")?.output, 10);
  equal(priceOf(BUILT_IN_PRICES, "o3-mini")?.input, 1.1);
  equal(priceOf(BUILT_IN_PRICES, "llama-3.3-70b"), undefined);
  equal(priceOf(BUILT_IN_PRICES, undefined), undefined);
});

Deno.test("--prices overrides and extends the built-in table; a missing cache price is the input price", () => {
  const t = parsePrices(
    "p.yaml",
    "claude-sonnet-4: {input: 2, output: 10, cache_read: 0.2, cache_write: 2.5}\n" +
      "Llama-3: {input: 0.5, output: 0.5}\n",
    BUILT_IN_PRICES,
  );
  equal(t.ok, true);
  if (!t.ok) return;
  equal(priceOf(t.value, "claude-sonnet-4-5"), {
    input: 2,
    output: 10,
    cacheRead: 0.2,
    cacheWrite: 2.5,
  });
  equal(priceOf(t.value, "llama-3.3-70b"), {
    input: 0.5,
    output: 0.5,
    cacheRead: 0.5,
    cacheWrite: 0.5,
  });
  equal(priceOf(t.value, "claude-haiku-4-5")?.input, 1);
  equal(priceOf(BUILT_IN_PRICES, "claude-sonnet-4-5")?.input, 3);
});

Deno.test("a bad --prices file is one line naming the file and what is wrong", async () => {
  const bad = (text: string) => {
    const r = parsePrices("p.yaml", text, BUILT_IN_PRICES);
    return r.ok ? "accepted" : r.error;
  };
  match(bad("- a\n- b\n"), /^p\.yaml: expected a mapping of model/);
  match(bad("m: 3\n"), /^p\.yaml: m: expected \{input, output/);
  match(bad("m: {input: 3}\n"), /^p\.yaml: m: 'output' must be a price/);
  match(bad("m: {input: -1, output: 2}\n"), /'input' must be a price in USD per million tokens/);
  match(bad("m: {input: 1, output: 2\n"), /^p\.yaml:\d+: not valid YAML: /);
  const missing = await loadPrices("/nonexistent/prices.yaml");
  equal(missing.ok, false);
  if (!missing.ok) match(missing.error, /^cannot read --prices \/nonexistent\/prices\.yaml: /);
  equal((await loadPrices(undefined)).ok, true);
});

Deno.test("tokens of a model without a price are named, not priced as free", () => {
  const t = { input: 1000, output: 0, cacheRead: 0, cacheWrite: 0 };
  const c = costOf(
    { tokens: t, byModel: new Map([["llama-3", t]]), turns: 1, skipped: 0 },
    BUILT_IN_PRICES,
  );
  equal(c, { source: "unknown", unpriced: ["llama-3"] });
});

Deno.test("dollars for people, and the budgets' decisions", () => {
  equal(formatUsd(3.125), "$3.13");
  equal(formatUsd(0), "$0.00");
  equal(formatUsd(0.0042), "$0.0042");
  equal(overGapBudget(1.04, 1), "over budget ($1.04 > $1.00)");
  equal(overGapBudget(1, 1), undefined);
  equal(overGapBudget(undefined, 1), undefined);
  match(
    budgetReached({ run: 5, day: 5 }, { runUsd: 5 })!,
    /^run budget reached: \$5\.00 spent of \$5\.00; nothing new/,
  );
  match(
    budgetReached({ run: 1, day: 21 }, { dayUsd: 20 })!,
    /^daily budget reached: \$21\.00 spent in the last 24h of \$20\.00/,
  );
  equal(budgetReached({ run: 4.99, day: 19.99 }, { runUsd: 5, dayUsd: 20 }), undefined);
});
