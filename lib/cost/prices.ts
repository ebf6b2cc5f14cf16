/**
 * What tokens cost: a price table (USD per million tokens: input, output,
 * cache read, cache write) keyed by model-name prefix, the longest matching
 * key winning; the built-in table, `--prices FILE` over it; and a session's
 * cost in dollars (what the agent reported, else its tokens priced).
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
// @ts-types="npm:@types/js-yaml@4.0.9"
import yaml from "js-yaml";
import { errorMessage, fail, ok, type Result } from "../util/result.ts";
import { oneLine } from "../util/text.ts";
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

const p = (input: number, output: number, cacheRead: number, cacheWrite: number): Price => ({
  input,
  output,
  cacheRead,
  cacheWrite,
});

/** The built-in table (see the module's note on where it comes from). */
export const BUILT_IN_PRICES: PriceTable = new Map<string, Price>([
  // Anthropic: input, output, cache read, cache write (5-minute).
  ["claude-opus-4-5", p(5, 25, 0.5, 6.25)],
  ["claude-opus-4", p(15, 75, 1.5, 18.75)],
  ["claude-sonnet-4", p(3, 15, 0.3, 3.75)],
  ["claude-haiku-4", p(1, 5, 0.1, 1.25)],
  ["claude-3-7-sonnet", p(3, 15, 0.3, 3.75)],
  ["claude-3-5-sonnet", p(3, 15, 0.3, 3.75)],
  ["claude-3-5-haiku", p(0.8, 4, 0.08, 1)],
  ["claude-3-opus", p(15, 75, 1.5, 18.75)],
  ["claude-3-haiku", p(0.25, 1.25, 0.03, 0.3)],
  // Claude Code's model aliases (`--model sonnet`).
  ["opus", p(5, 25, 0.5, 6.25)],
  ["sonnet", p(3, 15, 0.3, 3.75)],
  ["haiku", p(1, 5, 0.1, 1.25)],
  // OpenAI: input, output, cached input; cache write = input.
  ["gpt-5", p(1.25, 10, 0.125, 1.25)],
  ["gpt-5-mini", p(0.25, 2, 0.025, 0.25)],
  ["gpt-5-nano", p(0.05, 0.4, 0.005, 0.05)],
  ["gpt-4.1", p(2, 8, 0.5, 2)],
  ["gpt-4.1-mini", p(0.4, 1.6, 0.1, 0.4)],
  ["gpt-4.1-nano", p(0.1, 0.4, 0.025, 0.1)],
  ["gpt-4o", p(2.5, 10, 1.25, 2.5)],
  ["gpt-4o-mini", p(0.15, 0.6, 0.075, 0.15)],
  ["o3", p(2, 8, 0.5, 2)],
  ["o3-mini", p(1.1, 4.4, 0.55, 1.1)],
  ["o4-mini", p(1.1, 4.4, 0.275, 1.1)],
  ["codex-mini", p(1.5, 6, 0.375, 1.5)],
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
 * Read a `--prices` file (YAML, `model-prefix: {input, output, cache_read,
 * cache_write}`, USD per million tokens) over `base`. `input` and `output`
 * are required; a missing cache price counts as the input price.
 *
 * @param path the file
 * @param text its contents
 * @param base the table it overrides
 * @example
 * ```ts
 * const t = parsePrices("p.yaml", "claude-sonnet-4: {input: 2, output: 10}\n", BUILT_IN_PRICES);
 * t.ok && priceOf(t.value, "claude-sonnet-4-5")?.cacheRead; // 2
 * ```
 */
export function parsePrices(path: string, text: string, base: PriceTable): Result<PriceTable> {
  let doc: unknown;
  try {
    doc = yaml.load(text, { schema: yaml.CORE_SCHEMA });
  } catch (e) {
    const line = (e as { mark?: { line?: number } }).mark?.line;
    const at = line === undefined ? "" : `:${line + 1}`;
    const reason = (e as { reason?: string }).reason ?? errorMessage(e);
    return fail(`${path}${at}: not valid YAML: ${oneLine(reason, 200)}`);
  }
  if (!isMap(doc)) return fail(`${path}: expected a mapping of model -> {input, output, ...}`);
  const out = new Map(base);
  for (const [model, v] of Object.entries(doc)) {
    const where = `${path}: ${oneLine(model, 80)}`;
    if (!isMap(v)) return fail(`${where}: expected {input, output, cache_read, cache_write}`);
    const read = (key: string, fallback?: number): Result<number> => {
      const x = v[key] ?? fallback;
      if (typeof x !== "number" || !Number.isFinite(x) || x < 0) {
        return fail(`${where}: '${key}' must be a price in USD per million tokens (>= 0)`);
      }
      return ok(x);
    };
    const input = read("input");
    if (!input.ok) return input;
    const output = read("output");
    if (!output.ok) return output;
    const cacheRead = read("cache_read", input.value);
    if (!cacheRead.ok) return cacheRead;
    const cacheWrite = read("cache_write", input.value);
    if (!cacheWrite.ok) return cacheWrite;
    out.set(model.toLowerCase(), p(input.value, output.value, cacheRead.value, cacheWrite.value));
  }
  return ok(out);
}

function isMap(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/**
 * Load `--prices`: the built-in table, or `path` over it.
 *
 * @example
 * ```ts ignore
 * const prices = await loadPrices("prices.yaml");
 * ```
 */
export async function loadPrices(path: string | undefined): Promise<Result<PriceTable>> {
  if (path === undefined) return ok(BUILT_IN_PRICES);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    return fail(`cannot read --prices ${path}: ${oneLine(errorMessage(e), 200)}`);
  }
  return parsePrices(path, text, BUILT_IN_PRICES);
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
