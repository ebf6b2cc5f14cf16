/**
 * A throwaway PostgreSQL cluster for tests and benches: Debian's
 * `postgresql` binaries (`.ci/run` installs the package when it is missing),
 * `initdb` once per process (as the `postgres` user when this runs as root:
 * initdb refuses root), a copy of it per cluster in a temp dir, `pg_ctl start` on a free loopback port with trust
 * auth, and a URL to it; disposing of it stops the cluster and removes the
 * dir. Set `CHUMP_TEST_PG_URL` to use a running server instead.
 *
 * @module
 */
import { join } from "node:path";
import { runProcess } from "./process.ts";

/** A running cluster. */
export interface Cluster {
  url: string;
  /** Stop the server at once (`pg_ctl stop -m immediate`), as a crash or a restart would. */
  stop(): Promise<void>;
  /** Start it again on the same port. */
  start(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Where Debian keeps the server binaries (the newest version installed). */
async function binDir(): Promise<string> {
  const found = await runProcess("sh", [
    "-c",
    "ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1",
  ]);
  const dir = found.stdout.trim();
  if (!dir) {
    throw new Error(
      "no PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)",
    );
  }
  return dir;
}

/** A free loopback port, as the kernel hands one out. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

const ROOT = Deno.uid() === 0;

/** Run `program` as the server's user: `postgres` when this runs as root (initdb refuses root). */
function asServerUser(program: string, args: string[]) {
  return ROOT
    ? runProcess("runuser", ["-u", "postgres", "--", program, ...args])
    : runProcess(program, args);
}

let templateDir: Promise<string> | undefined;

/** This process's initdb'd data directory, made once and removed when the process ends. */
function template(bin: string): Promise<string> {
  templateDir ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "chump-pg-template-" });
    globalThis.addEventListener("unload", () => {
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch {
        // gone already
      }
    });
    if (ROOT) await runProcess("chown", ["postgres", dir]);
    const data = join(dir, "data");
    const init = await asServerUser(join(bin, "initdb"), [
      "-D",
      data,
      "-A",
      "trust",
      "-U",
      "chump",
      "--no-sync",
    ]);
    if (init.code !== 0) {
      throw new Error(`initdb failed: ${init.stderr.trim().split("\n").at(-1)}`);
    }
    return data;
  })();
  return templateDir;
}

/**
 * Start a throwaway cluster (or use `CHUMP_TEST_PG_URL`).
 *
 * @example
 * ```ts ignore
 * await using pg = await throwawayCluster();
 * console.log(pg.url); // postgres://chump@127.0.0.1:40123/postgres
 * ```
 */
export async function throwawayCluster(): Promise<Cluster> {
  const given = Deno.env.get("CHUMP_TEST_PG_URL");
  if (given) {
    const cannot = () => Promise.reject(new Error("CHUMP_TEST_PG_URL: cannot stop a given server"));
    return { url: given, stop: cannot, start: cannot, [Symbol.asyncDispose]: async () => {} };
  }
  const bin = await binDir();
  const dir = await Deno.makeTempDir({ prefix: "chump-pg-" });
  const as = (program: string, args: string[]) => asServerUser(join(bin, program), args);
  if (ROOT) await runProcess("chown", ["postgres", dir]);
  const data = join(dir, "data");
  // A copy of this process's one initdb: a cluster costs a copy, not an initdb, per test.
  const copied = await asServerUser("cp", ["-a", await template(bin), data]);
  if (copied.code !== 0) throw new Error(`cp of the template failed: ${copied.stderr.trim()}`);
  const port = freePort();
  const start = async () => {
    const started = await as("pg_ctl", [
      "-D",
      data,
      "-l",
      join(dir, "server.log"),
      "-o",
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`,
      "-w",
      "start",
    ]);
    if (started.code !== 0) {
      const log = await Deno.readTextFile(join(dir, "server.log")).catch(() => "");
      throw new Error(`pg_ctl start failed: ${(started.stderr + log).trim().split("\n").at(-1)}`);
    }
  };
  const stop = async () => {
    await as("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]);
  };
  await start();
  return {
    url: `postgres://chump@127.0.0.1:${port}/postgres`,
    stop,
    start,
    async [Symbol.asyncDispose]() {
      await stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
