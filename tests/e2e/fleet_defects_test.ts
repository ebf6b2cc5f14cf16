/**
 * What an operator hit with several hosts on one PostgreSQL ledger (a real
 * throwaway cluster, real orchestrators and agents): a host that waits for
 * a fleet slot keeps waiting while gaps are open; a ledger that does not
 * answer (a listener that never speaks, a server that goes mute after the
 * startup, a network that drops every SYN) ends each command in one line.
 */
import { deepEqual, equal, match, ok as assert } from "node:assert/strict";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { backlogOf, marked, orchestrateInBackground, scratchRepo, watchArgs } from "../_e2e.ts";
import { GIT_ID } from "../../testkit/repo.ts";
import { type Ran, ROOT, runProcess, taskArgs } from "../_helpers.ts";
import { dispatchedIn, ledgerRows, machines, sorted } from "../_fleet.ts";
import { throwawayCluster } from "../../testkit/pg.ts";

Deno.test("a host that waited for a fleet slot and then found its gap held by another host goes on to the next gaps instead of quitting", async () => {
  await using pg = await throwawayCluster();
  const ids = Array.from({ length: 8 }, (_, i) => `FQ-${i + 1}`);
  await using s = await scratchRepo(backlogOf(ids.map((id) => [id])));
  const [a, b] = await machines(s, 2);
  const plan = [
    "FQ-1=sleep:1000:ship", // ends first: host a refills with the gap host b waits for
    "FQ-2=sleep:6000:ship",
    "FQ-3=sleep:6000:ship",
    ...ids.slice(3).map((id) => `${id}=sleep:200:ship`),
  ].join(",");
  const fleet = ["--ledger", pg.url, "--fleet-max", "2", "--max-parallel", "2"];
  // Host a: three dispatches, then no more (it leaves the rest to host b).
  const hostA = orchestrateInBackground(a, [...fleet, "--host-id", "a", "--max-total", "3"], {
    CHUMP_DEMO_PLAN: plan,
  });
  await hostA.waitFor(/^DISPATCHED: FQ-2 /m);
  // Host b finds the fleet full; its gap (FQ-3) goes to host a meanwhile; it must go on.
  const hostB = orchestrateInBackground(b, [...fleet, "--host-id", "b", "--tick", "2s"], {
    CHUMP_DEMO_PLAN: plan,
  });
  const [ranA, ranB] = await Promise.all([hostA.finished(), hostB.finished()]);
  equal(ranA.code, 0, ranA.stderr);
  equal(ranB.code, 0, ranB.stderr);
  assert(ranB.stdout.includes("FLEET-FULL: "), ranB.stdout);
  const byA = dispatchedIn(ranA.stdout);
  const byB = dispatchedIn(ranB.stdout);
  deepEqual(sorted(byA), ["FQ-1", "FQ-2", "FQ-3"]);
  deepEqual(sorted(byB), ids.slice(3), `host b did the rest:\n${ranB.stdout}\n${ranB.stderr}`);
});

/** A fake `gh` on PATH answering from `prs` (tests/fake_gh): its environment. */
async function fakeGh(
  dir: string,
  prs: Record<string, unknown[]>,
): Promise<Record<string, string>> {
  const state = join(dir, "gh-state.json");
  await Deno.writeTextFile(state, JSON.stringify(prs));
  const fakeDir = fileURLToPath(new URL("../fake_gh", import.meta.url));
  const path = [fakeDir, dirname(Deno.execPath()), Deno.env.get("PATH") ?? ""].join(delimiter);
  return { PATH: path, FAKE_GH_STATE: state };
}

/** Run the CLI (the dispatch task's entry) to its end; killed after 90 s so a hang fails the test. */
async function cli(
  args: string[],
  prefix: string[] = [],
  env: Record<string, string> = {},
): Promise<Ran & { killed: boolean }> {
  const child = new Deno.Command(prefix[0] ?? Deno.execPath(), {
    args: [
      ...prefix.slice(1),
      ...(prefix.length > 0 ? [Deno.execPath()] : []),
      ...taskArgs("dispatch"),
      ...args,
    ],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...GIT_ID, ...env },
    stdout: "piped",
    stderr: "piped",
    detached: true,
  }).spawn();
  let killed = false;
  const watchdog = setTimeout(() => {
    killed = true;
    Deno.kill(-child.pid, "SIGKILL"); // its whole group: a relaunched run holds the pipes too
  }, 90_000);
  const out = await child.output();
  clearTimeout(watchdog);
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr), killed };
}

/** A loopback server that answers a PostgreSQL client up to `upTo`, then never again. */
function silentServer(upTo: "nothing" | "startup"): { port: number } & AsyncDisposable {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  // AuthenticationOk, then ReadyForQuery (idle): a trust-auth startup, as a server sends it.
  const ready = new Uint8Array([0x52, 0, 0, 0, 8, 0, 0, 0, 0, 0x5a, 0, 0, 0, 5, 0x49]);
  (async () => {
    for await (const c of listener) {
      conns.push(c);
      if (upTo === "nothing") continue;
      (async () => {
        const buf = new Uint8Array(8192);
        if (await c.read(buf) === null) return;
        await c.write(ready);
        while (await c.read(buf) !== null) { /* every query swallowed, none answered */ }
      })().catch(() => {});
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    [Symbol.asyncDispose]: () => {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* gone */ }
      }
      return Promise.resolve();
    },
  };
}

/** `status --ledger` and a run against `url` (through `prefix`): each ends in one line, exit 1. */
async function endsInOneLine(url: string, prefix: string[] = []): Promise<void> {
  await using s = await scratchRepo(backlogOf([["SL-1"]]));
  const [status, run] = await Promise.all([
    cli(["status", "--ledger", url], prefix),
    cli(watchArgs(s, ["--ledger", url]), prefix),
  ]);
  equal(status.killed, false, `status --ledger ${url} came back`);
  equal(status.code, 1, status.stderr);
  equal(status.stderr.trim().split("\n").length, 1, status.stderr);
  match(
    status.stderr,
    /^chump-orchestrator: error: PostgreSQL ledger \(postgres:\/\/chump:\*\*\*@/,
  );
  equal(run.killed, false, `a run with --ledger ${url} came back`);
  equal(run.code, 1, run.stderr);
  equal(dispatchedIn(run.stdout).length, 0);
  match(run.stderr, /PostgreSQL ledger .*: cannot open it: /);
}

/** A network namespace of the test's own whose loopback drops every SYN to port 5432. */
async function droppingNamespace(): Promise<{ prefix: string[] } & AsyncDisposable> {
  const ns = `chump-${crypto.randomUUID().slice(0, 8)}`;
  const added = await runProcess("ip", ["netns", "add", ns]);
  equal(added.code, 0, `ip netns add (needs root and iproute2): ${added.stderr}`);
  const inNs = (cmd: string[]) => runProcess("ip", ["netns", "exec", ns, ...cmd]);
  const rules = [
    ["ip", "link", "set", "lo", "up"],
    ["nft", "add", "table", "inet", "chump"],
    ["nft", "add", "chain", "inet", "chump", "in", "{ type filter hook input priority 0; }"],
    ["nft", "add", "rule", "inet", "chump", "in", "tcp", "dport", "5432", "drop"],
  ];
  for (const rule of rules) {
    const r = await inNs(rule);
    equal(r.code, 0, `${rule.join(" ")} (nft needs nftables): ${r.stderr}`);
  }
  return {
    prefix: ["ip", "netns", "exec", ns],
    [Symbol.asyncDispose]: async () => {
      await runProcess("ip", ["netns", "del", ns]);
    },
  };
}

Deno.test("a ledger that does not answer (a listener that never speaks, a server mute after the startup, a network dropping every SYN): status --ledger and a run each end in one line, exit 1", async () => {
  await using silent = silentServer("nothing");
  await using mute = silentServer("startup");
  await using dropping = await droppingNamespace();
  await Promise.all([
    endsInOneLine(`postgres://chump:secret@127.0.0.1:${silent.port}/chump`),
    endsInOneLine(`postgres://chump:secret@127.0.0.1:${mute.port}/chump`),
    endsInOneLine("postgres://chump:secret@127.0.0.1:5432/chump", dropping.prefix),
  ]);
});

Deno.test("a run whose agents end while the ledger is down waits, bounded, for it to come back and ends its leases there: nothing is left looking live", async () => {
  await using pg = await throwawayCluster();
  const ids = ["XW-1", "XW-2"];
  await using s = await scratchRepo(backlogOf(ids.map((id) => [id])));
  const plan = ids.map((id) => `${id}=sleep:1500:ship`).join(",");
  const run = orchestrateInBackground(
    s,
    // The run waits for the ledger up to --lease-ttl at its end: 45 s leaves a loaded machine
    // room to restart the server after the 13 s below.
    ["--ledger", pg.url, "--host-id", "xw", "--lease-ttl", "45s", "--max-parallel", "2"],
    { CHUMP_DEMO_PLAN: plan },
  );
  await run.waitFor(/^DISPATCHED: /, 2);
  await pg.stop();
  // Both outcomes came while it was down (they wait in the spool) and the run is at its end. The
  // server stays away longer than one exchange may take (10 s: the run's last heartbeat fails),
  // then comes back while the run waits for it.
  await run.waitFor(/^OUTCOME: /, 2);
  await new Promise((r) => setTimeout(r, 13_000));
  await pg.start();
  const ran = await run.finished();
  equal(ran.code, 0, `${ran.stdout}\n${ran.stderr}`);
  assert(!ran.stderr.includes("SHARED LEDGER NOT UPDATED"), ran.stderr);
  match(ran.stderr, /note: \d spooled reflection\(s\) replayed to the shared ledger/);
  const rows = await ledgerRows(pg.url);
  deepEqual(sorted(rows.reflections), ids, "both outcomes in the ledger");
  deepEqual(rows.leases.filter((l) => l.state !== "ended"), [], "no lease left looking live");
});

Deno.test("a ledger still down when a run ends: it says so loudly, naming the spool; the next run replays and says exactly what it wrote", async () => {
  await using pg = await throwawayCluster();
  const ids = ["XD-1"];
  await using s = await scratchRepo(backlogOf(ids.map((id) => [id])));
  const run = orchestrateInBackground(
    s,
    ["--ledger", pg.url, "--host-id", "xd", "--lease-ttl", "2s"],
    { CHUMP_DEMO_PLAN: "XD-1=sleep:1000:ship" },
  );
  await run.waitFor(/^DISPATCHED: /);
  await pg.stop();
  const ran = await run.finished();
  equal(ran.code, 0, `${ran.stdout}\n${ran.stderr}`);
  match(
    ran.stderr,
    /^warning: SHARED LEDGER NOT UPDATED: 1 outcome\(s\) of this host wait in \S+\.pg-spool\.jsonl, /m,
  );
  await pg.start();
  const next = await cli(watchArgs(s, ["--ledger", pg.url, "--host-id", "xd"]));
  equal(next.code, 0, next.stderr);
  match(next.stderr, /^note: 1 spooled reflection\(s\) replayed to the shared ledger$/m);
  deepEqual((await ledgerRows(pg.url)).reflections, ids);
});

Deno.test("a host taking over a lease first asks the PR provider: a merged PR is recorded as shipped and not dispatched again; a branch without one is", async () => {
  await using pg = await throwawayCluster();
  const ids = ["TB-1", "TB-2"];
  await using s = await scratchRepo(backlogOf(ids.map((id) => [id])));
  const [a, b] = await machines(s, 2);
  await using m = await marked({ CHUMP_DEMO_PLAN: "TB-1=hang,TB-2=hang" });
  const ledger = ["--ledger", pg.url, "--lease-ttl", "1s"];
  const owner = orchestrateInBackground(
    a,
    [...ledger, "--host-id", "a", "--max-parallel", "2"],
    m.env,
  );
  await owner.waitFor(/^DISPATCHED: /, 2);
  for (const id of ids) await m.ready(id);
  owner.signal("SIGKILL"); // host a is gone; its agents run on where nobody sees them
  await owner.finished();
  // Host a's agent of TB-1 had its PR merged before it went silent; TB-2's opened none.
  const later = new Date(Date.now() + 3_600_000).toISOString();
  const gh = await fakeGh(s.dir, {
    "claude/tb-1": [{ number: 7, state: "MERGED", createdAt: later, updatedAt: later }],
  });
  const env = { ...gh, CHUMP_DEMO_PLAN: "TB-2=fail" };
  const outs: string[] = [];
  for (
    let i = 0;
    i < 60 &&
    !/TAKEOVER: TB-1 [\s\S]*TAKEOVER: TB-2 |TAKEOVER: TB-2 [\s\S]*TAKEOVER: TB-1 /.test(
      outs.join("\n"),
    );
    i++
  ) {
    const ran = await cli(
      watchArgs(b, [...ledger, "--host-id", "b", "--take-over-after", "1s", "--pr-provider", "gh"]),
      [],
      env,
    );
    outs.push(ran.stdout);
  }
  const out = outs.join("\n");
  deepEqual(dispatchedIn(out), ["TB-2"], out);
  match(out, /^WATCHING: TB-1: a's dispatch left PR #7 merged; /m);
  match(out, /^OUTCOME: TB-1 shipped duration_s=\d+ pr=#7$/m);
  const rows = await ledgerRows(pg.url);
  assert(rows.reflections.includes("TB-1"), "its outcome is in the ledger");
  equal(rows.leases.filter((l) => l.gap === "TB-1" && l.outcome === "shipped").length, 1);
});
