/**
 * The dashboard in a real browser: Debian's `chromium` (headless) loads the
 * page served by the real CLI under the task's permissions, runs its script
 * (which fetches /api/status) and the DOM it ends with is checked; /metrics
 * likewise. `.ci/run` installs chromium when it is missing; here a missing
 * chromium is a failure, never a skip.
 */
import { deepEqual, equal, match, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import {
  backlogOf,
  demoAgentCmd,
  killMarked,
  marked,
  orchestrate,
  orchestrateInTerminal,
  pidsWithEnv,
  scratchRepo,
  startCli,
} from "./_e2e.ts";
import { ROOT, runMain, runProcess, scratch, taskArgs } from "./_helpers.ts";
import { GIT_ID } from "../testkit/repo.ts";

/** Run Debian's headless chromium on `url` (3 s of virtual time for its scripts) with `flags`. */
async function chromium(url: string, flags: string[]): Promise<string> {
  await using profile = await scratch("chump-chromium-");
  const ran = await runProcess("chromium", [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    `--user-data-dir=${profile.path}`,
    "--virtual-time-budget=3000",
    ...flags,
    url,
  ]).catch((e) => {
    throw new Error(`chromium could not be started (.ci/run installs it): ${e}`);
  });
  equal(ran.code, 0, ran.stderr);
  return ran.stdout;
}

/** The page as Chromium leaves it after its scripts ran. */
function browse(url: string): Promise<string> {
  return chromium(url, ["--dump-dom"]);
}

Deno.test("the dashboard shows every lease and who watches it, in a real browser; /metrics counts them", async () => {
  await using s = await scratchRepo(backlogOf([["DB-SHIP-1"], ["DB-HANG-2"]]));
  await using m = await marked();
  const shipped = await orchestrate(s, ["--backlog", await gapFile(s.dir, "DB-SHIP-1")], m.env);
  equal(shipped.code, 0, shipped.stderr);
  const detached = await runMain(
    [
      "--repo-root",
      s.repo,
      "--no-dry-run",
      "--agent-cmd",
      demoAgentCmd(),
      "--backlog",
      await gapFile(s.dir, "DB-HANG-2"),
    ],
    { env: { ...GIT_ID, ...m.env } },
  );
  equal(detached.code, 0, detached.stderr);
  await m.ready("DB-HANG-2");

  const server = startCli(["serve", "--repo-root", s.repo, "--port", "0"]);
  try {
    const reader = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let first = "";
    while (!first.includes("\n")) {
      const chunk = await reader.read();
      if (chunk.done) break;
      first += chunk.value;
    }
    const url = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(first)?.[1];
    assert(url, `the dashboard says where it listens: ${first}`);

    const dom = await browse(url);
    const rows = [...dom.matchAll(/<tr data-gap="([^"]+)">(.*?)<\/tr>/g)].map((r) => [
      r[1],
      [...r[2].matchAll(/<td[^>]*>(.*?)<\/td>/g)].map((c) => c[1]),
    ]);
    deepEqual(rows.map(([gap]) => gap), ["DB-HANG-2", "DB-SHIP-1"]);
    const cells = new Map(rows.map(([gap, c]) => [gap as string, c as string[]]));
    deepEqual(cells.get("DB-SHIP-1")!.slice(2, 4), ["ended", "settled"]);
    deepEqual(cells.get("DB-HANG-2")!.slice(2, 4), ["detached", "unwatched"]);
    equal(cells.get("DB-HANG-2")![5], "yes", "its agent is alive");
    equal(cells.get("DB-SHIP-1")![7], "shipped");
    match(cells.get("DB-HANG-2")![8], /dispatch-logs\/2-db-hang-2\.out\.log$/);
    match(dom, /<p id="totals">2 lease\(s\): settled 1, unwatched 1; outcomes: shipped 1<\/p>/);

    const reflections = await browse(`${url}api/reflections`);
    match(reflections, /"gapId":"DB-SHIP-1","outcome":"shipped"/);

    // A screenshot of the page as the browser drew it (README's docs/dashboard.png is one).
    await using shots = await scratch("chump-shot-");
    const png = join(shots.path, "dashboard.png");
    await chromium(url, ["--window-size=1200,360", `--screenshot=${png}`]);
    deepEqual([...(await Deno.readFile(png)).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47], "a PNG");

    const metrics = await browse(`${url}metrics`);
    match(metrics, /chump_leases\{watch="unwatched"\} 1/);
    match(metrics, /chump_agents_alive 1/);
    match(metrics, /chump_reflections_total\{outcome="shipped"\} 1/);
    await reader.cancel();
  } finally {
    server.kill("SIGTERM");
    const status = await server.status;
    await server.stderr.cancel();
    await killMarked(m.mark);
    equal(status.code, 0, "Ctrl-C (SIGTERM) stops the dashboard cleanly");
  }
});

Deno.test("the dashboard off loopback needs a token, checked on every request (401 without)", async () => {
  const refused = await runMain(["serve", "--host", "0.0.0.0"]);
  equal(refused.code, 2);
  match(refused.stderr, /--host 0\.0\.0\.0 is not loopback: it needs --token T/);

  await using s = await scratchRepo(backlogOf([["TK-1"]]));
  const token = "s3cret-token-42";
  const server = startCli([
    "serve",
    "--repo-root",
    s.repo,
    "--host",
    "0.0.0.0",
    "--token",
    token,
    "--port",
    "0",
  ]);
  try {
    const reader = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let first = "";
    while (!first.includes("\n")) {
      const chunk = await reader.read();
      if (chunk.done) break;
      first += chunk.value;
    }
    const port = /0\.0\.0\.0:(\d+)\//.exec(first)?.[1];
    assert(port, first);
    equal(first.includes(token), false, "the token is not printed");
    const code = async (args: string[]) =>
      (await runProcess("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", ...args])).stdout;
    const base = `http://127.0.0.1:${port}`;
    equal(await code([`${base}/api/status`]), "401");
    equal(await code([`${base}/metrics`]), "401");
    equal(await code([`${base}/api/status?token=wrong-token-42`]), "401");
    equal(await code(["-H", `Authorization: Bearer ${token}`, `${base}/api/status`]), "200");
    equal(await code([`${base}/metrics?token=${token}`]), "200");
    // The page passes its token on to its own requests.
    match(
      await browse(`${base}/?token=${token}`),
      /<p id="totals">0 lease\(s\): none; outcomes: none<\/p>/,
    );
    await reader.cancel();
  } finally {
    server.kill("SIGTERM");
    await server.status;
    await server.stderr.cancel();
  }
});

/** A backlog file of the one gap `id` in `dir`. */
async function gapFile(dir: string, id: string): Promise<string> {
  const path = join(dir, `${id}.yaml`);
  await Deno.writeTextFile(path, backlogOf([[id]]));
  return path;
}

Deno.test("logs prints an agent's output by gap or lease id; -f follows it until the agent ends", async () => {
  await using s = await scratchRepo(backlogOf([["LG-1"]]));
  await using m = await marked({ CHUMP_DEMO_PLAN: "LG-1=gate:fail" });
  const ran = await runMain(
    ["--repo-root", s.repo, "--no-dry-run", "--agent-cmd", demoAgentCmd()],
    { env: { ...GIT_ID, ...m.env } },
  );
  equal(ran.code, 0, ran.stderr);
  await m.ready("LG-1");
  const logs = join(s.repo, "sessions", "dispatch-logs");
  const before = await runMain(["logs", "LG-1", "--repo-root", s.repo]);
  equal(before.code, 0, before.stderr);
  deepEqual(before.stdout.trim().split("\n"), [
    `==> ${join(logs, "1-lg-1.out.log")} <==`,
    `==> ${join(logs, "1-lg-1.err.log")} <==`,
  ]);
  const follow = new Deno.Command(Deno.execPath(), {
    args: [...taskArgs("dispatch"), "logs", "1", "-f", "--repo-root", s.repo],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  await Deno.writeTextFile(join(m.env.CHUMP_DEMO_READY_DIR, "LG-1.go"), "\n");
  const followed = await follow;
  equal(followed.code, 0, new TextDecoder().decode(followed.stderr));
  const lines = new TextDecoder().decode(followed.stdout).trim().split("\n");
  deepEqual(lines.slice(-2), [
    `==> ${join(logs, "1-lg-1.err.log")} <==`,
    "ERROR: demo failure for LG-1",
  ]);
  const unknown = await runMain(["logs", "NOPE-1", "--repo-root", s.repo]);
  equal(unknown.code, 2);
  match(unknown.stderr, /no dispatch of 'NOPE-1' \(a gap id or a lease id\)/);
});

Deno.test("status --watch redraws until Ctrl-C (here SIGTERM), exit 0", async () => {
  await using s = await scratchRepo(backlogOf([["SW-1"]]));
  const shipped = await orchestrate(s, []);
  equal(shipped.code, 0, shipped.stderr);
  const child = startCli([
    "status",
    "--watch",
    "--interval",
    "100ms",
    "--repo-root",
    s.repo,
  ]);
  let out = "";
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const row = /^ *1 +SW-1 +ended +shipped /gm;
  while ((out.match(row) ?? []).length < 3) {
    const chunk = await reader.read();
    if (chunk.done) break;
    out += chunk.value;
  }
  child.kill("SIGTERM");
  await reader.cancel();
  await child.stderr.cancel();
  equal((await child.status).code, 0);
  assert((out.match(row) ?? []).length >= 3, out);
  assert((out.match(/^status at /gm) ?? []).length >= 3, out);
});

Deno.test("--watch on a terminal draws a live table in place; the summary stays; --no-live keeps plain lines", async () => {
  await using s = await scratchRepo(backlogOf([["LV-HANG-1"], ["LV-2"]]));
  await using m = await marked();
  const term = orchestrateInTerminal(s, ["--max-parallel", "2", "--deadline", "s=1s"], m.env);
  await term.closed;
  const screen = term.output();
  match(screen, /gap +backend +state +elapsed\/deadline +idle +pr +last warning/);
  match(screen, /LV-HANG-1 +custom:\S+ +running +\d+s\/1s \[[#-]{10}\] \d+%/);
  match(screen, /running \d+ {2}shipped \d+ {2}failed \d+ {2}queued 0 {2}next tick in 0s/);
  assert(screen.includes("\x1b[J"), "the table is redrawn in place");
  // After the last erase of the table: the summary, which stays on screen.
  const after = screen.slice(screen.lastIndexOf("\x1b[J"));
  assert(after.includes("shipped=1  ci_failed=0  stalled=0  killed=1  spawn_failures=0"), after);
  equal(/running \d+ {2}shipped/.test(after), false, "no table under the summary");
  deepEqual(await pidsWithEnv(m.mark), []);

  await using s2 = await scratchRepo(backlogOf([["LV-3"]]));
  const plain = orchestrateInTerminal(s2, ["--no-live"], m.env);
  await plain.closed;
  equal(plain.output().includes("\x1b["), false, "no escape sequences with --no-live");
  assert(plain.output().includes("shipped=1  ci_failed=0"), plain.output());
});
