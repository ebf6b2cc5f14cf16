/**
 * The backlog: a YAML file with a top-level `gaps:` list, or a directory of `*.yaml` files read
 * in byte-wise name order (the fast path when it is sure, lib/backlog/fast.ts; else the full parse,
 * lib/backlog/parse.ts, loaded only then). Each gap keeps its file and line. Messy backlogs
 * load: duplicate ids, dependencies on ids that do not exist and keys repeated inside one gap are
 * warnings. What cannot be read as a backlog at all
 * (unreadable path, invalid YAML, no `gaps` list, a gap that is not a mapping, a missing or
 * non-string id) is an error naming the file and, where known, the line and column.
 *
 * @module
 */
import { join } from "../util/path.ts";
import { readWholeFile } from "../util/fs.ts";
import { fastGaps } from "./fast.ts";
import type { Gap } from "./gap.ts";
import { errorMessage, fail, ok, type Result } from "../util/result.ts";

/** The full parse's module, by a computed specifier: a file the fast path is sure of needs no YAML parser. */
const PARSE = new URL("./parse.ts", import.meta.url).href;

/** A loaded backlog: gaps in file order plus warnings to show the operator. */
export interface Backlog {
  /** The path that was loaded (file or directory). */
  source: string;
  gaps: Gap[];
  /** One line each, `<file>:<line>: <what>`; never fatal. */
  warnings: string[];
}

/**
 * Largest backlog file read, in bytes: what one JavaScript string can hold
 * (V8's limit is 2^29 - 24 characters). A 100,000-gap backlog at the real
 * backlog's density is about 150 MB; a larger backlog is split into a
 * directory of files, which has no total limit.
 */
const MAX_FILE_BYTES = 512 * 1024 * 1024 - 64;

/**
 * Read a backlog from a file or a directory of `*.yaml` files.
 *
 * @param path file or directory
 * @returns the backlog, or one line saying what is wrong and where
 * @example
 * ```ts
 * const r = await loadBacklog("docs/gaps.yaml");
 * if (!r.ok) console.error(r.error);
 * ```
 */
export async function loadBacklog(path: string): Promise<Result<Backlog>> {
  let info: Deno.FileInfo;
  try {
    // Synchronous: a backlog is read once, at a command's start, before anything runs beside it,
    // and a stat or a small read through the runtime's thread pool costs a trip there and back.
    info = Deno.statSync(path);
  } catch (e) {
    return fail(describeReadError(path, e));
  }
  let files: string[];
  if (info.isDirectory) {
    const listed = await listYamlFiles(path);
    if (!listed.ok) return listed;
    files = listed.value;
    if (files.length === 0) return fail(`backlog directory ${path} has no *.yaml files`);
  } else if (info.isFile) {
    files = [path];
  } else {
    return fail(`backlog ${path} is not a regular file or directory`);
  }

  const gaps: Gap[] = [];
  const warnings: string[] = [];
  for (const file of files) {
    const read = readBytes(file);
    if (!read.ok) return read;
    const fast = fastGaps(read.value, file);
    const parsed = fast && fast.rest === undefined
      ? ok(fast)
      : (await fullParser()).parseScanned(read.value, file, fast);
    if (!parsed.ok) return parsed;
    // A loop, not push(...): spreading 100,000+ gaps as arguments overflows the stack. Indexed,
    // not for-of: it runs once, mostly before the JIT has compiled it.
    const got = parsed.value;
    for (let i = 0; i < got.gaps.length; i++) gaps.push(got.gaps[i]);
    for (let i = 0; i < got.warnings.length; i++) warnings.push(got.warnings[i]);
  }
  for (const w of crossGapWarnings(gaps)) warnings.push(w);
  return ok({ source: path, gaps, warnings });
}

/**
 * The full parser, loaded now (with js-yaml), for what the fast path was not
 * sure of: the rest of the document beside the gaps it read, or the whole file.
 */
function fullParser(): Promise<typeof import("./parse.ts")> {
  return import(PARSE);
}

/** Duplicate ids and dependencies on ids that no gap has. */
function crossGapWarnings(gaps: readonly Gap[]): string[] {
  const warnings: string[] = [];
  const first = new Map<string, Gap>();
  // Indexed loops, not for-of: this runs once per load, mostly before the JIT has compiled it.
  for (let i = 0; i < gaps.length; i++) {
    const g = gaps[i];
    const seen = first.get(g.id);
    if (seen) {
      warnings.push(
        `${g.file}:${g.line}: duplicate gap id ${g.id} (first at ${seen.file}:${seen.line}); ` +
          `the first pickable occurrence wins`,
      );
    } else first.set(g.id, g);
  }
  for (let i = 0; i < gaps.length; i++) {
    const g = gaps[i];
    for (let k = 0; k < g.dependsOn.length; k++) {
      const d = g.dependsOn[k];
      if (!first.has(d)) {
        warnings.push(
          `${g.file}:${g.line}: gap ${g.id} depends on unknown id ${d}; it stays blocked`,
        );
      }
    }
  }
  return warnings;
}

async function listYamlFiles(dir: string): Promise<Result<string[]>> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.name.startsWith(".")) continue;
      if (!/\.ya?ml$/i.test(entry.name)) continue;
      const full = join(dir, entry.name);
      const isFile = entry.isFile ||
        (entry.isSymlink && (await Deno.stat(full).catch(() => null))?.isFile);
      if (isFile) names.push(entry.name);
    }
  } catch (e) {
    return fail(describeReadError(dir, e));
  }
  const enc = new TextEncoder();
  names.sort((a, b) => compareBytes(enc.encode(a), enc.encode(b)));
  return ok(names.map((n) => join(dir, n)));
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

function readBytes(file: string): Result<Uint8Array> {
  try {
    const info = Deno.statSync(file);
    if (info.size > MAX_FILE_BYTES) {
      return fail(
        `${file}: larger than 512 MiB, more than one file can hold here; ` +
          "split it into a directory of *.yaml files",
      );
    }
    return ok(readWholeFile(file, info.size));
  } catch (e) {
    return fail(describeReadError(file, e));
  }
}

function describeReadError(path: string, e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return `backlog not found: ${path}`;
  if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable) {
    return `cannot read backlog ${path}: permission denied`;
  }
  if (e instanceof Deno.errors.IsADirectory) return `cannot read backlog ${path}: is a directory`;
  return `cannot read backlog ${path}: ${errorMessage(e)}`;
}
