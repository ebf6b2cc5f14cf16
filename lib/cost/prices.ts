/**
 * What tokens cost: a price table (USD per million tokens: input, output,
 * cache read, cache write) keyed by model-name prefix, the longest matching
 * key winning; the built-in table (`--prices FILE` over it is read by
 * cost/price_file.ts); and a session's cost in dollars (what the agent
 * reported, else its tokens priced). No dependency: the CLI's help reads it.
 *
 * The built-in prices are the vendors' published list prices for their API
 * (Anthropic's and OpenAI's pricing pages) as recorded in November 2025; the
 * build machines have no internet, so they were not re-read when this table
 * was written (December 2026). A price that matters to you belongs in
 * `--prices`. OpenAI does not charge cache writes apart: its cache write is
 * its input price.
 *
 * @module
 */
import type { SessionUsage, Tokens } from "./session.ts";

/** USD per million tokens. */
export interface Price {
  input: number;
  output: number;
  cacheRead: number;
  cacheWrite: number;
}

/** Model-name prefix (lowercase) -> price. */
export type PriceTable = ReadonlyMap<string, Price>;

/** Where the built-in prices come from, for `--help` and the README. */
export const BUILT_IN_PRICES_SOURCE =
  "Anthropic's and OpenAI's published API list prices as recorded in November 2025";

/**
 * A price.
 *
 * @example
 * ```ts
 * price(3, 15, 0.3, 3.75).cacheWrite; // 3.75
 * ```
 */
export const price = (
  input: number,
  output: number,
  cacheRead: number,
  cacheWrite: number,
): Price => ({
  input,
  output,
  cacheRead,
  cacheWrite,
});

/** The built-in table (see the module's note on where it comes from). */
export const BUILT_IN_PRICES: PriceTable = new Map<string, Price>([
  // Anthropic: input, output, cache read, cache write (5-minute).
  ["claude-opus-4-5", price(5, 25, 0.5, 6.25)],
  ["claude-opus-4", price(15, 75, 1.5, 18.75)],
  ["claude-sonnet-4", price(3, 15, 0.3, 3.75)],
  ["claude-haiku-4", price(1, 5, 0.1, 1.25)],
  ["claude-3-7-sonnet", price(3, 15, 0.3, 3.75)],
  ["claude-3-5-sonnet", price(3, 15, 0.3, 3.75)],
  ["claude-3-5-haiku", price(0.8, 4, 0.08, 1)],
  ["claude-3-opus", price(15, 75, 1.5, 18.75)],
  ["claude-3-haiku", price(0.25, 1.25, 0.03, 0.3)],
  // Claude Code's model aliases (`--model sonnet`).
  ["opus", price(5, 25, 0.5, 6.25)],
  ["sonnet", price(3, 15, 0.3, 3.75)],
  ["haiku", price(1, 5, 0.1, 1.25)],
  // OpenAI: input, output, cached input; cache write = input.
  ["gpt-5", price(1.25, 10, 0.125, 1.25)],
  ["gpt-5-mini", price(0.25, 2, 0.025, 0.25)],
  ["gpt-5-nano", price(0.05, 0.4, 0.005, 0.05)],
  ["gpt-4.1", price(2, 8, 0.5, 2)],
  ["gpt-4.1-mini", price(0.4, 1.6, 0.1, 0.4)],
  ["gpt-4.1-nano", price(0.1, 0.4, 0.025, 0.1)],
  ["gpt-4o", price(2.5, 10, 1.25, 2.5)],
  ["gpt-4o-mini", price(0.15, 0.6, 0.075, 0.15)],
  ["o3", price(2, 8, 0.5, 2)],
  ["o3-mini", price(1.1, 4.4, 0.55, 1.1)],
  ["o4-mini", price(1.1, 4.4, 0.275, 1.1)],
  ["codex-mini", price(1.5, 6, 0.375, 1.5)],
]);

/**
 * The price of `model`: the longest key of `table` that is a prefix of it
 * (case-insensitive), or undefined.
 *
 * @example
 * ```ts
 * priceOf(BUILT_IN_PRICES, "claude-sonnet-4-5-20250929")?.output; // 15
 * priceOf(BUILT_IN_PRICES, "gpt-5-mini-2025-08-07")?.input; // 0.25
 * priceOf(BUILT_IN_PRICES, "llama-3"); // undefined
 * ```
 */
export function priceOf(table: PriceTable, model: string | undefined): Price | undefined {
  if (!model) return undefined;
  const name = model.toLowerCase();
  let best: string | undefined;
  for (const key of table.keys()) {
    if (name.startsWith(key) && (best === undefined || key.length > best.length)) best = key;
  }
  return best === undefined ? undefined : table.get(best);
}

/**
 * Dollars for `tokens` at `price`.
 *
 * @example
 * ```ts
 * tokensCost({ input: 1e6, output: 1e6, cacheRead: 0, cacheWrite: 0 }, { input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75 }); // 18
 * ```
 */
export function tokensCost(tokens: Tokens, price: Price): number {
  return (tokens.input * price.input + tokens.output * price.output +
    tokens.cacheRead * price.cacheRead + tokens.cacheWrite * price.cacheWrite) / 1e6;
}

/** A session's cost. */
export interface SessionCost {
  /** Dollars; undefined when nothing could be priced. */
  usd?: number;
  /** `reported` by the agent, `priced` from its tokens, or `unknown`. */
  source: "reported" | "priced" | "unknown";
  /** Models whose tokens have no price (they count as $0 in `usd`). */
  unpriced: string[];
}

/**
 * What a session cost: the agent's own figure when it reported one, else
 * each model's tokens at its price.
 *
 * @example
 * ```ts
 * import { noTokens } from "./session.ts";
 *
 * const t = { input: 1e6, output: 0, cacheRead: 0, cacheWrite: 0 };
 * costOf({ tokens: t, byModel: new Map([["claude-sonnet-4", t]]), turns: 1, skipped: 0 }, BUILT_IN_PRICES);
 * // { usd: 3, source: "priced", unpriced: [] }
 * costOf({ tokens: noTokens(), byModel: new Map(), turns: 0, skipped: 0, reportedCostUsd: 0.5 }, BUILT_IN_PRICES);
 * // { usd: 0.5, source: "reported", unpriced: [] }
 * ```
 */
export function costOf(u: SessionUsage, table: PriceTable): SessionCost {
  if (u.reportedCostUsd !== undefined) {
    return { usd: u.reportedCostUsd, source: "reported", unpriced: [] };
  }
  let usd = 0;
  let priced = false;
  const unpriced: string[] = [];
  for (const [model, tokens] of u.byModel) {
    const price = priceOf(table, model || u.model);
    if (price) {
      usd += tokensCost(tokens, price);
      priced = true;
    } else if (tokens.input + tokens.output + tokens.cacheRead + tokens.cacheWrite > 0) {
      unpriced.push(model || u.model || "unknown");
    }
  }
  if (priced) return { usd, source: "priced", unpriced };
  if (unpriced.length === 0 && u.byModel.size === 0) {
    return { usd: 0, source: "priced", unpriced };
  }
  return { source: "unknown", unpriced };
}

/**
 * Dollars as figures carry them (events, rows): to a hundredth of a cent.
 *
 * @example
 * ```ts
 * roundUsd(0.123456); // 0.1235
 * ```
 */
export function roundUsd(usd: number): number {
  return Math.round(usd * 1e4) / 1e4;
}

/**
 * Dollars for people: `$3.12`, `$0.0042` under a cent.
 *
 * @example
 * ```ts
 * formatUsd(3.1249); // "$3.12"
 * formatUsd(0.00421); // "$0.0042"
 * ```
 */
export function formatUsd(usd: number): string {
  return usd !== 0 && Math.abs(usd) < 0.01 ? `$${usd.toFixed(4)}` : `$${usd.toFixed(2)}`;
}

/** What one dispatch used and cost so far. */
export interface DispatchCost extends SessionCost {
  tokens: Tokens;
  turns: number;
  sessionId?: string;
  model?: string;
}

/**
 * A dispatch's figures from its session's usage at `table`'s prices.
 *
 * @example
 * ```ts
 * import { createSessionMeter } from "./session.ts";
 *
 * const m = createSessionMeter("claude-stream")!;
 * m.push(new TextEncoder().encode('{"type":"result","subtype":"success","total_cost_usd":0.25,"num_turns":3}\n'));
 * dispatchCost(m.usage(), BUILT_IN_PRICES).usd; // 0.25
 * ```
 */
export function dispatchCost(u: SessionUsage, table: PriceTable): DispatchCost {
  return {
    ...costOf(u, table),
    tokens: u.tokens,
    turns: u.turns,
    sessionId: u.sessionId,
    model: u.model,
  };
}
