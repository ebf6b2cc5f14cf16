/**
 * Reading an agent's log files after the fact (`logs`, `status`, the
 * dashboard): the last lines of a file, read from a bounded window at its
 * end, and the text from an offset on (for following). Missing files read
 * as empty.
 *
 * @module
 */

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

/**
 * The text of `path` from `offset` (to `until`, or its end), and where it stopped.
 *
 * @example
 * ```ts
 * await readFrom("/nonexistent", 0); // { text: "", end: 0 }
 * ```
 */
export async function readFrom(
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
