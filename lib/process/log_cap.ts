/**
 * The size cap of an agent's log files: a file that grew past the cap keeps
 * its newest half-cap of bytes, moved to the start of the same file (the
 * waiter appends with `>>`, O_APPEND, so its writes keep landing at the end
 * whatever the file's length). A file is thus never much over the cap and
 * always holds at least the last half of it; memory stays one buffer.
 *
 * The copy is done in place and the file truncated only after a last look at
 * its size: bytes the agent appends during the copy are moved too. Only what
 * it writes between that last look and the truncation (microseconds) can be
 * lost, in a file that is already dropping its oldest megabytes.
 *
 * @module
 */

/** Default cap per log file: 32 MiB. */
export const DEFAULT_LOG_CAP_BYTES = 32 << 20;

/** Bytes moved at a time. */
const CHUNK = 1 << 20;

/**
 * Trim the file at `path` to its newest `capBytes / 2` bytes when it is
 * over `capBytes`; returns how many bytes were dropped from its start (0
 * when none, or when the file cannot be read).
 *
 * @example
 * ```ts
 * const path = Deno.makeTempFileSync();
 * Deno.writeTextFileSync(path, "0123456789");
 * await capLog(path, 8); // 6: "6789" is left
 * Deno.readTextFileSync(path); // "6789"
 * ```
 */
export async function capLog(path: string, capBytes: number): Promise<number> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true, write: true });
  } catch {
    return 0;
  }
  try {
    let size = (await file.stat()).size;
    if (size <= capBytes) return 0;
    const drop = size - Math.floor(capBytes / 2);
    const buf = new Uint8Array(CHUNK);
    let from = drop;
    for (;;) {
      while (from < size) {
        await file.seek(from, Deno.SeekMode.Start);
        const n = await file.read(buf.subarray(0, Math.min(CHUNK, size - from)));
        if (n === null || n === 0) break;
        await file.seek(from - drop, Deno.SeekMode.Start);
        await writeAll(file, buf.subarray(0, n));
        from += n;
      }
      const now = (await file.stat()).size;
      if (now <= size) break;
      size = now; // The agent wrote during the copy: move that too.
    }
    await file.truncate(size - drop);
    return drop;
  } catch {
    return 0;
  } finally {
    file.close();
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += await file.write(bytes.subarray(done));
}
