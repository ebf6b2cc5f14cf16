/**
 * `logs GAP-ID|LEASE-ID [-f] [--lines N]`: an agent's output, from the files
 * its waiter writes (process/waiter.ts): the last lines of its stdout and
 * stderr files, each under a `==> path <==` header as `tail` prints several
 * files; with `-f`, then every new line as it comes (a header whenever the
 * file changes), until the agent ended and everything was printed, or
 * Ctrl-C. A gap id means its newest dispatch. Read-only.
 *
 * @module
 */
import { EXIT, type Io } from "../cli/io.ts";
import { stopOnSignals } from "../process/interrupt.ts";
import { type LogsOptions, PROGRAM } from "../cli/parse.ts";
import { resolvePaths } from "../cli/paths.ts";
import { FOLLOW_MS } from "../process/follow.ts";
import { agentFiles, readStatus } from "../process/waiter.ts";
import { type Lease, openLedgerIfExists } from "../store/ledger.ts";
import { sleep } from "../util/sleep.ts";

/** Print (and follow) one dispatch's output; returns the exit code. */
export async function runLogs(options: LogsOptions, io: Io): Promise<number> {
  const { db } = await resolvePaths(options);
  const lease = await findLease(db, options.target);
  if (typeof lease === "string") {
    io.err(`${PROGRAM}: error: ${lease}`);
    return EXIT.usage;
  }
  if (lease.logBase === null) {
    io.err(
      `${PROGRAM}: error: lease ${lease.id} (${lease.gapId}) kept no log files ` +
        "(dispatched by an older version, or its agent never started)",
    );
    return EXIT.failure;
  }
  const files = agentFiles(lease.logBase);
  const printer = linePrinter(io);
  const offsets = new Map<string, number>();
  for (const path of [files.out, files.err]) {
    const { lines, end } = await lastLines(path, options.lines);
    printer.header(path);
    for (const line of lines) io.out(line);
    offsets.set(path, end);
  }
  if (!options.follow) return EXIT.ok;
  using stop = stopOnSignals();
  while (!stop.signal.aborted) {
    // Read the status first: once it is there, what follows is the last of the output.
    const ended = (await readStatus(files)) !== undefined;
    for (const path of [files.out, files.err]) {
      const { text, end } = await readFrom(path, offsets.get(path) ?? 0);
      offsets.set(path, end);
      if (text !== "") printer.text(path, text);
    }
    if (ended) break;
    await sleep(FOLLOW_MS, stop.signal);
  }
  printer.flush();
  return EXIT.ok;
}

/** The lease `target` names (digits: a lease id; else the gap's newest), or why none. */
export async function findLease(db: string, target: string): Promise<Lease | string> {
  const opened = openLedgerIfExists(db);
  if (!opened.ok) return opened.error;
  if (!opened.value) return `no dispatches recorded in ${db}`;
  try {
    const all = await opened.value.list(Number.MAX_SAFE_INTEGER);
    if (!all.ok) return all.error;
    const byId = /^\d+$/.test(target) ? all.value.find((l) => l.id === Number(target)) : undefined;
    const found = byId ?? all.value.find((l) => l.gapId === target);
    return found ?? `no dispatch of '${target}' (a gap id or a lease id) in ${db}`;
  } finally {
    opened.value.close();
  }
}

/** Prints whole lines under `==> path <==` headers, a new header when the file changes. */
function linePrinter(io: Io) {
  let current = "";
  const partial = new Map<string, string>();
  return {
    header(path: string) {
      io.out(`==> ${path} <==`);
      current = path;
    },
    text(path: string, text: string) {
      const lines = ((partial.get(path) ?? "") + text).split("\n");
      partial.set(path, lines.pop()!);
      if (lines.length === 0) return;
      if (path !== current) this.header(path);
      for (const line of lines) io.out(line);
    },
    flush() {
      for (const [path, rest] of partial) {
        if (rest === "") continue;
        if (path !== current) this.header(path);
        io.out(rest);
      }
      partial.clear();
    },
  };
}

/** Longest tail read when looking for the last lines of a file. */
const MAX_TAIL_BYTES = 4 << 20;

/**
 * The last `n` lines of `path` (read from at most its last `windowBytes`,
 * default 4 MiB) and its size when read; none when it does not exist yet.
 *
 * @example
 * ```ts
 * await lastLines("/nonexistent", 10); // { lines: [], end: 0 }
 * ```
 */
export async function lastLines(
  path: string,
  n: number,
  windowBytes = MAX_TAIL_BYTES,
): Promise<{ lines: string[]; end: number }> {
  let size: number;
  try {
    size = (await Deno.stat(path)).size;
  } catch {
    return { lines: [], end: 0 };
  }
  const start = Math.max(0, size - windowBytes);
  const { text } = await readFrom(path, start, size);
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  if (start > 0) lines.shift(); // a line cut by the window
  return { lines: n === 0 ? [] : lines.slice(-n), end: size };
}

/** The text of `path` from `offset` (to `until`, or its end), and where it stopped. */
async function readFrom(
  path: string,
  offset: number,
  until?: number,
): Promise<{ text: string; end: number }> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch {
    return { text: "", end: offset };
  }
  try {
    const size = until ?? (await file.stat()).size;
    if (size <= offset) return { text: "", end: size < offset ? 0 : offset };
    await file.seek(offset, Deno.SeekMode.Start);
    const buf = new Uint8Array(size - offset);
    let filled = 0;
    while (filled < buf.length) {
      const got = await file.read(buf.subarray(filled));
      if (got === null) break;
      filled += got;
    }
    return { text: new TextDecoder().decode(buf.subarray(0, filled)), end: offset + filled };
  } finally {
    file.close();
  }
}
