/**
 * The spool: reflections the DB could not take, one JSON line each, in
 * `<db>.spool.jsonl` (or a file in the temp dir named after the DB), and
 * their import into the DB by the next run.
 *
 * Spool appends hold an advisory lock (flock) on the spool file, and the
 * importer replaces the file atomically under that lock, so rows appended
 * while an import runs are never lost. Importing is idempotent: a row that is
 * already in the DB (same goal, outcome, notes and time) is not inserted
 * twice, so a crash between an insert and the spool rewrite costs nothing.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { dirname, join } from "../util/path.ts";
import { tempDir } from "../util/env.ts";
import { errorMessage } from "../util/result.ts";
import { sleep } from "../util/sleep.ts";
import { controlsToSpaces } from "../util/text.ts";
import { absolute, LOCK_WAIT_MS, openStore, type Store } from "./connection.ts";
import { recordOutcome } from "./outcome.ts";
import { type DispatchReflection, type Outcome, OUTCOMES } from "./reflection.ts";

/** Where a DB's spool is, and how the import uses the DB. */
export interface SpoolOptions {
  /** Total time to keep retrying a locked DB (default 5000 ms). */
  lockWaitMs?: number;
  /** Where rows the DB cannot take go; default `<db>.spool.jsonl`. */
  spoolPath?: string;
  /** Fallback spool when spoolPath is not writable; default in the temp dir, named after the DB. */
  fallbackSpoolPath?: string;
  /** The DB's connection to use (default: one opened for the import, and closed after it). */
  store?: Store;
}

/** Attempts to append to a spool file an importer keeps replacing, before giving up on it. */
const SPOOL_APPEND_ATTEMPTS = 20;

/**
 * The two spool files of a DB: `<db>.spool.jsonl` and
 * `<tmpdir>/chump-orchestrator-spool-<8 hex of sha256(absolute db path)>.jsonl`,
 * unless the options name them.
 *
 * @example
 * ```ts
 * spoolPaths("/repo/sessions/chump_memory.db").spoolPath;
 * // "/repo/sessions/chump_memory.db.spool.jsonl"
 * ```
 */
export function spoolPaths(
  dbPath: string,
  options: Pick<SpoolOptions, "spoolPath" | "fallbackSpoolPath"> = {},
): { spoolPath: string; fallbackSpoolPath: string } {
  const {
    spoolPath = `${dbPath}.spool.jsonl`,
    fallbackSpoolPath = join(
      tempDir(),
      `chump-orchestrator-spool-${
        createHash("sha256").update(absolute(dbPath)).digest("hex").slice(0, 8)
      }.jsonl`,
    ),
  } = options;
  return { spoolPath, fallbackSpoolPath };
}

/**
 * Move spooled rows (from both spool locations) into the DB, each in its own
 * transaction with the end of its lease (a spooled row carries its lease
 * id), keeping their original time; rows that fail stay spooled, and so do
 * their leases.
 *
 * Rows in the fallback spool (shared temp dir) are imported only when they
 * name this DB (others are left there and counted as `otherDb`); rows in
 * `spoolPath` always are. Malformed lines are moved to `<spool>.bad`. A spool
 * left empty is deleted. On a lock that outlasts `lockWaitMs` the import
 * stops and the remaining rows stay spooled. Never throws: a spool that cannot
 * be read or rewritten is left as it was and named in `errors`.
 *
 * @param dbPath the reflection DB
 * @param options the spool's paths (the writer's), the lock wait, the connection
 * @returns rows imported, this DB's rows still spooled, other DBs' rows left
 * alone, malformed lines set aside, the spool files that existed, one line
 * per spool that could not be processed, and the leases the import ended
 *
 * @example
 * ```ts
 * const dir = Deno.makeTempDirSync();
 * const result = await importSpool(`${dir}/chump_memory.db`, {
 *   fallbackSpoolPath: `${dir}/fallback.jsonl`,
 * });
 * // { imported: 0, left: 0, otherDb: 0, bad: 0, paths: [], errors: [], leasesEnded: [] }
 * ```
 */
export async function importSpool(
  dbPath: string,
  options: SpoolOptions = {},
): Promise<SpoolImport> {
  const { lockWaitMs = LOCK_WAIT_MS } = options;
  const total: SpoolImport = {
    imported: 0,
    left: 0,
    otherDb: 0,
    bad: 0,
    paths: [],
    errors: [],
    leasesEnded: [],
  };
  let paths: { spoolPath: string; fallbackSpoolPath: string };
  try {
    paths = spoolPaths(dbPath, options);
  } catch (e) {
    total.errors.push(`no spool path: ${controlsToSpaces(errorMessage(e))}`);
    return total;
  }
  const { spoolPath, fallbackSpoolPath } = paths;
  const db = absolute(dbPath);
  const store = options.store ?? openStore(dbPath);
  let blocked = false;
  try {
    for (const path of unique([spoolPath, fallbackSpoolPath])) {
      const onlyOwnRows = path !== spoolPath;
      let counts;
      try {
        counts = await rewriteSpool(path, async (line) => {
          const row = parseSpoolLine(line);
          if (row === undefined) return "bad";
          if (onlyOwnRows && row.db !== db) return "foreign";
          if (blocked) return "keep";
          const done = await store.run(
            (c) =>
              recordOutcome(c, row.reflection, { createdAt: row.createdAt, skipIfPresent: true }),
            { lockWaitMs, durable: true },
          );
          if (done.ok) {
            // "superseded": its dispatch was recorded by an adopter; not written twice.
            if (done.value === true) total.leasesEnded.push(row.reflection.leaseId!);
            return "drop";
          }
          if (done.locked) blocked = true;
          return "keep";
        });
      } catch (e) {
        total.paths.push(path);
        total.errors.push(`${path}: ${controlsToSpaces(errorMessage(e))}`);
        continue;
      }
      if (counts === undefined) continue;
      total.paths.push(path);
      total.imported += counts.drop;
      total.left += counts.keep;
      total.otherDb += counts.foreign;
      total.bad += counts.bad;
    }
  } finally {
    if (options.store === undefined) store.close();
  }
  return total;
}

/** What {@linkcode importSpool} did. */
export interface SpoolImport {
  /** Rows moved from a spool into the DB (including ones found already there). */
  imported: number;
  /** This DB's rows still spooled (the DB refused them). */
  left: number;
  /** Rows of other DBs in the shared fallback spool, left alone. */
  otherDb: number;
  /** Malformed lines moved to `<spool>.bad`. */
  bad: number;
  /** The spool files that existed. */
  paths: string[];
  /** One line per spool that could not be read or rewritten (left as it was). */
  errors: string[];
  /** Leases ended by the import, each with its row (in the row's transaction). */
  leasesEnded: number[];
}

/**
 * Now, as SQLite's `datetime('now')` writes it (UTC, `YYYY-MM-DD HH:MM:SS`).
 *
 * @example
 * ```ts
 * /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/.test(sqliteNow()); // true
 * ```
 */
export function sqliteNow(): string {
  return new Date().toISOString().slice(0, 19).replace("T", " ");
}

/**
 * The paths without repeats, in order.
 *
 * @example
 * ```ts
 * unique(["/a", "/b", "/a"]); // ["/a", "/b"]
 * ```
 */
export function unique(paths: string[]): string[] {
  return [...new Set(paths)];
}

// --- the spool ------------------------------------------------------------

/**
 * A reflection as one JSON line: its fields, the time it failed, the DB it was meant for.
 *
 * @example
 * ```ts
 * spoolLine(
 *   { gapId: "A-1", effort: "s", domain: "a", outcome: "killed", durationS: 3,
 *     parallelSiblings: 0, notes: "exit code 1", leaseId: 7 },
 *   "2026-04-19 10:00:00",
 *   "/repo/sessions/chump_memory.db",
 * ); // '{"gapId":"A-1",...,"leaseId":7,"created_at":"2026-04-19 10:00:00","db":"/repo/..."}'
 * ```
 */
export function spoolLine(r: DispatchReflection, createdAt: string, db: string): string {
  return JSON.stringify({
    gapId: r.gapId,
    effort: r.effort,
    domain: r.domain,
    outcome: r.outcome,
    durationS: r.durationS,
    parallelSiblings: r.parallelSiblings,
    prNumber: r.prNumber ?? null,
    notes: r.notes,
    leaseId: r.leaseId ?? null,
    ...(r.leaseGeneration === undefined ? {} : { leaseGeneration: r.leaseGeneration }),
    ...(r.sharedLeaseId === undefined ? {} : { sharedLeaseId: r.sharedLeaseId }),
    created_at: createdAt,
    db,
  });
}

/**
 * A spool line back as a reflection, or `undefined` when it is not one.
 *
 * @example
 * ```ts
 * parseSpoolLine("not json {"); // undefined
 * ```
 */
export function parseSpoolLine(
  line: string,
): { reflection: DispatchReflection; createdAt: string; db: string } | undefined {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
  const strings = ["gapId", "effort", "domain", "notes", "created_at", "db"];
  if (!strings.every((k) => typeof v[k] === "string")) return undefined;
  if (!OUTCOMES.includes(v.outcome as Outcome)) return undefined;
  if (typeof v.durationS !== "number" || typeof v.parallelSiblings !== "number") return undefined;
  if (v.prNumber !== undefined && v.prNumber !== null && typeof v.prNumber !== "number") {
    return undefined;
  }
  const leaseId = typeof v.leaseId === "number" && Number.isInteger(v.leaseId)
    ? v.leaseId
    : undefined;
  const leaseGeneration = typeof v.leaseGeneration === "number" &&
      Number.isInteger(v.leaseGeneration)
    ? v.leaseGeneration
    : undefined;
  const sharedLeaseId = typeof v.sharedLeaseId === "number" && Number.isInteger(v.sharedLeaseId)
    ? v.sharedLeaseId
    : undefined;
  const createdAt = v.created_at as string;
  if (!/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/.test(createdAt)) return undefined;
  return {
    reflection: {
      gapId: v.gapId as string,
      effort: v.effort as string,
      domain: v.domain as string,
      outcome: v.outcome as Outcome,
      durationS: v.durationS,
      parallelSiblings: v.parallelSiblings,
      prNumber: typeof v.prNumber === "number" ? v.prNumber : undefined,
      notes: v.notes as string,
      leaseId,
      leaseGeneration,
      ...(sharedLeaseId === undefined ? {} : { sharedLeaseId }),
    },
    createdAt,
    db: v.db as string,
  };
}

/** Open `path` and take its advisory lock, retrying while an importer replaces the file. */
async function lockedOpen(
  path: string,
  options: Deno.OpenOptions,
): Promise<Deno.FsFile> {
  for (let attempt = 1;; attempt++) {
    const file = await Deno.open(path, options);
    try {
      await file.lock(true);
      if (await isCurrent(file, path)) return file;
    } catch (e) {
      file.close();
      throw e;
    }
    file.close();
    if (attempt >= SPOOL_APPEND_ATTEMPTS) throw new Error(`${path} keeps being replaced`);
    await sleep(attempt);
  }
}

/** Whether the open file is still the one at `path` (not replaced or removed meanwhile). */
async function isCurrent(file: Deno.FsFile, path: string): Promise<boolean> {
  const mine = await file.stat();
  if (mine.ino === null) return true; // no inodes (Windows): nothing to compare
  try {
    const now = await Deno.stat(path);
    return now.ino === mine.ino && now.dev === mine.dev;
  } catch {
    return false;
  }
}

async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  let done = 0;
  while (done < data.length) done += await file.write(data.subarray(done));
}

/**
 * Append one line to a spool, under its lock (mode 0600: notes may hold secrets).
 *
 * @example
 * ```ts ignore
 * await appendToSpool("/repo/sessions/chump_memory.db.spool.jsonl", spoolLine(r, sqliteNow(), db));
 * ```
 */
export async function appendToSpool(path: string, line: string): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const file = await lockedOpen(path, { append: true, create: true, mode: 0o600 });
  try {
    await writeAll(file, new TextEncoder().encode(line + "\n"));
  } finally {
    file.close();
  }
}

/** What becomes of one spool line. */
type Verdict = "drop" | "keep" | "foreign" | "bad";

/**
 * Decide each line of a spool under its lock (`drop` it, `keep` it or leave a
 * `foreign` one, or set it aside as `bad`), then replace the file atomically
 * with the lines kept, or remove it when none are left. `undefined` when the
 * spool does not exist.
 */
export async function rewriteSpool(
  path: string,
  decide: (line: string) => Promise<Verdict>,
): Promise<Record<Verdict, number> | undefined> {
  let file: Deno.FsFile;
  try {
    file = await lockedOpen(path, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  try {
    const lines = (await Deno.readTextFile(path)).split("\n").filter((l) => l.trim() !== "");
    const counts: Record<Verdict, number> = { drop: 0, keep: 0, foreign: 0, bad: 0 };
    const kept: string[] = [];
    const bad: string[] = [];
    for (const line of lines) {
      const verdict = await decide(line);
      counts[verdict]++;
      if (verdict === "keep" || verdict === "foreign") kept.push(line);
      if (verdict === "bad") bad.push(line);
    }
    if (bad.length > 0) {
      await Deno.writeTextFile(`${path}.bad`, bad.map((l) => l + "\n").join(""), {
        append: true,
        mode: 0o600,
      });
    }
    if (lines.length === 0) {
      // Nothing to do. An empty spool may be one a writer has just created
      // and is about to lock: removing it would only make that writer retry.
    } else if (kept.length === 0) {
      await Deno.remove(path);
    } else if (kept.length < lines.length) {
      const tmp = `${path}.${Deno.pid}.tmp`;
      await Deno.writeTextFile(tmp, kept.map((l) => l + "\n").join(""), { mode: 0o600 });
      await Deno.rename(tmp, path);
    }
    return counts;
  } finally {
    file.close();
  }
}
