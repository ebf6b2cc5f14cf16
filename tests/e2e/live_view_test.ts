/**
 * The live view as an operator sees it: the orchestrator on a real terminal
 * (tmux), its screen and scrollback read back. Every line either stream
 * prints stays above the table; the table leaves nothing behind.
 */
import { equal, match, ok as assert } from "node:assert/strict";
import { backlogOf, letGo, marked, orchestrate, scratchRepo, watchArgs } from "../_e2e.ts";
import { waitFor } from "../../testkit/process.ts";
import { ROOT, taskArgs } from "../_helpers.ts";
import { GIT_ID } from "../../testkit/repo.ts";
import { onTerminal } from "../../testkit/tmux.ts";

Deno.test("on a terminal, warnings (stderr) stay on screen above the live table, and the table leaves no debris", async () => {
  await using s = await scratchRepo(backlogOf([["LV-HANG-1"], ["LV-2"]]));
  await using m = await marked({ CHUMP_DEMO_PLAN: "LV-HANG-1=hang,LV-2=sleep:1500:ship" });
  await using term = await onTerminal(
    [
      Deno.execPath(),
      ...taskArgs("dispatch"),
      ...watchArgs(s, ["--max-parallel", "2", "--deadline", "s=2s", "--tick", "200ms"]),
    ],
    { cwd: ROOT, env: { ...GIT_ID, ...m.env, NO_COLOR: "1" }, columns: 120, rows: 30 },
  );
  equal(await term.finished(), 3);
  const lines = (await term.screen()).split("\n");
  const has = (re: RegExp) => lines.some((l) => re.test(l));
  assert(has(/^warning: STALLED: LV-HANG-1 running past its soft deadline/), lines.join("\n"));
  assert(has(/^KILLING: LV-HANG-1 \(soft-deadline exceeded \(2s x 2\)\)/), lines.join("\n"));
  assert(has(/^OUTCOME: LV-2 shipped /), lines.join("\n"));
  match(lines.join("\n"), /^shipped=1 {2}ci_failed=0 {2}stalled=0 {2}killed=1 /m);
  equal(lines.filter((l) => /^gap +backend +state/.test(l)).length, 0, "no table header left");
  equal(lines.filter((l) => /^running \d+ {2}shipped/.test(l)).length, 0, "no totals line left");
});

Deno.test("on a terminal made narrower while the table shows, nothing of the table is left behind", async () => {
  await using s = await scratchRepo(backlogOf([["LV-WIDE-HANG-1"], ["LV-WIDE-2"]]));
  await using m = await marked({
    CHUMP_DEMO_PLAN: "LV-WIDE-HANG-1=hang,LV-WIDE-2=gate:ship",
  });
  await using term = await onTerminal(
    [
      Deno.execPath(),
      ...taskArgs("dispatch"),
      ...watchArgs(s, ["--max-parallel", "2", "--deadline", "s=3s", "--tick", "200ms"]),
    ],
    { cwd: ROOT, env: { ...GIT_ID, ...m.env, NO_COLOR: "1" }, columns: 130, rows: 30, before: 40 },
  );
  await m.ready("LV-WIDE-HANG-1");
  await m.ready("LV-WIDE-2");
  await waitFor(async () => /^gap +backend/m.test(await term.screen()), { what: "the table" });
  await term.resize(60, 30); // each line of the table now takes two rows
  await new Promise((r) => setTimeout(r, 600)); // a few frames at the new width
  await letGo(m.env.CHUMP_DEMO_READY_DIR, ["LV-WIDE-2"]);
  equal(await term.finished(), 3);
  const screen = await term.screen();
  assert(!/^gap +backend/m.test(screen), `no table header left:\n${screen}`);
  assert(!/^running \d+ {2}shipped/m.test(screen), `no totals line left:\n${screen}`);
  match(screen, /^OUTCOME: LV-WIDE-2 shipped /m);
});

Deno.test("status --watch on a narrow terminal cuts its rows to the width instead of wrapping them", async () => {
  await using s = await scratchRepo(backlogOf([["SN-A-RATHER-LONG-GAP-ID-1"]]));
  await using m = await marked();
  equal((await orchestrate(s, [], m.env)).code, 0);
  await using term = await onTerminal(
    [
      Deno.execPath(),
      ...taskArgs("dispatch"),
      "status",
      "--watch",
      "--interval",
      "200ms",
      "--repo-root",
      s.repo,
    ],
    { cwd: ROOT, env: { NO_COLOR: "1" }, columns: 50, rows: 20 },
  );
  const screen = await waitFor(async () => {
    const text = await term.screen();
    return /SN-A-RATHER/.test(text) && text;
  }, { what: "the status table" });
  // The capture joins a wrapped line back into one: any line over 50 columns wrapped.
  const lines = screen.split("\n");
  for (const line of lines) assert(line.length <= 50, `wrapped: ${JSON.stringify(line)}`);
  assert(lines.some((l) => l.endsWith("…")), "long rows are cut, with an ellipsis");
});
