/**
 * The reflection notes protocol, both ways, in one place: a dispatch's
 * routing facts travel inside the contract's free-text notes (CONTRACT §5:
 * the reason line first, then `backend=<label>`, then the stderr tail) as
 * `key=value` lines after `backend=`: `model=`, `provider=`, `attempt=`,
 * `class=`, `lessons=`, the fix rounds of its PR (`fix_rounds=`,
 * `fix_reasons=`), and what the dispatch cost: `cost_usd=`,
 * `tokens_in=`, `tokens_out=`, `tokens_cache_read=`, `tokens_cache_write=`,
 * `turns=`, `session=`, `session_model=`. {@linkcode encodeNotes} writes them,
 * {@linkcode decodeNotes} reads them back (from rows of any age: every fact
 * but the backend may be missing), and {@linkcode armLabel} names the arm
 * they describe (`backend/model@provider`). Pure.
 *
 * @module
 */

/** What a dispatch's notes say. */
export interface Notes {
  /** Why it ended (`exit code 1`, ...); blank or absent for none. */
  reason?: string;
  /** The agent backend's label (`claude`, `chump-local`, `custom:<program>`). */
  backend: string;
  /** The routed arm's model and provider. */
  model?: string;
  provider?: string;
  /** Which attempt of the gap this was (a routing table's cascade). */
  attempt?: number;
  /** The failure class (learn/classify.ts). */
  class?: string;
  /** How many lessons lines its prompt was given. */
  lessons?: number;
  /** Fix rounds the agent was given for its PR (CI failures, review requests, conflicts). */
  fixRounds?: number;
  /** Why, each reason once (`ci_failed`, `changes_requested`, `conflict`). */
  fixReasons?: readonly string[];
  /** What the dispatch cost (a structured agent session). */
  cost?: CostFacts;
  /** The stderr tail, oldest first. */
  tail?: readonly string[];
}

/** What a dispatch cost, as its notes say it. */
export interface CostFacts {
  /** Dollars; absent when nothing could be priced. */
  usd?: number;
  tokensIn: number;
  tokensOut: number;
  cacheRead: number;
  cacheWrite: number;
  turns: number;
  session?: string;
  /** The model the session said it ran (it may differ from the arm's `model=`). */
  sessionModel?: string;
}

/** The facts' keys, in the order they are written after `backend=`. */
const FACTS = ["model", "provider", "attempt", "class", "lessons"] as const;

/** The cost facts' keys and how each is read from {@linkcode CostFacts}. */
const COST_KEYS = [
  ["cost_usd", (c: CostFacts) => c.usd === undefined ? undefined : c.usd.toFixed(4)],
  ["tokens_in", (c: CostFacts) => String(c.tokensIn)],
  ["tokens_out", (c: CostFacts) => String(c.tokensOut)],
  ["tokens_cache_read", (c: CostFacts) => String(c.cacheRead)],
  ["tokens_cache_write", (c: CostFacts) => String(c.cacheWrite)],
  ["turns", (c: CostFacts) => String(c.turns)],
  ["session", (c: CostFacts) => c.session],
  ["session_model", (c: CostFacts) => c.sessionModel],
] as const;

/**
 * The notes text: one item a line.
 *
 * @example
 * ```ts
 * encodeNotes({ reason: "exit code 1", backend: "claude", tail: ["ERROR x"] });
 * // "exit code 1\nbackend=claude\nERROR x"
 * encodeNotes({ backend: "chump-local", model: "m1", attempt: 2 });
 * // "backend=chump-local\nmodel=m1\nattempt=2"
 * ```
 */
export function encodeNotes(n: Notes): string {
  const lines: string[] = [];
  if (n.reason !== undefined && n.reason.trim() !== "") lines.push(n.reason);
  lines.push(`backend=${n.backend}`);
  for (const key of FACTS) {
    const value = n[key];
    if (value !== undefined && value !== "") lines.push(`${key}=${value}`);
  }
  if (n.fixRounds !== undefined && n.fixRounds > 0) {
    lines.push(`fix_rounds=${n.fixRounds}`);
    if (n.fixReasons && n.fixReasons.length > 0) {
      lines.push(`fix_reasons=${n.fixReasons.join(",")}`);
    }
  }
  if (n.cost) {
    for (const [key, read] of COST_KEYS) {
      const value = read(n.cost);
      if (value !== undefined && value !== "") lines.push(`${key}=${oneWord(value)}`);
    }
  }
  lines.push(...(n.tail ?? []));
  return lines.join("\n");
}

/** What {@linkcode decodeNotes} reads from notes of any age. */
export interface DecodedNotes {
  /** Absent when the notes have no `backend=` line (not a dispatch's, or too old). */
  backend?: string;
  model?: string;
  provider?: string;
  attempt?: number;
  class?: string;
  lessons?: number;
  /** What the dispatch cost, when its notes say (rows of older versions do not). */
  cost?: CostFacts;
  fixRounds?: number;
  fixReasons?: string[];
  /** The lines that are not `key=value` facts: the reason and the stderr tail. */
  text: string[];
}

/**
 * Read notes back: each fact from its first `key=value` line, and the other
 * non-blank lines.
 *
 * @example
 * ```ts
 * const n = decodeNotes("exit code 1\nbackend=chump-local\nmodel=m1\nERROR: 429");
 * n.backend; // "chump-local"
 * n.text; // ["exit code 1", "ERROR: 429"]
 * ```
 */
export function decodeNotes(notes: string): DecodedNotes {
  const out: DecodedNotes = { text: [] };
  const seen = new Set<string>();
  for (const line of String(notes ?? "").split("\n")) {
    const trimmed = line.trim();
    if (trimmed === "") continue;
    if (!/^[a-z_]+=/.test(trimmed)) {
      out.text.push(line);
      continue;
    }
    // A fact starts its line; an indented `key=value` is neither a fact nor text.
    const m = /^([a-z_]+)=/.exec(line);
    if (!m) continue;
    const key = m[1];
    if (seen.has(key)) continue;
    seen.add(key);
    const value = line.slice(line.indexOf("=") + 1).trim();
    if (key === "backend" || key === "model" || key === "provider" || key === "class") {
      if (value !== "") out[key] = value;
    } else if (key === "attempt" || key === "lessons") {
      if (/^\d+$/.test(value)) out[key] = Number(value);
    } else if (key === "fix_rounds") {
      if (/^\d+$/.test(value)) out.fixRounds = Number(value);
    } else if (key === "fix_reasons") {
      out.fixReasons = value.split(",").filter((r) => r !== "");
    } else {
      readCostFact(out, key, value);
    }
  }
  return out;
}

/** One cost fact into `out.cost` (made at the first one). */
function readCostFact(out: DecodedNotes, key: string, value: string): void {
  const cost = () =>
    out.cost ??= { tokensIn: 0, tokensOut: 0, cacheRead: 0, cacheWrite: 0, turns: 0 };
  if (key === "session" || key === "session_model") {
    if (value !== "") cost()[key === "session" ? "session" : "sessionModel"] = value;
    return;
  }
  if (key === "cost_usd") {
    const usd = Number(value);
    if (value !== "" && Number.isFinite(usd) && usd >= 0) cost().usd = usd;
    return;
  }
  const field = Object.hasOwn(COUNT_FIELDS, key) ? COUNT_FIELDS[key] : undefined;
  if (field !== undefined && /^\d+$/.test(value)) cost()[field] = Number(value);
}

/** The cost facts that are counts, by key. */
const COUNT_FIELDS: Readonly<
  Record<string, "tokensIn" | "tokensOut" | "cacheRead" | "cacheWrite" | "turns">
> = {
  tokens_in: "tokensIn",
  tokens_out: "tokensOut",
  tokens_cache_read: "cacheRead",
  tokens_cache_write: "cacheWrite",
  turns: "turns",
};

/** A value on one `key=value` line: no line breaks in it. */
function oneWord(value: string): string {
  return value.replace(/\s+/g, " ").trim();
}

/**
 * An arm's label: the backend, then `/model` when set, `@provider` when set.
 *
 * @example
 * ```ts
 * armLabel({ backend: "chump-local", model: "m1", provider: "GROQ" }); // "chump-local/m1@GROQ"
 * armLabel({ backend: "claude" }); // "claude"
 * ```
 */
export function armLabel(arm: { backend: string; model?: string; provider?: string }): string {
  return `${arm.backend}${arm.model ? `/${arm.model}` : ""}${
    arm.provider ? `@${arm.provider}` : ""
  }`;
}

/**
 * The arm a reflection's notes name, or undefined without a `backend=` line.
 *
 * @example
 * ```ts
 * armOfNotes("exit code 1\nbackend=chump-local\nmodel=m1\nprovider=GROQ"); // "chump-local/m1@GROQ"
 * ```
 */
export function armOfNotes(notes: string): string | undefined {
  const n = decodeNotes(notes);
  return n.backend === undefined ? undefined : armLabel({ ...n, backend: n.backend });
}
