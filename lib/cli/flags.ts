/**
 * Flags, declared once: a {@linkcode Flag} is a plain value (its option key,
 * its name, the placeholder of its argument, its help, its default, how its
 * text becomes a value), made by the constructors here; a command lists the
 * flags it takes (cli/catalog.ts). The parser ({@linkcode parseFlags}), the
 * usage text ({@linkcode flagHelp}, {@linkcode flagList}) and the defaults
 * ({@linkcode defaultsOf}) all come from those declarations. Pure.
 *
 * @module
 */
import { formatDuration, parseDuration } from "../util/duration.ts";
import { fail, ok, type Result } from "../util/result.ts";
import { wrap } from "../util/text.ts";

/** One flag: parsed into `options[key]`. */
export interface Flag<K extends string = string, T = unknown> {
  readonly key: K;
  /** `max-parallel` (typed `--max-parallel`). */
  readonly name: string;
  /** Other names that mean the same (`--execute` for `--no-dry-run`). */
  readonly aliases?: readonly string[];
  /** One-letter form (`-h`). */
  readonly short?: string;
  /** The argument's placeholder in the usage (`N`, `PATH`); absent for a switch. */
  readonly arg?: string;
  readonly help: string;
  /** The value when the flag is not given. */
  readonly fallback: T;
  /** The argument's text -> the value (flags with an argument). */
  readonly read?: (text: string) => Result<T>;
}

// deno-lint-ignore no-explicit-any
type AnyFlag = Flag<string, any>;

/** The options object a list of flags parses into. */
export type OptionsOf<F extends readonly AnyFlag[]> = {
  -readonly [X in F[number] as X["key"]]: X["fallback"];
};

/**
 * A switch: false unless given.
 *
 * @example
 * ```ts
 * switchFlag("json", "json", "JSON lines instead of a table").fallback; // false
 * ```
 */
export function switchFlag<K extends string>(
  key: K,
  name: string,
  help: string,
  more: { short?: string; aliases?: readonly string[] } = {},
): Flag<K, boolean> {
  return { key, name, help, fallback: false, ...more };
}

/**
 * A text flag naming something (a path, a ref, a URL, a host); with
 * `fallback`, that is its value when not given. An empty value is refused
 * (`--db is empty`): it never names anything.
 *
 * @example
 * ```ts
 * textFlag("db", "db", "PATH", "reflection DB").read?.(""); // { ok: false, error: "--db is empty" }
 * ```
 */
export function textFlag<K extends string, F extends string | undefined = undefined>(
  key: K,
  name: string,
  arg: string,
  help: string,
  fallback?: F,
): Flag<K, string | F> {
  const read = (text: string): Result<string | F> =>
    text === "" ? fail(`--${name} is empty`) : ok(text);
  return customFlag<K, string | F>(key, name, arg, help, fallback as F, read);
}

/**
 * A text flag taken as given, empty included (its command checks it).
 *
 * @example
 * ```ts
 * freeTextFlag("token", "token", "T", "a token").read?.(""); // { ok: true, value: "" }
 * ```
 */
export function freeTextFlag<K extends string, F extends string | undefined = undefined>(
  key: K,
  name: string,
  arg: string,
  help: string,
  fallback?: F,
): Flag<K, string | F> {
  return customFlag<K, string | F>(key, name, arg, help, fallback as F, (text) => ok(text));
}

/**
 * A whole number of at least `min` (and at most `max`).
 *
 * @example
 * ```ts
 * countFlag("limit", "limit", "N", "rows", { min: 1, fallback: 20 }).read?.("0");
 * // { ok: false, error: "--limit must be a whole number >= 1, got '0' (see --help)" }
 * ```
 */
export function countFlag<K extends string, F extends number | undefined = undefined>(
  key: K,
  name: string,
  arg: string,
  help: string,
  range: { min: number; max?: number; fallback?: F; tooBig?: string },
): Flag<K, number | F> {
  const read = (text: string) => readCount(name, text, range.min, range.max, range.tooBig);
  return customFlag<K, number | F>(key, name, arg, help, range.fallback as F, read);
}

/**
 * `text` as a whole number within [min, max], or one line naming the flag
 * (`tooBig`, when given, is the line for a number over `max`).
 *
 * @example
 * ```ts
 * readCount("port", "70000", 0, 65535); // fails: "--port must be at most 65535, got '70000'"
 * ```
 */
export function readCount(
  name: string,
  text: string,
  min: number,
  max = Infinity,
  tooBig?: string,
): Result<number> {
  if (!/^\s*\d+\s*$/.test(text) || Number(text) < min) {
    return fail(`--${name} must be a whole number >= ${min}, got '${text}' (see --help)`);
  }
  const n = Number(text);
  if (n > max) return fail(tooBig ?? `--${name} must be at most ${max}, got '${n}'`);
  return ok(n);
}

/**
 * A duration (`500ms`, `30s`, `20m`, `3h`, `2d`) within [min, max].
 *
 * @example
 * ```ts
 * durationFlag("tickMs", "tick", "D", "tick", { min: 1, fallback: 30_000 }).read?.("2s");
 * // { ok: true, value: 2000 }
 * ```
 */
export function durationFlag<K extends string, F extends number | undefined = undefined>(
  key: K,
  name: string,
  arg: string,
  help: string,
  range: { min: number; max?: number; fallback?: F },
): Flag<K, number | F> {
  const read = (text: string) => readDuration(name, text, range.min, range.max);
  return customFlag<K, number | F>(key, name, arg, help, range.fallback as F, read);
}

/** `text` as a duration within [min, max], or one line naming the flag. */
function readDuration(name: string, text: string, min: number, max = Infinity): Result<number> {
  const d = parseDuration(text);
  if (!d.ok) return fail(`--${name}: ${d.error}`);
  if (d.value < min) {
    return fail(`--${name} must be at least ${formatDuration(min)}, got '${text}'`);
  }
  if (d.value > max) return fail(`--${name} must be at most ${formatDuration(max)}, got '${text}'`);
  return d;
}

/**
 * One of `choices`; `describe` says them in the error (`'gh' or 'git'`).
 *
 * @example
 * ```ts
 * choiceFlag("order", "order", ["priority", "file"], "'priority' or 'file'", "pick order", "priority")
 *   .read?.("x"); // { ok: false, error: "--order must be 'priority' or 'file', got 'x'" }
 * ```
 */
export function choiceFlag<K extends string, C extends string, F extends C | undefined>(
  key: K,
  name: string,
  choices: readonly C[],
  describe: string,
  help: string,
  fallback: F,
): Flag<K, C | F> {
  const read = (text: string): Result<C | F> =>
    (choices as readonly string[]).includes(text)
      ? ok(text as C)
      : fail(`--${name} must be ${describe}, got '${text}'`);
  return customFlag<K, C | F>(key, name, choices.join("|"), help, fallback, read);
}

/**
 * A flag of any value, read by `read`.
 *
 * @example
 * ```ts
 * customFlag("n", "n", "N", "a number", 0, (t) => ({ ok: true, value: Number(t) })).fallback; // 0
 * ```
 */
export function customFlag<K extends string, T>(
  key: K,
  name: string,
  arg: string,
  help: string,
  fallback: T,
  read: (text: string) => Result<T>,
): Flag<K, T> {
  return { key, name, arg, help, fallback, read };
}

/**
 * The same flag with another default (and `note` in place of its help's `(default ...)`).
 *
 * @example
 * ```ts
 * const seed = countFlag("seed", "seed", "N", "seed", { min: 0 });
 * withFallback(seed, 1).fallback; // 1
 * ```
 */
export function withFallback<K extends string, T>(
  flag: Flag<K, T | undefined>,
  fallback: T,
  help = flag.help,
): Flag<K, T> {
  return { ...flag, help, fallback } as Flag<K, T>;
}

/**
 * Every flag's default, as the options object of a command line that gives none.
 *
 * @example
 * ```ts
 * defaultsOf([switchFlag("json", "json", "JSON")] as const); // { json: false }
 * ```
 */
export function defaultsOf<F extends readonly AnyFlag[]>(flags: F): OptionsOf<F> {
  const out: Record<string, unknown> = {};
  for (const f of flags) out[f.key] = f.fallback;
  return out as OptionsOf<F>;
}

/** A parsed command line: the options, which flags were given, the positional argument. */
export interface Parsed<O> {
  options: O;
  /** Keys of the flags given on the command line. */
  given: ReadonlySet<string>;
  positional?: string;
}

/**
 * Parse `argv` against `flags` (at most one positional argument when
 * `positional`); every problem is one line naming the flag.
 *
 * @example
 * ```ts
 * const flags = [countFlag("limit", "limit", "N", "rows", { min: 1, fallback: 20 })] as const;
 * parseFlags(["--limit", "5"], flags); // ok: options.limit === 5
 * ```
 */
export function parseFlags<F extends readonly AnyFlag[]>(
  argv: readonly string[],
  flags: F,
  positional = false,
): Result<Parsed<OptionsOf<F>>> {
  const byName = new Map<string, AnyFlag>();
  for (const f of flags) for (const n of [f.name, ...(f.aliases ?? [])]) byName.set(n, f);
  const raw = tokenize(argv, byName, positional);
  if (!raw.ok) return raw;
  const options: Record<string, unknown> = defaultsOf(flags);
  const given = new Set<string>();
  const { values } = raw.value;
  // `--help` and `--version` answer whatever else the line says.
  const asked = ["help", "version"].filter((n) => values[n] === true && byName.has(n));
  const read: [string, string | boolean][] = asked.length > 0
    ? asked.map((n) => [n, true])
    : Object.entries(values);
  for (const [name, value] of read) {
    const flag = byName.get(name)!;
    given.add(flag.key);
    if (typeof value === "boolean") {
      options[flag.key] = value;
      continue;
    }
    const v = flag.read!(value);
    if (!v.ok) return v;
    options[flag.key] = v.value;
  }
  return ok({ options: options as OptionsOf<F>, given, positional: raw.value.positional });
}

/**
 * Words -> flag values and a positional, as node:util's strict `parseArgs` reads them (`--name
 * value`, `--name=value`, `-h`, `--`; `--backlog -x` refused, `--seed -1` a value; the last of a
 * repeated flag wins), without starting Node compatibility (~9 ms of a cold start).
 */
function tokenize(
  argv: readonly string[],
  byName: ReadonlyMap<string, AnyFlag>,
  positional: boolean,
): Result<{ values: Record<string, string | boolean>; positional?: string }> {
  const values: Record<string, string | boolean> = Object.create(null);
  const positionals: string[] = [];
  const needs = (name: string) => fail(`flag --${name} needs a value (see --help)`);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      const flag = byName.get(name);
      if (!flag) return fail(`unknown flag --${name} (see --help)`);
      if (flag.arg === undefined) {
        if (eq >= 0) return fail(`flag --${name} takes no value (see --help)`);
        values[name] = true;
      } else if (eq >= 0) values[name] = a.slice(eq + 1);
      else {
        const next = argv[i + 1];
        if (next === undefined || (next.length > 1 && next[0] === "-" && !/^-\d/.test(next))) {
          return needs(name);
        }
        values[name] = next;
        i++;
      }
      continue;
    }
    if (a.length > 1 && a[0] === "-") {
      for (const c of a.slice(1)) {
        const flag = [...byName.values()].find((f) => f.short === c);
        if (!flag || flag.arg !== undefined) return fail(`unknown flag -${c} (see --help)`);
        values[flag.name] = true;
      }
      continue;
    }
    positionals.push(a);
  }
  if (positionals.length > (positional ? 1 : 0)) {
    return fail(`unexpected argument '${positionals.at(-1)}' (see --help)`);
  }
  return ok({ values, positional: positionals[0] });
}

/** Column of a flag's help in {@linkcode flagHelp}. */
const HELP_COLUMN = 24;

/** Width the help text is folded to. */
const HELP_WIDTH = 96;

/**
 * The usage lines of `flags`: each flag, its placeholder, its help folded
 * under it.
 *
 * @example
 * ```ts
 * flagHelp([switchFlag("json", "json", "JSON lines")]); // ["  --json                JSON lines"]
 * ```
 */
export function flagHelp(flags: readonly AnyFlag[]): string[] {
  const lines: string[] = [];
  for (const f of flags) {
    const names = [f.name, ...(f.aliases ?? [])].map((n) => `--${n}`).join(", ");
    const label = `  ${f.short ? `-${f.short}, ` : ""}${names}${f.arg ? ` ${f.arg}` : ""}`;
    const text = wrap(f.help, HELP_WIDTH - HELP_COLUMN);
    const indent = " ".repeat(HELP_COLUMN);
    if (label.length <= HELP_COLUMN - 2) lines.push(label.padEnd(HELP_COLUMN) + text[0]);
    else lines.push(label, indent + text[0]);
    for (const rest of text.slice(1)) lines.push(indent + rest);
  }
  return lines;
}

/**
 * The flags listed compactly (`--db PATH  --limit N  --json`), in lines of at most `width`.
 *
 * @example
 * ```ts
 * flagList([switchFlag("json", "json", "JSON lines")], 80); // ["--json"]
 * ```
 */
export function flagList(flags: readonly AnyFlag[], width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const f of flags) {
    const item = `--${f.name}${f.arg ? ` ${f.arg}` : ""}`;
    if (line !== "" && line.length + 2 + item.length > width) {
      lines.push(line);
      line = item;
    } else line = line === "" ? item : `${line}  ${item}`;
  }
  if (line !== "") lines.push(line);
  return lines;
}
