/**
 * Reading `--prices FILE`: YAML, `model-prefix: {input, output, cache_read,
 * cache_write}` in USD per million tokens, over the built-in table
 * (cost/prices.ts). Apart from that table so that what needs only the
 * table (the CLI's help) does not load a YAML parser.
 *
 * @module
 */
// @ts-types="npm:@types/js-yaml@4.0.9"
import yaml from "js-yaml";
import { errorMessage, fail, ok, type Result } from "../util/result.ts";
import { oneLine } from "../util/text.ts";
import { BUILT_IN_PRICES, price, type PriceTable } from "./prices.ts";
import { isRecord } from "../util/record.ts";

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
 * import { BUILT_IN_PRICES, priceOf } from "./prices.ts";
 *
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
  if (!isRecord(doc)) return fail(`${path}: expected a mapping of model -> {input, output, ...}`);
  const out = new Map(base);
  for (const [model, v] of Object.entries(doc)) {
    const where = `${path}: ${oneLine(model, 80)}`;
    if (!isRecord(v)) return fail(`${where}: expected {input, output, cache_read, cache_write}`);
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
    out.set(
      model.toLowerCase(),
      price(input.value, output.value, cacheRead.value, cacheWrite.value),
    );
  }
  return ok(out);
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
