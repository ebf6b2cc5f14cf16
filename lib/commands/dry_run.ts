/**
 * The dry run (the default command, CONTRACT §2): load the backlog, leave
 * out gaps held by live leases, print the summary line and one
 * `WOULD DISPATCH:` line per pick. Writes nothing.
 *
 * @module
 */
import type { Backlog } from "../backlog/load.ts";
import { loadBacklog } from "../backlog/load.ts";
import { pickableGaps } from "../backlog/picker.ts";
import { explainLines, renderPlan } from "../backlog/plan.ts";
import { type AgentTemplate, resolveAgentTemplate } from "../dispatch/agent.ts";
import { EXIT, type Io } from "../cli/io.ts";
import type { DispatchOptions } from "../cli/parse.ts";
import { PROGRAM } from "../cli/parse.ts";
import { resolvePaths } from "../cli/paths.ts";
import { assignSlugs, worktreeFor } from "../dispatch/slug.ts";
import { openLedgerIfExists } from "../store/ledger.ts";

/** Warnings printed per run before they are summarised (a 100k-gap backlog can have thousands). */
const MAX_WARNINGS_SHOWN = 50;

/**
 * Load a backlog and print its warnings; on failure print the one-line error.
 *
 * @returns the backlog, or undefined after printing why not
 */
export async function loadAndWarn(
  path: string,
  io: Io,
  isDefault = false,
): Promise<Backlog | undefined> {
  const loaded = await loadBacklog(path);
  if (!loaded.ok) {
    const hint = isDefault && loaded.error.startsWith("backlog not found")
      ? " (the default is docs/gaps.yaml under the repo root; pass --backlog PATH)"
      : "";
    io.err(`${PROGRAM}: error: ${loaded.error}${hint}`);
    return undefined;
  }
  const { warnings } = loaded.value;
  for (const w of warnings.slice(0, MAX_WARNINGS_SHOWN)) io.err(`warning: ${w}`);
  if (warnings.length > MAX_WARNINGS_SHOWN) {
    io.err(`warning: ... and ${warnings.length - MAX_WARNINGS_SHOWN} more warnings`);
  }
  return loaded.value;
}

/**
 * The run's agent template (`--agent-cmd`, `CHUMP_AGENT_CMD`, the backend
 * preset), its warning printed; undefined after one error line.
 */
export function agentTemplate(options: DispatchOptions, io: Io): AgentTemplate | undefined {
  const agent = resolveAgentTemplate({
    agentCmd: options.agentCmd,
    envCmd: io.env("CHUMP_AGENT_CMD"),
    backend: io.env("CHUMP_DISPATCH_BACKEND"),
  });
  if (!agent.ok) {
    io.err(`${PROGRAM}: error: ${agent.error}`);
    return undefined;
  }
  if (agent.value.warning) io.err(`warning: ${agent.value.warning}`);
  return agent.value;
}

/** Print what a run with these options would dispatch. */
export async function runDryRun(options: DispatchOptions, io: Io): Promise<number> {
  const paths = await resolvePaths(options);
  const backlog = await loadAndWarn(paths.backlog, io, paths.defaultBacklog);
  if (!backlog) return EXIT.usage;
  // What a real run would refuse, a dry run refuses too.
  if (!agentTemplate(options, io)) return EXIT.usage;
  if (options.watch) {
    io.err(
      "note: this is a dry run, so nothing is watched; add --no-dry-run to dispatch and watch",
    );
  }
  const leased = await leasedGaps(paths.db, io);
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
  const lines = renderPlan({
    source: paths.backlog,
    gaps: backlog.gaps,
    pickable: pickable.length,
    picks,
    worktreeOf: (id) => worktreeFor(paths.repoRoot, slugs.get(id)!),
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
    });
    for (const line of why) io.out(line);
  }
  return EXIT.ok;
}

/** Gap ids held by live leases, read without creating the DB. */
async function leasedGaps(db: string, io: Io): Promise<Set<string>> {
  const ledger = openLedgerIfExists(db);
  if (!ledger.ok) {
    io.err(`warning: ${ledger.error}; leases not checked`);
    return new Set();
  }
  if (!ledger.value) return new Set();
  try {
    return await ledger.value.liveGapIds();
  } finally {
    ledger.value.close();
  }
}
