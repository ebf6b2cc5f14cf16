/**
 * Whole runs, end to end: real git repos with a bare origin, real demo-agent
 * processes, the real CLI, real SQLite. Each row of CONTRACT §4's table, the
 * worktree rule, refill, exit codes and the exact reflection rows.
 */
import { deepEqual, equal, match, ok as assert } from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import {
  backlogOf,
  demoAgentCmd,
  exists,
  gitOk,
  leaseRows,
  linesStarting,
  marked,
  orchestrate,
  pidsWithEnv,
  reflectionRows,
  scratchRepo,
} from "../_e2e.ts";
import { ROOT, runMain } from "../_helpers.ts";
import { terminateGroup } from "../../lib/process/signal.ts";
import { checkEvent, EVENT_FIELDS } from "../../lib/watch/events.ts";

const DIRECTIVE =
  /^dispatched gap=(\S+) effort=s domain=(\S+) outcome=(\w+) duration_s=\d+ parallel_siblings=\d+ pr_number=(Some\(\d+\)|None) notes=(.*)$/;

Deno.test("every git-provider row of the monitor table, end to end, in one parallel run", async () => {
  const plan: Record<string, string> = {
    "ROW-SHIP": "ship",
    "ROW-SHIPFAIL": "ship-then-fail",
    "ROW-FAIL": "fail",
    "ROW-FAILCOMMIT": "fail-after-commit",
    "ROW-NOOP": "noop",
    "ROW-COMMIT": "commit",
    "ROW-HANG": "hang",
    "ROW-STUBBORN": "stubborn",
    "ROW-CHILD": "hang-child",
  };
  await using s = await scratchRepo(backlogOf(Object.keys(plan).map((id) => [id])));
  const mark = `CHUMP_TEST_MARK=${crypto.randomUUID()}`;
  const ran = await orchestrate(s, [
    "--max-parallel",
    "9",
    "--deadline",
    "s=2s",
    "--kill-grace",
    "500ms",
  ], {
    CHUMP_DEMO_PLAN: Object.entries(plan).map(([id, b]) => `${id}=${b}`).join(","),
    CHUMP_TEST_MARK: mark.split("=")[1],
  });
  equal(ran.code, 3, `exit 3: a non-shipped outcome\n${ran.stdout}\n${ran.stderr}`);
  equal(linesStarting(ran.stdout, "DISPATCHED: ").length, 9);
  assert(
    ran.stdout.includes("shipped=2  ci_failed=0  stalled=2  killed=5  spawn_failures=0"),
    ran.stdout,
  );

  const rows = reflectionRows(s.db);
  equal(rows.size, 9);
  const expect: Record<string, [string, string]> = {
    "ROW-SHIP": ["shipped", ""],
    "ROW-SHIPFAIL": ["shipped", ""],
    "ROW-FAIL": ["killed", "exit code 1"],
    "ROW-FAILCOMMIT": ["killed", "exit code 1"],
    "ROW-NOOP": ["stalled", "exited 0 without a PR"],
    "ROW-COMMIT": ["stalled", "exited 0 without a PR"],
    "ROW-HANG": ["killed", "soft-deadline exceeded (2s x 2)"],
    "ROW-STUBBORN": ["killed", "soft-deadline exceeded (2s x 2)"],
    "ROW-CHILD": ["killed", "soft-deadline exceeded (2s x 2)"],
  };
  for (const [id, [outcome, reason]] of Object.entries(expect)) {
    const r = rows.get(id)!;
    assert(r, `a reflection for ${id}`);
    match(r.observed, new RegExp(`^outcome=${outcome} duration_s=\\d+ pr=None$`));
    equal(r.class, outcome === "shipped" ? "success" : "failure");
    equal(r.pattern, "orchestrator_dispatch");
    equal(r.scope, "row");
    equal(r.priority, { shipped: "low", stalled: "medium", killed: "high" }[outcome]);
    const notes = r.hypothesis.split("\n");
    const backend = notes.findIndex((l) => l.startsWith("backend=custom:"));
    equal(backend, reason ? 1 : 0, `notes of ${id}: ${r.hypothesis}`);
    if (reason) equal(notes[0], reason);
    const d = DIRECTIVE.exec(r.directive);
    assert(d, `directive of ${id}: ${r.directive}`);
    deepEqual(d!.slice(1, 5), [id, "row", outcome, "None"]);
    equal(d![5], reason || notes[0]);
  }
  // The stderr tail reaches the notes.
  assert(rows.get("ROW-FAIL")!.hypothesis.includes("ERROR: demo failure for ROW-FAIL"));
  assert(rows.get("ROW-HANG")!.hypothesis.includes("WARN: demo agent hanging until killed"));
  // The stalled warning came once, before the kill.
  equal(
    ran.stderr.split("\n").filter((l) => l.includes("STALLED: ROW-HANG ")).length,
    1,
    ran.stderr,
  );

  // The worktree rule: work (commits) is kept, the rest removed.
  const wt = (id: string) => join(s.repo, ".claude", "worktrees", id.toLowerCase());
  for (const id of ["ROW-FAILCOMMIT", "ROW-COMMIT"]) assert(await exists(wt(id)), `${id} kept`);
  for (const id of ["ROW-FAIL", "ROW-NOOP", "ROW-HANG", "ROW-STUBBORN", "ROW-CHILD", "ROW-SHIP"]) {
    equal(await exists(wt(id)), false, `${id} removed`);
  }
  match(
    ran.stdout,
    /worktrees kept \(they hold work\): .*row-failcommit \(1 commit on claude\/row-failcommit\)/,
  );
  // Branches without work are deleted; shipped and committed ones stay.
  const branches =
    (await gitOk(["branch", "--list", "claude/*", "--format=%(refname:short)"], s.repo))
      .split("\n").sort();
  deepEqual(branches, [
    "claude/row-commit",
    "claude/row-failcommit",
    "claude/row-ship",
    "claude/row-shipfail",
  ]);

  // Leases all ended with their outcome; no agent (or grandchild) left running.
  const leases = leaseRows(s.db);
  equal(leases.length, 9);
  for (const l of leases) equal(l.state, "ended");
  deepEqual(await pidsWithEnv(mark), []);
});

Deno.test("PR rows through the gh provider: merged, closed, open past max-watch, old PRs ignored", async () => {
  const ids = ["GH-MERGED", "GH-CLOSED", "GH-OPEN", "GH-OLD"];
  await using s = await scratchRepo(backlogOf(ids.map((id) => [id])));
  const now = new Date().toISOString();
  // Merged and closed "later": a PR that had already ended when the dispatch began is not its own.
  const later = new Date(Date.now() + 3_600_000).toISOString();
  const weekAgo = new Date(Date.now() - 7 * 86_400_000).toISOString();
  const state = join(s.dir, "gh-state.json");
  const log = join(s.dir, "gh-log.jsonl");
  await Deno.writeTextFile(
    state,
    JSON.stringify({
      "claude/gh-merged": [{ number: 12, state: "MERGED", createdAt: now, updatedAt: later }],
      "claude/gh-closed": [{ number: 13, state: "CLOSED", createdAt: now, updatedAt: later }],
      "claude/gh-open": [{ number: 14, state: "OPEN", createdAt: now, updatedAt: now }],
      "claude/gh-old": [{ number: 9, state: "CLOSED", createdAt: weekAgo, updatedAt: weekAgo }],
    }),
  );
  const fakeGh = new URL("../fake_gh", import.meta.url).pathname;
  const mark = crypto.randomUUID();
  const ran = await orchestrate(s, [
    "--pr-provider",
    "gh",
    "--max-parallel",
    "4",
    "--max-watch",
    "1500ms",
    "--kill-grace",
    "300ms",
  ], {
    PATH: `${fakeGh}:${Deno.env.get("PATH")}`,
    FAKE_GH_STATE: state,
    FAKE_GH_LOG: log,
    CHUMP_DEMO_PLAN: "GH-MERGED=hang,GH-CLOSED=noop,GH-OPEN=hang,GH-OLD=fail",
    CHUMP_TEST_MARK: mark,
  });
  equal(ran.code, 3, `${ran.stdout}\n${ran.stderr}`);
  const rows = reflectionRows(s.db);
  match(rows.get("GH-MERGED")!.observed, /^outcome=shipped duration_s=\d+ pr=Some\(12\)$/);
  match(rows.get("GH-MERGED")!.directive, / pr_number=Some\(12\) notes=backend=/);
  match(rows.get("GH-CLOSED")!.observed, /^outcome=ci_failed duration_s=\d+ pr=Some\(13\)$/);
  equal(rows.get("GH-CLOSED")!.priority, "high");
  match(rows.get("GH-CLOSED")!.directive, / notes=PR #13 closed without merging$/);
  match(rows.get("GH-OPEN")!.observed, /^outcome=stalled duration_s=\d+ pr=Some\(14\)$/);
  match(rows.get("GH-OPEN")!.directive, / notes=PR #14 still open$/);
  match(rows.get("GH-OLD")!.observed, /^outcome=killed duration_s=\d+ pr=None$/);
  match(rows.get("GH-OLD")!.directive, / notes=exit code 1$/);

  // `gh auth status` once before dispatching, then one batched gh call per tick, never one
  // per branch: the first poll asks for all four.
  const [auth, ...calls] = (await Deno.readTextFile(log)).trim().split("\n").map((l) =>
    JSON.parse(l) as string[]
  );
  deepEqual(auth, ["auth", "status"]);
  assert(calls.length >= 1);
  const firstQuery = calls[0].find((a) => a.startsWith("query="))!;
  equal([...firstQuery.matchAll(/headRefName: "claude\/gh-/g)].length, 4);
  for (const c of calls) deepEqual(c.slice(0, 2), ["api", "graphql"]);
  // Agents still running when their PR decided the outcome were ended.
  deepEqual(await pidsWithEnv(`CHUMP_TEST_MARK=${mark}`), []);
});

Deno.test("continuous refill: 6 gaps, 2 at a time, a dependency unblocked by a ship", async () => {
  await using s = await scratchRepo(backlogOf([
    ["R-1"],
    ["R-2", "depends_on: [R-1]"],
    ["R-3", "depends_on: [R-2]"],
    ["R-4"],
    ["R-5"],
    ["R-6"],
  ]));
  const ran = await orchestrate(s, ["--max-parallel", "2"], {
    CHUMP_DEMO_PLAN: "R-1=sleep:300:ship,R-4=sleep:600:ship",
  });
  equal(ran.code, 0, `${ran.stdout}\n${ran.stderr}`);
  assert(ran.stdout.includes("shipped=6  ci_failed=0  stalled=0  killed=0  spawn_failures=0"));
  // Never more than 2 in flight; each dependent starts only after what it waits for shipped.
  let inflight = 0;
  const order: string[] = [];
  for (const line of ran.stdout.split("\n")) {
    if (line.startsWith("DISPATCHED: ")) {
      inflight++;
      order.push(`+${line.split(" ")[1]}`);
    } else if (line.startsWith("OUTCOME: ")) {
      inflight--;
      order.push(`-${line.split(" ")[1]}`);
    }
    assert(inflight <= 2, order.join(" "));
  }
  equal(order.filter((e) => e.startsWith("+")).length, 6);
  assert(order.indexOf("-R-1") < order.indexOf("+R-2"), order.join(" "));
  assert(order.indexOf("-R-2") < order.indexOf("+R-3"), order.join(" "));
  equal(reflectionRows(s.db).size, 6);
});

Deno.test("a failed gap is not dispatched again, and --max-total caps dispatches", async () => {
  await using s = await scratchRepo(backlogOf([["M-FAIL-1"], ["M-2"], ["M-3"], ["M-4"]]));
  const ran = await orchestrate(s, ["--max-parallel", "1", "--max-total", "3"]);
  equal(ran.code, 3);
  deepEqual(
    linesStarting(ran.stdout, "DISPATCHED: ").map((l) => l.split(" ")[1]),
    ["M-FAIL-1", "M-2", "M-3"],
  );
  assert(ran.stdout.includes("shipped=2  ci_failed=0  stalled=0  killed=1  spawn_failures=0"));
});

Deno.test("a spawn failure is DISPATCH-FAILED, exit 1; its worktree and lease are cleaned up", async () => {
  await using s = await scratchRepo(backlogOf([["SF-1"]]));
  // Allowed and present, but not executable: the spawn itself fails.
  const agent = join(s.dir, "not-executable-agent");
  await Deno.writeTextFile(agent, "#!/bin/sh\nexit 0\n");
  await Deno.chmod(agent, 0o644);
  const ran = await orchestrate(s, ["--agent-cmd", `${agent} --go`], { CHUMP_ALLOW_RUN: agent });
  equal(ran.code, 1, ran.stderr);
  equal(
    linesStarting(ran.stdout, "DISPATCH-FAILED: ")[0],
    `DISPATCH-FAILED: SF-1: cannot run agent command '${agent}': permission denied (is it an executable file?)`,
  );
  equal(await exists(join(s.repo, ".claude", "worktrees", "sf-1")), false);
  deepEqual(leaseRows(s.db).map((l) => l.state), ["ended"]);
  equal(reflectionRows(s.db).size, 0);
  assert(ran.stdout.includes("shipped=0  ci_failed=0  stalled=0  killed=0  spawn_failures=1"));
});

Deno.test("inside a dispatched agent (CHUMP_DISPATCH_DEPTH=1) dispatching is refused, exit 2", async () => {
  await using s = await scratchRepo(backlogOf([["D-1"]]));
  const ran = await orchestrate(s, [], { CHUMP_DISPATCH_DEPTH: "1" });
  equal(ran.code, 2);
  match(ran.stderr, /refusing to dispatch: CHUMP_DISPATCH_DEPTH=1 .*depth-1 rule/);
  equal(await exists(s.db), false);
});

Deno.test("a base ref that does not resolve is a usage error, exit 2", async () => {
  await using s = await scratchRepo(backlogOf([["B-1"]]));
  const ran = await orchestrate(s, ["--base-ref", "origin/nope"]);
  equal(ran.code, 2);
  equal(
    ran.stderr.trim(),
    `chump-orchestrator: error: base ref 'origin/nope' does not resolve in ${s.repo} ` +
      "(fetch it, or pass --base-ref)",
  );
});

Deno.test("an agent flooding 200 MB of stderr leaves a 64-line tail in the notes and a capped log", async () => {
  await using s = await scratchRepo(backlogOf([["FLOOD-1"]]));
  const ran = await orchestrate(s, ["--log-cap", "4"], { CHUMP_DEMO_PLAN: "FLOOD-1=flood:200" });
  equal(ran.code, 3, ran.stderr);
  // The log keeps the newest output: between half the cap and the cap, ending where the agent did.
  const log = join(s.repo, "sessions", "dispatch-logs", "1-flood-1.err.log");
  const size = (await Deno.stat(log)).size;
  assert(size >= 2 << 20 && size <= 4 << 20, `log size ${size}`);
  const text = await Deno.readTextFile(log);
  match(text, /\nFAIL: flood done after \d+ lines\n$/);
  match(
    text.slice(text.indexOf("\n") + 1, text.indexOf("\n") + 40),
    /^(ERROR|info) flood line \d+/,
  );
  const notes = reflectionRows(s.db).get("FLOOD-1")!.hypothesis.split("\n");
  equal(notes[0], "exit code 1");
  match(notes[1], /^backend=custom:/);
  const tail = notes.slice(2);
  equal(tail.length, 64);
  for (const l of tail) match(l, /ERROR|FAIL/);
  match(tail.at(-1)!, /^FAIL: flood done after \d+ lines$/);
});

Deno.test("without --watch agents run unwatched: leases detached, gaps held, no reflections", async () => {
  await using s = await scratchRepo(backlogOf([["NW-HANG-1"], ["NW-HANG-2"]]));
  const args = ["--repo-root", s.repo, "--no-dry-run", "--agent-cmd", demoAgentCmd()];
  const ran = await runMain(args);
  try {
    equal(ran.code, 0, ran.stderr);
    equal(linesStarting(ran.stdout, "DISPATCHED: ").length, 2);
    match(ran.stdout, /2 agent\(s\) started and left running unwatched/);
    deepEqual(leaseRows(s.db).map((l) => l.state), ["detached", "detached"]);
    equal(reflectionRows(s.db).size, 0);
    // While they run, their gaps are held: a dry run and a second dispatch skip them.
    const dry = await runMain(["--repo-root", s.repo]);
    match(dry.stdout, /pickable=0 leased=2 picked=0/);
    const again = await runMain(args);
    equal(again.code, 0);
    match(again.stdout, /nothing to dispatch/);
    const status = await runMain(["status", "--repo-root", s.repo, "--json"]);
    deepEqual(
      status.stdout.trim().split("\n").map((l) => JSON.parse(l)).map((
        r,
      ) => [r.gap, r.state, r.pidAlive]),
      [["NW-HANG-2", "detached", true], ["NW-HANG-1", "detached", true]],
    );
  } finally {
    const leases = await exists(s.db) ? leaseRows(s.db) : [];
    for (const l of leases) if (l.pid) await terminateGroup(l.pid, { graceMs: 1000 });
  }
});

Deno.test("the reflections subcommand lists rows newest first, filtered, as JSON", async () => {
  await using s = await scratchRepo(backlogOf([["Q-1"], ["Q-FAIL-2"]]));
  await orchestrate(s, ["--max-parallel", "1"]);
  const all = await runMain(["reflections", "--repo-root", s.repo, "--json"]);
  equal(all.code, 0, all.stderr);
  const rows = all.stdout.trim().split("\n").map((l) => JSON.parse(l));
  deepEqual(rows.map((r) => [r.gapId, r.outcome]), [["Q-FAIL-2", "killed"], ["Q-1", "shipped"]]);
  const killed = await runMain(["reflections", "--db", s.db, "--outcome", "killed", "--json"]);
  deepEqual(killed.stdout.trim().split("\n").map((l) => JSON.parse(l).gapId), ["Q-FAIL-2"]);
  const table = await runMain(["reflections", "--db", s.db, "--gap", "Q-1"]);
  match(table.stdout, /^id +created_at +gap +outcome/);
  match(table.stdout, /Q-1 +shipped/);
  equal(table.stdout.includes("Q-FAIL-2"), false);
});

Deno.test("an agent that commits on a detached HEAD and exits 1 keeps its worktree and the commit", async () => {
  await using s = await scratchRepo(backlogOf([["DT-1"]]));
  const ran = await orchestrate(s, [], { CHUMP_DEMO_PLAN: "DT-1=detach-commit-fail" });
  equal(ran.code, 3, `${ran.stdout}\n${ran.stderr}`);
  match(reflectionRows(s.db).get("DT-1")!.directive, / outcome=killed .* notes=exit code 1$/);
  const wt = join(s.repo, ".claude", "worktrees", "dt-1");
  assert(await exists(wt), "the worktree holding the detached commit is kept");
  match(ran.stdout, /worktrees kept \(they hold work\): .*dt-1 \(1 commit on a detached HEAD\)/);
  // The commit is still HEAD there, on no branch.
  const head = await gitOk(["rev-parse", "HEAD"], wt);
  equal(await gitOk(["log", "-1", "--format=%s", head], wt), "demo work for DT-1");
  equal(await gitOk(["branch", "--contains", head, "--format=%(refname)"], s.repo), "");
});

Deno.test("a failed worktree creation leaves no branch: the next run of that gap dispatches", async () => {
  await using s = await scratchRepo(backlogOf([["WF-1"]]));
  const wt = join(s.repo, ".claude", "worktrees", "wf-1");
  await Deno.mkdir(wt, { recursive: true });
  await Deno.writeTextFile(join(wt, "stray.txt"), "left here by hand\n");
  const first = await orchestrate(s, []);
  equal(first.code, 1, first.stdout);
  match(
    linesStarting(first.stdout, "DISPATCH-FAILED: ")[0],
    /^DISPATCH-FAILED: WF-1: git worktree add claude\/wf-1: fatal: '.*wf-1' already exists$/,
  );
  equal(await gitOk(["branch", "--list", "claude/*"], s.repo), "");
  equal(await Deno.readTextFile(join(wt, "stray.txt")), "left here by hand\n");
  // The stray directory is cleared: the same gap dispatches (no "branch already exists").
  await Deno.remove(wt, { recursive: true });
  const second = await orchestrate(s, []);
  equal(second.code, 0, `${second.stdout}\n${second.stderr}`);
  match(second.stdout, /^DISPATCHED: WF-1 /m);
});

Deno.test("a leftover branch from a crashed run is reused when empty, refused when it holds work", async () => {
  await using s = await scratchRepo(backlogOf([["LB-EMPTY-1"], ["LB-WORK-2"]]));
  const base = await gitOk(["rev-parse", "origin/main"], s.repo);
  await gitOk(["branch", "claude/lb-empty-1", base], s.repo);
  const side = join(s.dir, "side");
  await gitOk(["worktree", "add", "--quiet", "-b", "claude/lb-work-2", side, base], s.repo);
  await Deno.writeTextFile(join(side, "work.txt"), "precious\n");
  await gitOk(["add", "work.txt"], side);
  await gitOk(["commit", "--quiet", "-m", "earlier work"], side);
  await gitOk(["worktree", "remove", side], s.repo);
  const work = await gitOk(["rev-parse", "claude/lb-work-2"], s.repo);

  const ran = await orchestrate(s, ["--max-parallel", "2"]);
  equal(ran.code, 1, `${ran.stdout}\n${ran.stderr}`);
  match(ran.stdout, /^DISPATCHED: LB-EMPTY-1 /m);
  equal(
    linesStarting(ran.stdout, "DISPATCH-FAILED: ")[0],
    "DISPATCH-FAILED: LB-WORK-2: git worktree add claude/lb-work-2: refused: branch " +
      "claude/lb-work-2 already exists with 1 commit beyond the base (left as it is: merge or " +
      "delete it to dispatch this gap again)",
  );
  assert(ran.stdout.includes("shipped=1  ci_failed=0  stalled=0  killed=0  spawn_failures=1"));
  equal(await gitOk(["rev-parse", "claude/lb-work-2"], s.repo), work, "work never overwritten");
});

Deno.test("the claim script runs inside the worktree with the gap id; a failing claim is DISPATCH-FAILED", async () => {
  await using s = await scratchRepo(backlogOf([["CL-1"], ["CL-REFUSED-2"]]));
  await Deno.mkdir(join(s.repo, "scripts"));
  await Deno.writeTextFile(
    join(s.repo, "scripts", "gap-claim.sh"),
    [
      'echo "$1 $PWD" >> "$CLAIM_LOG"',
      'if [ "$1" = CL-REFUSED-2 ]; then echo "claim refused: already claimed" >&2; exit 3; fi',
      "",
    ].join("\n"),
  );
  await gitOk(["add", "scripts"], s.repo);
  await gitOk(["commit", "--quiet", "-m", "claim script"], s.repo);
  await gitOk(["push", "--quiet", "origin", "main"], s.repo);
  await gitOk(["fetch", "--quiet", "origin"], s.repo);
  const claimLog = join(s.dir, "claims.log");

  const ran = await orchestrate(s, ["--max-parallel", "2"], { CLAIM_LOG: claimLog });
  equal(ran.code, 1, `${ran.stdout}\n${ran.stderr}`);
  const wt = (slug: string) => join(s.repo, ".claude", "worktrees", slug);
  deepEqual((await Deno.readTextFile(claimLog)).trim().split("\n").sort(), [
    `CL-1 ${await Deno.realPath(s.repo)}/.claude/worktrees/cl-1`,
    `CL-REFUSED-2 ${await Deno.realPath(s.repo)}/.claude/worktrees/cl-refused-2`,
  ]);
  match(ran.stdout, /^DISPATCHED: CL-1 /m);
  equal(
    linesStarting(ran.stdout, "DISPATCH-FAILED: ")[0],
    "DISPATCH-FAILED: CL-REFUSED-2: claim script exited 3: claim refused: already claimed",
  );
  equal(await exists(wt("cl-refused-2")), false, "the refused gap's worktree is removed");
  deepEqual(leaseRows(s.db).map((l) => [l.gap_id, l.state]).sort(), [
    ["CL-1", "ended"],
    ["CL-REFUSED-2", "ended"],
  ]);
  assert(ran.stdout.includes("shipped=1  ci_failed=0  stalled=0  killed=0  spawn_failures=1"));
});

Deno.test("the agent runs in its worktree with the dispatch environment and the prompt on stdin", async () => {
  await using s = await scratchRepo(backlogOf([["EV-1"]]));
  const out = join(s.dir, "agent-out");
  await Deno.mkdir(out);
  const agent =
    `bash -c 'env > "$AGENT_OUT/env"; pwd > "$AGENT_OUT/pwd"; cat > "$AGENT_OUT/stdin"'`;
  const ran = await orchestrate(s, ["--agent-cmd", agent], { AGENT_OUT: out });
  equal(ran.code, 3, `${ran.stdout}\n${ran.stderr}`); // exited 0 without a PR: stalled
  const env = new Map(
    (await Deno.readTextFile(join(out, "env"))).split("\n").filter((l) => l.includes("="))
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
  const worktree = join(s.repo, ".claude", "worktrees", "ev-1");
  const conn = new DatabaseSync(s.db, { readOnly: true });
  const lease = conn.prepare("SELECT id FROM chump_dispatch_leases WHERE gap_id = 'EV-1'").get();
  conn.close();
  const leaseId = String(lease!.id);
  deepEqual(
    ["CHUMP_DISPATCH_DEPTH", "CHUMP_GAP_ID", "CHUMP_BRANCH", "CHUMP_WORKTREE", "CHUMP_LEASE_ID"]
      .map((k) => [k, env.get(k)]),
    [
      ["CHUMP_DISPATCH_DEPTH", "1"],
      ["CHUMP_GAP_ID", "EV-1"],
      ["CHUMP_BRANCH", "claude/ev-1"],
      ["CHUMP_WORKTREE", worktree],
      ["CHUMP_LEASE_ID", leaseId],
    ],
  );
  equal(
    (await Deno.readTextFile(join(out, "pwd"))).trim(),
    await Deno.realPath(s.repo) + "/.claude/worktrees/ev-1",
  );
  const prompt = await Deno.readTextFile(join(out, "stdin"));
  assert(prompt.includes("close gap EV-1"), prompt);
  assert(prompt.includes("scripts/bot-merge.sh --gap EV-1 --auto-merge"), prompt);
});

Deno.test("parallel_siblings is the number of other dispatches in flight at the deciding tick", async () => {
  // PS-FAIL-1 exits at once (2 others in flight); PS-HANG-2 (effort s) is killed at 2x 400ms
  // (1 other); PS-HANG-3 (effort m) at 2x 2s, alone.
  const backlog = backlogOf([["PS-FAIL-1"], ["PS-HANG-2"]]) +
    "  - id: PS-HANG-3\n    title: e2e PS-HANG-3\n    priority: P1\n    effort: m\n" +
    "    status: open\n";
  await using s = await scratchRepo(backlog);
  const ran = await orchestrate(s, [
    "--max-parallel",
    "3",
    "--deadline",
    "s=400ms,m=2s",
    "--kill-grace",
    "300ms",
  ]);
  equal(ran.code, 3, `${ran.stdout}\n${ran.stderr}`);
  const rows = reflectionRows(s.db);
  const siblings = (id: string) => /parallel_siblings=(\d+) /.exec(rows.get(id)!.directive)![1];
  deepEqual(
    ["PS-FAIL-1", "PS-HANG-2", "PS-HANG-3"].map((id) => [id, siblings(id)]),
    [["PS-FAIL-1", "2"], ["PS-HANG-2", "1"], ["PS-HANG-3", "0"]],
  );
});

Deno.test("--idle-timeout: a silent agent gets one IDLE warning, then is killed 'idle for D'", async () => {
  await using s = await scratchRepo(backlogOf([["ID-HANG-1"]]));
  await using m = await marked();
  const ran = await orchestrate(s, ["--idle-timeout", "1s"], m.env);
  equal(ran.code, 3, ran.stderr);
  equal(
    linesStarting(ran.stderr, "warning: IDLE: ID-HANG-1 no output for 1s").length,
    1,
    ran.stderr,
  );
  match(ran.stdout, /^OUTCOME: ID-HANG-1 killed duration_s=\d+ pr=none -- idle for 1s$/m);
  match(reflectionRows(s.db).get("ID-HANG-1")!.directive, / notes=idle for 1s$/);
  deepEqual(await pidsWithEnv(m.mark), []);
});

Deno.test("--events: every transition as one JSON line, each conforming to the documented schema", async () => {
  await using s = await scratchRepo(backlogOf([["EV-SHIP-1"], ["EV-HANG-2"]]));
  await using m = await marked();
  const file = join(s.dir, "events.jsonl");
  const ran = await orchestrate(s, ["--deadline", "s=1s", "--events", file], m.env);
  equal(ran.code, 3, ran.stderr);
  match(ran.stdout, /^DISPATCHED: EV-SHIP-1 /m, "the plain lines are still printed");
  const idle = await orchestrate(
    s,
    ["--idle-timeout", "1s", "--events", file, "--backlog", await oneGap(s, "EV-HANG-3")],
    m.env,
  );
  equal(idle.code, 3, idle.stderr);
  const events = (await Deno.readTextFile(file)).trim().split("\n").map((l) => JSON.parse(l));
  for (const e of events) deepEqual(checkEvent(e), [], JSON.stringify(e));
  const names = new Set(events.map((e) => e.event));
  for (
    const name of [
      "run_started",
      "dispatched",
      "pr_seen",
      "deadline_warning",
      "output_idle",
      "outcome",
      "run_finished",
    ]
  ) assert(names.has(name), `${name} was emitted`);
  const ship = events.find((e) => e.event === "outcome" && e.gap_id === "EV-SHIP-1");
  equal(ship.outcome, "shipped");
  equal(typeof ship.lease_id, "number");
  equal(new Set(events.map((e) => e.run_id)).size, 2, "one run id per run");
  deepEqual(events.filter((e) => e.event === "run_finished").map((e) => e.exit_code), [3, 3]);
  deepEqual(await pidsWithEnv(m.mark), []);
});

Deno.test("--events -: JSON lines on stdout instead of the plain lines", async () => {
  await using s = await scratchRepo(backlogOf([["EVO-1"]]));
  const ran = await orchestrate(s, ["--events", "-"]);
  equal(ran.code, 0, ran.stderr);
  const lines = ran.stdout.trim().split("\n");
  const events = lines.map((l) => JSON.parse(l));
  // A poll can race the agent's own fetch for refs/remotes/origin/main (worktrees share refs):
  // that is a `retry` event, and retried; the rest of the sequence is fixed.
  deepEqual(events.map((e) => e.event).filter((e) => e !== "retry"), [
    "run_started",
    "dispatched",
    "pr_seen",
    "outcome",
    "run_finished",
  ]);
  for (const e of events) deepEqual(checkEvent(e), []);
});

/** A backlog file of the one gap `id`, beside the repo. */
async function oneGap(s: { dir: string }, id: string): Promise<string> {
  const path = join(s.dir, `${id}.yaml`);
  await Deno.writeTextFile(path, backlogOf([[id]]));
  return path;
}

Deno.test("the README's events table lists exactly the schema's events and fields", async () => {
  const readme = await Deno.readTextFile(join(ROOT, "README.md"));
  const section = readme.split("## Events (`--events FILE`)")[1].split("\n## ")[0];
  const rows = new Map<string, string[]>();
  for (const line of section.split("\n")) {
    const m = /^\| `([a-z_]+)` +\| (.*) \|$/.exec(line);
    if (m) rows.set(m[1], [...m[2].matchAll(/`([a-z_]+)`/g)].map((f) => f[1]));
  }
  deepEqual(
    [...rows.entries()],
    Object.entries(EVENT_FIELDS).map(([name, fields]) => [name, Object.keys(fields)]),
  );
});
