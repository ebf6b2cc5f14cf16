/**
 * Questions about the file system that the rest asks in one way, and
 * reading a file: whole and fast, or as text that tells missing from unreadable.
 *
 * @module
 */

/**
 * Can `path` be stat'ed (it exists, symlinks followed)? Any error is a no.
 * Asked synchronously: one stat at a command's start costs less than a
 * trip through the runtime's thread pool (the first one starts the pool).
 *
 * @example
 * ```ts
 * statable("/"); // true
 * ```
 */
export function statable(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * What the disk says of a path, its last symlink not followed: `present`;
 * `absent`, surely (not found, or under something that is not a directory);
 * `unknown` when the stat failed otherwise (no permission, a symlink loop,
 * an I/O error), so a caller decides whether to count it as there.
 */
export type PathState = "present" | "absent" | "unknown";

/**
 * The {@linkcode PathState} of `path`.
 *
 * @example
 * ```ts
 * await pathState("/"); // "present"
 * ```
 */
export async function pathState(path: string): Promise<PathState> {
  try {
    await Deno.lstat(path);
    return "present";
  } catch (e) {
    return absentOrUnknown(e);
  }
}

/**
 * {@linkcode pathState}, synchronously.
 *
 * @example
 * ```ts
 * pathStateSync("/no/such/path"); // "absent"
 * ```
 */
export function pathStateSync(path: string): PathState {
  try {
    Deno.lstatSync(path);
    return "present";
  } catch (e) {
    return absentOrUnknown(e);
  }
}

/** The state an lstat's error says: absent when the path surely is not there, else unknown. */
function absentOrUnknown(e: unknown): PathState {
  return e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory
    ? "absent"
    : "unknown";
}

/**
 * A file's text; `missing` when it does not exist; undefined when it cannot
 * be read (so "not there" and "cannot tell" stay apart).
 *
 * @example
 * ```ts
 * await readText("/no/such/file", ""); // ""
 * ```
 */
export async function readText(path: string, missing?: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    return e instanceof Deno.errors.NotFound ? missing : undefined;
  }
}

/** Files from this size on are read into one buffer of their size (see {@linkcode readWholeFile}). */
const BIG_FILE_BYTES = 1 << 20;

/**
 * A file's bytes, read synchronously, given the size a stat just gave. A
 * big one is read into one buffer of that size (`Deno.readFile` took twice
 * as long on 16 MB here, growing its buffer as it read); one that grew
 * since is read again, whole; one that shrank gives what it holds.
 *
 * @example
 * ```ts
 * const info = Deno.statSync("deno.json");
 * readWholeFile("deno.json", info.size).length === info.size; // true
 * ```
 */
export function readWholeFile(path: string, size: number): Uint8Array {
  if (size < BIG_FILE_BYTES) return Deno.readFileSync(path);
  using file = Deno.openSync(path);
  // One byte more than its size: a read that fills it means the file grew; it is read anew.
  const buf = new Uint8Array(size + 1);
  let n = 0;
  for (;;) {
    const got = file.readSync(buf.subarray(n));
    if (got === null) return buf.subarray(0, n);
    n += got;
    if (n === buf.length) return Deno.readFileSync(path);
  }
}
