/**
 * What each arm spent, from the reflections' cost facts (store/notes.ts):
 * dollars in all, and dollars per shipped gap (what every dispatch of the
 * arm cost, shipped or not, over the gaps it shipped). Pure; `lessons`,
 * `route` and the dashboard show it.
 *
 * @module
 */
import { armOfNotes, decodeNotes } from "../store/notes.ts";

/** What one arm spent. */
export interface ArmSpend {
  arm: string;
  dispatches: number;
  /** Dispatches whose cost is known (a structured session with a price). */
  costed: number;
  /** Distinct gaps it shipped. */
  shipped: number;
  spentUsd: number;
  /** spentUsd / shipped; null when it shipped nothing or nothing was costed. */
  usdPerShipped: number | null;
}

/** What {@linkcode spendByArm} reads of a reflection. */
export interface SpendRow {
  gapId: string;
  outcome: string;
  notes: string;
}

/**
 * Each arm's spend (arms in alphabetical order; notes without a `backend=`
 * line count as `unknown`).
 *
 * @example
 * ```ts
 * const r = (gapId: string, outcome: string, usd: string) =>
 *   ({ gapId, outcome, notes: `backend=claude\ncost_usd=${usd}\ntokens_in=1\ntokens_out=1` });
 * spendByArm([r("A-1", "killed", "0.5"), r("A-1", "shipped", "0.25")])[0].usdPerShipped; // 0.75
 * ```
 */
export function spendByArm(rows: readonly SpendRow[]): ArmSpend[] {
  const arms = new Map<string, { all: number; costed: number; usd: number; gaps: Set<string> }>();
  for (const r of rows) {
    const notes = String(r.notes ?? "");
    const arm = armOfNotes(notes) ?? "unknown";
    const a = arms.get(arm) ?? { all: 0, costed: 0, usd: 0, gaps: new Set<string>() };
    a.all++;
    const usd = decodeNotes(notes).cost?.usd;
    if (usd !== undefined) {
      a.costed++;
      a.usd += usd;
    }
    if (r.outcome === "shipped") a.gaps.add(r.gapId);
    arms.set(arm, a);
  }
  return [...arms.keys()].sort().map((arm) => {
    const a = arms.get(arm)!;
    return {
      arm,
      dispatches: a.all,
      costed: a.costed,
      shipped: a.gaps.size,
      spentUsd: a.usd,
      usdPerShipped: a.costed > 0 && a.gaps.size > 0 ? a.usd / a.gaps.size : null,
    };
  });
}
