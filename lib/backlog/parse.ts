/**
 * Parsing one backlog file in full: the fast path when it is sure
 * (lib/backlog/fast.ts), else the full YAML parser (lib/backlog/yaml.ts), a
 * `gaps:` mapping, a bare list of gaps or a single gap mapping. Loaded only
 * when a file needs it (lib/backlog/load.ts), with the YAML parser.
 *
 * @module
 */
import { parseYaml } from "./yaml.ts";
import { fastGaps } from "./fast.ts";
import { duplicateKeyWarning, type Gap, kindOf, toGap, valueWarning } from "./gap.ts";
import { isRecord } from "../util/record.ts";
import { fail, ok, type Result } from "../util/result.ts";

/**
 * One backlog file's bytes: the fast path when it is sure (lib/backlog/fast.ts), else the text.
 *
 * @example
 * ```ts
 * parseBacklogBytes(new TextEncoder().encode("gaps:\n  - id: A-1\n"), "x.yaml");
 * ```
 */
export function parseBacklogBytes(
  bytes: Uint8Array,
  file: string,
): Result<{ gaps: Gap[]; warnings: string[] }> {
  return parseScanned(bytes, file, fastGaps(bytes, file));
}

/**
 * A file the fast path has scanned: its gaps when the rest of the document is
 * sound too (checked here when the scanner left it over), else the full parse.
 *
 * @param fast what the scanner read; undefined: it handed the file over
 * @example
 * ```ts
 * import { fastGaps } from "./fast.ts";
 *
 * const bytes = new TextEncoder().encode("meta: {v: 2}\ngaps:\n  - id: A-1\n");
 * parseScanned(bytes, "x.yaml", fastGaps(bytes, "x.yaml"));
 * ```
 */
export function parseScanned(
  bytes: Uint8Array,
  file: string,
  fast: ReturnType<typeof fastGaps>,
): Result<{ gaps: Gap[]; warnings: string[] }> {
  const sure = sureOf(fast);
  if (sure) return ok(sure);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return fail(`${file}: not UTF-8 text`);
  }
  return parseBacklogText(text, file, { fast: false });
}

/**
 * The fast path's gaps when it is sure of the file, the rest of the
 * document checked here when the scanner left it to the full parser.
 */
function sureOf(
  fast: ReturnType<typeof fastGaps>,
): { gaps: Gap[]; warnings: string[] } | undefined {
  if (!fast || (fast.rest !== undefined && !restIsSound(fast.rest))) return undefined;
  return { gaps: fast.gaps, warnings: fast.warnings };
}

/**
 * The document without its gaps list (lib/backlog/fast.ts `FastScan.rest`)
 * is a mapping the full parser reads without a repeated key, with no second
 * `gaps`, no directive and no second document (a gap's anchor used there, or
 * there a key repeated, is left to the full parse of the whole file).
 *
 * @example
 * ```ts
 * restIsSound("meta: {version: 2}"); // true
 * restIsSound("meta: 1\nmeta: 2"); // false
 * ```
 */
export function restIsSound(rest: string): boolean {
  if (/^(?:---|\.\.\.|%)/m.test(rest)) return false;
  const parsed = parseYaml(rest);
  if (!parsed.ok || parsed.value.duplicateKeys.length > 0) return false;
  const doc = parsed.value.value;
  return (doc === undefined || doc === null || isRecord(doc)) &&
    !(isRecord(doc) && Object.hasOwn(doc, "gaps"));
}

/**
 * Parse the text of one backlog file: a `gaps:` mapping, a bare list of
 * gaps, or a single gap mapping (the per-file registry form).
 *
 * @param text YAML source
 * @param file name used in messages
 * @param options `fast: false`: the full parser only (the fast path's differential test)
 * @returns the gaps in file order and the warnings local to this file
 * @example
 * ```ts
 * const r = parseBacklogText("gaps:\n  - id: A-1\n    status: open\n", "x.yaml");
 * ```
 */
export function parseBacklogText(
  text: string,
  file: string,
  options: { fast?: boolean } = {},
): Result<{ gaps: Gap[]; warnings: string[] }> {
  if (!/\S/.test(text)) return fail(`${file}: empty backlog (expected a top-level 'gaps:' list)`);
  // A lone surrogate has no UTF-8: such text is the full parser's (it refuses it).
  const sure = options.fast !== false && text.isWellFormed();
  const fast = sure ? sureOf(fastGaps(new TextEncoder().encode(text), file)) : undefined;
  if (fast) return ok(fast);
  const parsed = parseYaml(text);
  if (!parsed.ok) {
    const { reason, line, column } = parsed.error;
    const where = line === undefined ? file : `${file}:${line}${column ? `:${column}` : ""}`;
    return fail(`${where}: invalid YAML: ${reason}`);
  }
  const { value: doc, lineOf, duplicateKeys } = parsed.value;
  const warnings = duplicateKeys.map((d) => duplicateKeyWarning(file, d.line, d.column, d.key));

  let list: unknown[];
  let listLine: number | undefined;
  if (Array.isArray(doc)) {
    list = doc;
    listLine = 1;
  } else if (isRecord(doc)) {
    if (Object.hasOwn(doc, "gaps")) {
      const g = doc.gaps;
      listLine = lineOf(doc);
      if (!Array.isArray(g)) {
        const hint = g === null ? " (write 'gaps: []' for an empty backlog)" : "";
        return fail(
          `${file}:${listLine ?? 1}: 'gaps' must be a list of gaps, found ${kindOf(g)}${hint}`,
        );
      }
      list = g;
    } else if (Object.hasOwn(doc, "id")) {
      list = [doc];
    } else {
      return fail(`${file}: no top-level 'gaps:' list`);
    }
  } else {
    return fail(`${file}: expected a top-level 'gaps:' list, found ${kindOf(doc)}`);
  }

  const gaps: Gap[] = [];
  for (let i = 0; i < list.length; i++) {
    const item = list[i];
    if (!isRecord(item)) {
      return fail(
        `${file}:${listLine ?? 1}: gap #${i + 1} of the list is not a mapping (found ${
          kindOf(item)
        })`,
      );
    }
    const gap = toGap(item, file, lineOf(item) ?? listLine ?? 1);
    if (typeof gap === "string") return fail(gap);
    gaps.push(gap);
    const odd = valueWarning(gap);
    if (odd !== undefined) warnings.push(odd);
  }
  return ok({ gaps, warnings });
}
