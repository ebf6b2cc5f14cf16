/**
 * Lines to a stream in large writes: a command that prints 18,000 lines (a
 * dry run of a big backlog) writes them in a few chunks, not one write each.
 * Lines are kept until the current synchronous work ends (a microtask), or
 * 64 KiB are waiting, so a watching run's lines still show as they come;
 * `flush` writes what waits (before a line to the other stream, and before
 * the process exits). A stream that is gone (EIO after a hangup, EPIPE) is
 * not an error: what could not be written is dropped.
 *
 * @module
 */

/** Where the lines go: `Deno.stdout`, or anything that writes some bytes at a time. */
export interface SyncWriter {
  writeSync(p: Uint8Array): number;
}

/** A line writer. */
export interface LinesOut {
  line(text: string): void;
  flush(): void;
}

/** Characters waiting that make a write at once. */
const CHUNK = 64 << 10;

/**
 * A line writer on `to`.
 *
 * @example
 * ```ts
 * const chunks: string[] = [];
 * const out = linesOut({ writeSync: (p) => (chunks.push(new TextDecoder().decode(p)), p.length) });
 * out.line("a");
 * out.line("b");
 * out.flush();
 * chunks; // ["a\nb\n"]
 * ```
 */
export function linesOut(to: SyncWriter): LinesOut {
  let pending: string[] = [];
  let size = 0;
  let scheduled = false;
  const encoder = new TextEncoder();
  const flush = () => {
    scheduled = false;
    if (pending.length === 0) return;
    const bytes = encoder.encode(pending.join("\n") + "\n");
    pending = [];
    size = 0;
    try {
      for (let done = 0; done < bytes.length;) done += to.writeSync(bytes.subarray(done));
    } catch {
      // nowhere to write to
    }
  };
  return {
    line(text) {
      pending.push(text);
      size += text.length + 1;
      if (size >= CHUNK) flush();
      else if (!scheduled) {
        scheduled = true;
        queueMicrotask(flush);
      }
    },
    flush,
  };
}
