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
  fakeClaude,
  killMarked,
  leaseRows as leaseRowsOf,
  marked,
  orchestrate,
  orchestrateInBackground,
  orchestrateInTerminal,
  pidsWithEnv,
  scratchRepo,
  startCli,
} from "../_e2e.ts";
import { runMain, runProcess, scratch } from "../_helpers.ts";
import { GIT_ID } from "../../testkit/repo.ts";
import type { HTTPRequest, Page } from "puppeteer-core";
import { firstLine, openBrowser } from "../../testkit/browser.ts";
import { waitFor } from "../../testkit/process.ts";

/** What `pattern` finds in the first line `serve` prints (where it listens); never the token. */
async function listening(server: Deno.ChildProcess, pattern: RegExp): Promise<string> {
  const first = await firstLine(server.stdout);
  const found = pattern.exec(first)?.[1];
  assert(found, `the dashboard says where it listens: ${first}`);
  equal(first.includes("s3cret"), false, "a token is never printed");
  return found;
}

/** `serve` on `repo` and a browser on its page; `stop` ends both, returning serve's exit code. */
async function dashboardOf(
  repo: string,
): Promise<{ url: string; page: Page; stop(): Promise<number> }> {
  const server = startCli(["serve", "--repo-root", repo, "--port", "0"]);
  const url = await listening(server, /(http:\/\/127\.0\.0\.1:\d+\/)/);
  const browser = await openBrowser();
  await browser.page.goto(url);
  return {
    url,
    page: browser.page,
    async stop() {
      await browser[Symbol.asyncDispose]();
      return await stopServer(server);
    },
  };
}

/** SIGTERM (as Ctrl-C) to `serve`; its exit code. */
async function stopServer(server: Deno.ChildProcess): Promise<number> {
  server.kill("SIGTERM");
  const status = await server.status;
  await server.stdout.cancel().catch(() => {});
  await server.stderr.cancel();
  return status.code;
}

/**
 * A click on a gap's row, in one step inside the page: the rows are redrawn on every view event,
 * and a click by the mouse on a row found a moment before can meet a row no longer in the page.
 */
async function clickRow(page: Page, gap: string): Promise<void> {
  // One evaluation, the row found and clicked in it ($eval finds the row in one round trip and
  // clicks it in another, and a row redrawn in between takes a click no listener hears).
  await page.evaluate(`document.querySelector('tr[data-gap="${gap}"]').click()`);
}

/** The text cells of each lease row, by gap. */
async function leaseRows(page: Page): Promise<Map<string, string[]>> {
  const rows = await page.$$eval("#leases tr", (trs) =>
    trs.map((tr) =>
      [
        tr.getAttribute("data-gap")!,
        [...tr.querySelectorAll("td")].map((td) => td.textContent ?? ""),
      ] as [string, string[]]
    ));
  return new Map(rows);
}

/** Every sample of a Prometheus text exposition, checked line by line: name{labels} -> value. */
function parsePrometheus(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/
      .exec(line);
    if (type) {
      types.set(type[1], type[2]);
      continue;
    }
    if (/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .+$/.test(line)) continue;
    const m =
      /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*",?)*\})? (-?[0-9.e+]+|\+Inf|NaN)$/
        .exec(line);
    assert(m, `a Prometheus sample line: ${JSON.stringify(line)}`);
    const family = m[1].replace(/_(bucket|sum|count)$/, "");
    assert(types.has(m[1]) || types.get(family) === "histogram", `TYPE declared before ${m[1]}`);
    samples.set(m[1] + (m[2] ?? ""), Number(m[3]));
  }
  return samples;
}

Deno.test("the dashboard in Chromium: a live agent's row appears by the event stream, then its outcome; /metrics parses", async () => {
  await using s = await scratchRepo(backlogOf([["DB-LIVE-1"], ["UI-FAIL-2"], ["API-SHIP-3"]]));
  await using m = await marked({ CHUMP_DEMO_PLAN: "DB-LIVE-1=gate:ship,UI-FAIL-2=fail" });
  const { url, page, stop } = await dashboardOf(s.repo);
  try {
    await page.waitForFunction(
      `document.getElementById("totals").textContent.startsWith("0 lease")`,
    );

    const run = orchestrateInBackground(s, ["--max-parallel", "3"], m.env);
    await m.ready("DB-LIVE-1");
    // The page never reloads: the row arrives by the event stream.
    await page.waitForSelector('tr[data-gap="DB-LIVE-1"][data-state="running"]', {
      timeout: 30_000,
    });
    const live = (await leaseRows(page)).get("DB-LIVE-1")!;
    deepEqual(live.slice(1, 4), ["DB-LIVE-1", "running", "watched"]);
    equal(live[5], "yes", "its agent is alive");
    match(live[6], /^\d+s \/ 20m$/, "elapsed against the deadline");
    // A click on its row shows its log tail.
    await clickRow(page, "DB-LIVE-1");
    await page.waitForFunction(
      `document.getElementById("log-title").textContent === "log of lease " + ` +
        `document.querySelector('tr[data-gap="DB-LIVE-1"]').dataset.lease`,
    );
    match(await page.$eval("#log", (e) => e.textContent ?? ""), /==> .*-db-live-1\.err\.log <==/);
    // The other two end while it runs: the picture of a fleet at work.
    await page.waitForSelector('tr[data-gap="UI-FAIL-2"][data-state="ended"]', { timeout: 30_000 });
    await page.waitForSelector('tr[data-gap="API-SHIP-3"][data-state="ended"]', {
      timeout: 30_000,
    });
    await page.waitForFunction(
      `document.querySelectorAll("#by-domain rect[data-key]").length === 2`,
    );
    await using shots = await scratch("chump-shot-");
    const png = join(shots.path, "dashboard.png");
    await page.screenshot({ path: png, fullPage: true });
    deepEqual([...(await Deno.readFile(png)).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47], "a PNG");
    const shot = Deno.env.get("CHUMP_SCREENSHOT"); // how README's docs/dashboard.png is made
    if (shot) await Deno.copyFile(png, shot);

    await Deno.writeTextFile(join(m.env.CHUMP_DEMO_READY_DIR, "DB-LIVE-1.go"), "\n");
    await page.waitForSelector('tr[data-gap="DB-LIVE-1"][data-state="ended"]', { timeout: 30_000 });
    equal((await run.finished()).code, 3, "one agent failed: exit 3");
    await page.waitForFunction(
      `/outcomes: killed 1, shipped 2$/.test(document.getElementById("totals").textContent)`,
    );
    const ended = (await leaseRows(page)).get("DB-LIVE-1")!;
    equal(ended[2], "ended");
    equal(ended[10], "shipped");
    equal(ended[12], "1-db-live-1.out.log");
    // The charts: one bar per domain, effort and backend, as long as its ship rate.
    deepEqual(
      await page.$$eval(
        "#by-domain rect[data-key]",
        (r) => r.map((x) => [x.getAttribute("data-key"), x.getAttribute("width")]),
      ),
      [["api", "120"], ["db", "120"], ["ui", "0"]],
    );
    deepEqual(
      await page.$$eval(
        "#by-effort rect[data-key]",
        (r) => r.map((x) => x.getAttribute("data-key")),
      ),
      ["s"],
    );
    match(
      await page.$eval("#by-backend", (e) => e.textContent ?? ""),
      /^custom:.*67% of 3median \d+s$/,
    );
    // Provider errors are counted as the run reported them (a poll can fail and be retried).
    const providerErrors = (run.stderr().match(/^warning: PR provider /gm) ?? []).length;
    await page.waitForFunction(
      `/^1 run\\(s\\), \\d+ tick\\(s\\), ${providerErrors} provider error\\(s\\), 0 reflection\\(s\\) spooled$/` +
        `.test(document.getElementById("counters").textContent)`,
    );

    const metrics = parsePrometheus((await runProcess("curl", ["-sf", `${url}metrics`])).stdout);
    equal(metrics.get('chump_reflections_total{outcome="shipped"}'), 2);
    equal(metrics.get('chump_reflections_total{outcome="killed"}'), 1);
    equal(metrics.get("chump_agents_alive"), 0);
    assert(metrics.get("chump_ticks_total")! >= 1, "ticks are counted");
    equal(metrics.get("chump_provider_errors_total"), providerErrors);
    equal(metrics.get("chump_reflections_spooled"), 0);
    equal(metrics.get('chump_dispatch_duration_seconds_bucket{le="+Inf"}'), 3);
    equal(metrics.get("chump_dispatch_duration_seconds_count"), 3);
    const log = await runProcess("curl", ["-sf", `${url}api/log/1`]);
    match(log.stdout, /==> .*1-db-live-1\.err\.log <==/);
  } finally {
    equal(await stop(), 0, "Ctrl-C (SIGTERM) stops the dashboard cleanly");
  }
});

Deno.test("the dashboard in Chromium shows what dispatches cost: a cost cell per lease, the last 24 hours, dollars per shipped gap per arm; /metrics has the cost", async () => {
  await using s = await scratchRepo(backlogOf([["DC-1"], ["DC-2"], ["DC-3"]]));
  const bin = await fakeClaude(s.dir);
  const ran = await runMain(
    ["--repo-root", s.repo, "--no-dry-run", "--watch", "--pr-provider", "git", "--tick", "100ms"],
    {
      cwd: s.repo,
      env: {
        ...GIT_ID,
        PATH: `${bin}:${Deno.env.get("PATH")}`,
        CHUMP_DEMO_COST_USD: "0.3",
        CHUMP_DEMO_PLAN: "DC-3=fail",
      },
    },
  );
  equal(ran.code, 3, ran.stderr);
  const dash = await dashboardOf(s.repo);
  try {
    const { page, url } = dash;
    await page.waitForFunction(
      `/last 24 hours: \\$0\\.90/.test(document.getElementById("spend").textContent)`,
    );
    const rows = await leaseRows(page);
    deepEqual([...rows.keys()].sort(), ["DC-1", "DC-2", "DC-3"]);
    for (const cells of rows.values()) equal(cells[9], "$0.30");
    const arms = await page.$$eval(
      "#spend tbody tr",
      (trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent)),
    );
    // claude: 3 dispatches, 2 gaps shipped, $0.90 spent, $0.45 per shipped gap.
    deepEqual(arms, [["claude", "3", "2", "$0.90", "$0.45"]]);
    const metrics = parsePrometheus((await runProcess("curl", ["-sf", `${url}metrics`])).stdout);
    equal(
      metrics.get(
        'chump_cost_usd_total{backend="claude",model="claude-sonnet-4-5-20250929",outcome="shipped"}',
      ),
      0.6,
    );
    equal(
      metrics.get(
        'chump_tokens_total{backend="claude",model="claude-sonnet-4-5-20250929",outcome="killed",kind="input"}',
      ),
      12000,
    );
  } finally {
    equal(await dash.stop(), 0);
  }
});

Deno.test("the dashboard shows detached agents and who watches them", async () => {
  await using s = await scratchRepo(backlogOf([["DB-SHIP-1"], ["DB-HANG-2"]]));
  await using m = await marked();
  await shippedThenDetached(s, m);
  const { url, page, stop } = await dashboardOf(s.repo);
  try {
    await page.waitForSelector('tr[data-gap="DB-HANG-2"]');
    const cells = await leaseRows(page);
    deepEqual([...cells.keys()], ["DB-HANG-2", "DB-SHIP-1"]);
    deepEqual(cells.get("DB-SHIP-1")!.slice(2, 4), ["ended", "settled"]);
    deepEqual(cells.get("DB-HANG-2")!.slice(2, 4), ["detached", "unwatched"]);
    equal(cells.get("DB-HANG-2")![5], "yes", "its agent is alive");
    match(cells.get("DB-HANG-2")![7], /^\d+s$/, "how long it has been silent");
    equal(cells.get("DB-HANG-2")![12], "2-db-hang-2.out.log");
    match(
      await page.$eval("#totals", (e) => e.textContent ?? ""),
      /^2 lease\(s\): settled 1, unwatched 1; outcomes: shipped 1$/,
    );
    const reflections = JSON.parse(
      (await runProcess("curl", ["-sf", `${url}api/reflections`])).stdout,
    );
    deepEqual(reflections.map((r: { gapId: string; outcome: string }) => [r.gapId, r.outcome]), [[
      "DB-SHIP-1",
      "shipped",
    ]]);
  } finally {
    const code = await stop();
    await killMarked(m.mark);
    equal(code, 0);
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
    const port = await listening(server, /0\.0\.0\.0:(\d+)\//);
    const code = async (args: string[]) =>
      (await runProcess("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", ...args])).stdout;
    const base = `http://127.0.0.1:${port}`;
    equal(await code([`${base}/api/status`]), "401");
    equal(await code([`${base}/metrics`]), "401");
    equal(await code([`${base}/api/status?token=wrong-token-42`]), "401");
    equal(await code(["-H", `Authorization: Bearer ${token}`, `${base}/api/status`]), "200");
    equal(await code([`${base}/metrics?token=${token}`]), "200");
    equal(await code([`${base}/api/events`]), "401", "the event stream too");
    equal(await code([`${base}/api/log/1`]), "401");
    // The page passes its token on to its own requests, the event stream included.
    await using browser = await openBrowser();
    await browser.page.goto(`${base}/?token=${token}`);
    await browser.page.waitForFunction(
      `document.getElementById("totals").textContent === "0 lease(s): none; outcomes: none" &&
       document.getElementById("conn").textContent.startsWith("live")`,
    );
  } finally {
    await stopServer(server);
  }
});

/** A backlog file of the one gap `id` in `dir`. */
Deno.test("the dashboard's log panel shows the clicked lease's log under its title, even when another lease's log answers later", async () => {
  await using s = await scratchRepo(backlogOf([["DB-SHIP-1"], ["DB-HANG-2"]]));
  await using m = await marked();
  await shippedThenDetached(s, m);
  const server = startCli(["serve", "--repo-root", s.repo, "--port", "0"]);
  try {
    const url = await listening(server, /(http:\/\/127\.0\.0\.1:\d+\/)/);
    await using browser = await openBrowser();
    const page = browser.page;
    // The live lease's log (lease 2, shown first) is held back until lease 1's is on screen.
    await page.setRequestInterception(true);
    const held: HTTPRequest[] = [];
    page.on("request", (req) => {
      if (new URL(req.url()).pathname === "/api/log/2") held.push(req);
      else void req.continue();
    });
    await page.goto(url);
    await waitFor(() => held.length > 0, { what: "the page asking for lease 2's log" });
    // Every write to the log panel, with the title on screen when it was written.
    await page.evaluate(`
      globalThis.logWrites = [];
      new MutationObserver(() => logWrites.push(
        [document.getElementById("log-title").textContent, document.getElementById("log").textContent],
      )).observe(document.getElementById("log"), { childList: true, characterData: true, subtree: true });
    `);
    await clickRow(page, "DB-SHIP-1");
    await page.waitForFunction(
      `document.getElementById("log-title").textContent === "log of lease 1"`,
    );
    for (const req of held.splice(0)) {
      await req.respond({
        status: 200,
        contentType: "text/plain",
        body: "the late log of lease 2",
      });
    }
    // One more answer for lease 1 after the late ones, and its write seen.
    const before = await page.evaluate(`logWrites.length`) as number;
    await clickRow(page, "DB-SHIP-1");
    await page.waitForFunction(
      `logWrites.slice(${before}).some(([, text]) => text.includes("1-db-ship-1"))`,
    );
    const writes = await page.evaluate(`logWrites`) as string[][];
    deepEqual(writes.filter(([, text]) => text.includes("late log of lease 2")), []);
    equal(await page.$eval("#log-title", (e) => e.textContent), "log of lease 1");
    match(await page.$eval("#log", (e) => e.textContent ?? ""), /1-db-ship-1\.out\.log/);
  } finally {
    equal(await stopServer(server), 0);
    await killMarked(m.mark);
  }
});

/**
 * Lease 1 (DB-SHIP-1) shipped by a watching run; lease 2 (DB-HANG-2) dispatched by a run that
 * did not watch it, its agent alive and detached.
 */
async function shippedThenDetached(
  s: Awaited<ReturnType<typeof scratchRepo>>,
  m: Awaited<ReturnType<typeof marked>>,
): Promise<void> {
  const shipped = await orchestrate(s, ["--backlog", await gapFile(s.dir, "DB-SHIP-1")], m.env);
  equal(shipped.code, 0, shipped.stderr);
  const args = ["--repo-root", s.repo, "--no-dry-run", "--agent-cmd", demoAgentCmd()];
  const detached = await runMain([...args, "--backlog", await gapFile(s.dir, "DB-HANG-2")], {
    env: { ...GIT_ID, ...m.env },
  });
  equal(detached.code, 0, detached.stderr);
  await m.ready("DB-HANG-2");
}

async function gapFile(dir: string, id: string): Promise<string> {
  const path = join(dir, `${id}.yaml`);
  await Deno.writeTextFile(path, backlogOf([[id]]));
  return path;
}

Deno.test("logs prints an agent's output by gap or lease id; -f follows it (a header only when the file changes) until the agent ends, then says its exit code and exits with it", async () => {
  await using s = await scratchRepo(backlogOf([["LG-1"]]));
  // After the go: a line to stderr, then one to stdout, exit 4.
  await using m = await marked({ CHUMP_DEMO_PLAN: "LG-1=gate:say-both" });
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
  const follow = startCli(["logs", "1", "-f", "--repo-root", s.repo]);
  // The go only once -f has printed what there was (both headers): the rest comes by following.
  const reader = follow.stdout.getReader();
  let printed = "";
  while ((printed.match(/^==> /gm) ?? []).length < 2) {
    const chunk = await reader.read();
    if (chunk.done) break;
    printed += new TextDecoder().decode(chunk.value);
  }
  await Deno.writeTextFile(join(m.env.CHUMP_DEMO_READY_DIR, "LG-1.go"), "\n");
  for (;;) {
    const chunk = await reader.read();
    if (chunk.done) break;
    printed += new TextDecoder().decode(chunk.value);
  }
  const stderr = await new Response(follow.stderr).text();
  equal((await follow.status).code, 4, stderr);
  const lines = printed.trim().split("\n");
  deepEqual(lines, [
    `==> ${join(logs, "1-lg-1.out.log")} <==`,
    `==> ${join(logs, "1-lg-1.err.log")} <==`,
    "WARN: demo agent of LG-1 on stderr",
    `==> ${join(logs, "1-lg-1.out.log")} <==`,
    "demo agent of LG-1 on stdout",
    "agent ended (exit 4)",
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

Deno.test("serve draws the first view itself (a page without JavaScript shows the fleet), answers GET and HEAD only, and every answer carries CSP, X-Frame-Options and Referrer-Policy; the page runs under its policy without an error", async () => {
  await using s = await scratchRepo(backlogOf([["SR-SHIP-1"]]));
  await using m = await marked();
  equal((await orchestrate(s, [], m.env)).code, 0);
  const server = startCli(["serve", "--repo-root", s.repo, "--port", "0"]);
  try {
    const url = await listening(server, /(http:\/\/127\.0\.0\.1:\d+\/)/);
    const head = async (args: string[]) =>
      (await runProcess("curl", ["-s", "-o", "/dev/null", "-D", "-", ...args])).stdout;
    for (const path of ["", "api/status", "metrics", "app.js", "nowhere"]) {
      const h = await head([`${url}${path}`]);
      match(h, /^content-security-policy: default-src 'none'; script-src 'self'; /im, path);
      match(h, /^x-frame-options: DENY\r?$/im, path);
      match(h, /^referrer-policy: no-referrer\r?$/im, path);
    }
    const posted = await head(["-X", "POST", `${url}api/status`]);
    match(posted, /^HTTP\/1\.1 405 /);
    match(posted, /^allow: GET, HEAD\r?$/im);
    match(await head(["-X", "DELETE", url]), /^HTTP\/1\.1 405 /);
    const events = await head(["-I", "--max-time", "10", `${url}api/events`]);
    match(events, /^HTTP\/1\.1 200 /, "HEAD of the stream answers at once");
    match(events, /^content-type: text\/event-stream/im);
    for (const icon of ["favicon.ico", "favicon.svg"]) {
      const h = await head([`${url}${icon}`]);
      match(h, /^HTTP\/1\.1 200 /, icon);
      match(h, /^content-type: image\/svg\+xml/im, icon);
    }

    // Without JavaScript: the server's own view.
    await using plain = await openBrowser();
    await plain.page.setJavaScriptEnabled(false);
    await plain.page.goto(url);
    equal(
      await plain.page.$eval("#totals", (e) => e.textContent),
      "1 lease(s): settled 1; outcomes: shipped 1",
    );
    deepEqual((await leaseRows(plain.page)).get("SR-SHIP-1")!.slice(1, 4), [
      "SR-SHIP-1",
      "ended",
      "settled",
    ]);
    equal(await plain.page.$$eval("#by-domain rect[data-key]", (r) => r.length), 1);

    // With it, under the policy: live, and nothing refused.
    await using live = await openBrowser();
    const problems: string[] = [];
    live.page.on("console", (msg) => {
      if (msg.type() === "error") problems.push(msg.text());
    });
    live.page.on("pageerror", (e) => problems.push(String(e)));
    await live.page.goto(url);
    await live.page.waitForFunction(
      `document.getElementById("conn").textContent.startsWith("live")`,
    ).catch((e) => {
      throw new Error(`the page did not go live: ${problems.join(" | ") || e}`);
    });
    await clickRow(live.page, "SR-SHIP-1");
    await live.page.waitForFunction(
      `document.getElementById("log-title").textContent === "log of lease 1"`,
    );
    deepEqual(problems, []);
  } finally {
    await stopServer(server);
  }
});

Deno.test("serve caps its event streams (503 past --max-streams), answers /api/status while they are open, and gives a place back when a page leaves", async () => {
  await using s = await scratchRepo(backlogOf([["SC-1"]]));
  const server = startCli(["serve", "--repo-root", s.repo, "--port", "0", "--max-streams", "20"]);
  const open: ReadableStreamDefaultReader<Uint8Array>[] = [];
  try {
    const url = await listening(server, /(http:\/\/127\.0\.0\.1:\d+\/)/);
    /** A stream, read up to its first view; undefined with the refusal's status and text. */
    const stream = async () => {
      const r = await fetch(`${url}api/events`);
      if (r.status !== 200) return { status: r.status, text: await r.text() };
      const reader = r.body!.getReader();
      let text = "";
      while (!text.includes("event: view")) {
        const chunk = await reader.read();
        if (chunk.done) throw new Error(`the stream ended before its first view: ${text}`);
        text += new TextDecoder().decode(chunk.value);
      }
      open.push(reader);
      return { status: 200, text };
    };
    for (let i = 0; i < 20; i++) equal((await stream()).status, 200);
    const refused = await stream();
    equal(refused.status, 503);
    equal(
      refused.text,
      "503 too many live pages (20 event streams open; see --max-streams)\n",
    );
    const status = await fetch(`${url}api/status`);
    equal(status.status, 200, "the API answers while every stream is taken");
    equal((await status.json()).leases.length, 0);
    await open.pop()!.cancel();
    // The server notices the page left (its next send fails or the socket closes).
    await waitFor(async () => (await stream()).status === 200, { what: "a place given back" });
  } finally {
    for (const r of open) await r.cancel().catch(() => {});
    await stopServer(server);
  }
});

Deno.test("logs -f of an agent killed with its waiter (no exit status) ends too: one line, exit 1", async () => {
  await using s = await scratchRepo(backlogOf([["LK-1"]]));
  await using m = await marked({ CHUMP_DEMO_PLAN: "LK-1=hang" });
  const ran = await runMain(
    ["--repo-root", s.repo, "--no-dry-run", "--agent-cmd", demoAgentCmd()],
    { env: { ...GIT_ID, ...m.env } },
  );
  equal(ran.code, 0, ran.stderr);
  await m.ready("LK-1");
  const follow = startCli(["logs", "LK-1", "-f", "--repo-root", s.repo]);
  const reader = follow.stdout.getReader();
  let rest = new TextDecoder().decode((await reader.read()).value); // following now
  const group = leaseRowsOf(s.db)[0].pid!;
  Deno.kill(-group, "SIGKILL"); // the waiter goes with its agent: no status file
  for (let c = await reader.read(); !c.done; c = await reader.read()) {
    rest += new TextDecoder().decode(c.value);
  }
  const stderr = await new Response(follow.stderr).text();
  equal((await follow.status).code, 1, stderr);
  equal(
    rest.trim().split("\n").at(-1),
    "agent ended (its exit status was not recorded: its waiter was ended with it)",
  );
});
