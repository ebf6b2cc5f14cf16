/**
 * The dry run (the default command, CONTRACT §2): load the backlog, leave
 * out gaps held by live leases, print the summary line and one
 * `WOULD DISPATCH:` line per pick. Writes nothing.
 *
 * @module
 */
import { pickableGaps } from "../backlog/picker.ts";
import { explainLines, renderPlan } from "../backlog/plan.ts";
import { EXIT, type Exit, type Io, usageError } from "../cli/io.ts";
import { extraRunFrom, refusedInRun } from "./permissions.ts";
import type { DispatchOptions } from "../cli/catalog.ts";
import { ok } from "../util/result.ts";
import { statable } from "../util/fs.ts";
import { resolvePaths } from "./paths.ts";
import { agentTemplate, loadAndWarn } from "./_sources.ts";
import { assignSlugs, worktreesUnder } from "../git/slug.ts";

/** Print what a run with these options would dispatch. */
export async function runDryRun(options: DispatchOptions, io: Io): Promise<Exit> {
  const paths = await resolvePaths(options);
  const loaded = await loadAndWarn(paths.backlog, io, paths.defaultBacklog);
  if (!loaded.ok) return loaded;
  const backlog = loaded.value;
  // What a real run would refuse, a dry run refuses too: a malformed or a forbidden agent.
  const template = agentTemplate(options, io);
  if (!template.ok) return template;
  const extraRun = extraRunFrom(io.env("CHUMP_ALLOW_RUN"));
  const refused = refusedInRun(template.value.words[0], "the agent command", extraRun);
  if (refused) return usageError(refused);
  if (options.watch) {
    io.err(
      "note: this is a dry run, so nothing is watched; add --no-dry-run to dispatch and watch",
    );
  }
  const { leased, heldBack } = await leasedGaps(paths.db, io);
  const pickable = pickableGaps(backlog.gaps, { limit: Infinity, order: options.order, leased });
  const picks = pickable.slice(0, options.maxParallel);
  // A slug depends only on the ids before it (first come, first served), so the ids up to
  // the last pick give the picks the slugs a real run gives them, without slugging 100,000.
  const picked = new Set(picks);
  let end = 0;
  for (let i = 0; i < backlog.gaps.length; i++) if (picked.has(backlog.gaps[i])) end = i + 1;
  const ids: string[] = [];
  for (let i = 0; i < end; i++) ids.push(backlog.gaps[i].id);
  const slugs = assignSlugs(ids);
  const worktree = worktreesUnder(paths.repoRoot);
  const lines = renderPlan({
    source: paths.backlog,
    gaps: backlog.gaps,
    pickable: pickable.length,
    picks,
    worktreeOf: (id) => worktree(slugs.get(id)!),
    maxParallel: options.maxParallel,
    order: options.order,
    leased: leased.size,
  });
  for (const line of lines) io.out(line);
  if (options.explain) {
    const why = explainLines(backlog.gaps, {
      pickable,
      picks,
      leased,
      maxParallel: options.maxParallel,
      heldBack,
    });
    for (const line of why) io.out(line);
  }
  return ok(EXIT.ok);
}

/**
 * Gap ids held by live leases or held back after failures in a row (and
 * why, for `--explain`), read without creating the DB.
 */
async function leasedGaps(
  db: string,
  io: Io,
): Promise<{ leased: Set<string>; heldBack: Map<string, string> }> {
  const none = { leased: new Set<string>(), heldBack: new Map<string, string>() };
  // No DB, nothing held: the ledger's modules (SQLite, the process table) are not even loaded.
  if (!statable(db)) return none;
  const { openLedgerIfExists } = await import("../store/ledger.ts");
  const { processLiveness } = await import("../process/liveness.ts");
  const { heldBackReasons } = await import("../store/backoff.ts");
  const ledger = openLedgerIfExists(db, processLiveness());
  if (!ledger.ok) {
    io.err(`warning: ${ledger.error}; leases not checked`);
    return none;
  }
  if (!ledger.value) return none;
  try {
    const live = await ledger.value.liveGapIds();
    if (!live.ok) {
      io.err(`warning: ${live.error}; leases not checked`);
      return none;
    }
    const held = await ledger.value.heldBack();
    const heldBack = heldBackReasons(held.ok ? held.value : [], Date.now());
    for (const id of heldBack.keys()) live.value.add(id);
    return { leased: live.value, heldBack };
  } finally {
    ledger.value.close();
  }
}
