/**
 * Following an agent's log files while it runs: new stderr bytes go to its
 * {@linkcode StderrTail} (the WARN/ERROR tail of CONTRACT §4, tailed while
 * the agent runs, bounded memory), and any growth of either file is output
 * (the agent's last-output time). The files are written by the agent's
 * waiter (process/waiter.ts), so following can start late (an adopting run
 * reads them from the start) and nothing breaks when nobody follows.
 *
 * @module
 */
import type { AgentFiles } from "./waiter.ts";
import type { StderrTail } from "./stderr_tail.ts";

/** How often the files are looked at. */
export const FOLLOW_MS = 500;

/** Read at most this much per look, so one huge burst does not stall the loop. */
const READ_CHUNK = 1 << 20;

/** A running follower. */
export interface LogFollower {
  /** Last time (ms since the epoch) either file grew; the start time until then. */
  readonly lastOutputAt: number;
  /** Read what is new now (also what `stop` does last). */
  catchUp(): Promise<void>;
  /** Stop looking, after reading everything there is. */
  stop(): Promise<void>;
}

/**
 * Follow `files`, feeding `tail` from the stderr file.
 *
 * @param files the dispatch attempt's files
 * @param tail where stderr bytes go
 * @param since initial last-output time (ms since the epoch)
 * @example
 * ```ts
 * import { createStderrTail } from "./stderr_tail.ts";
 * import { agentFiles } from "./waiter.ts";
 *
 * const f = followLogs(agentFiles("/nonexistent/1-a"), createStderrTail(), Date.now());
 * await f.stop();
 * ```
 */
export function followLogs(files: AgentFiles, tail: StderrTail, since: number): LogFollower {
  let lastOutputAt = since;
  let errOffset = 0;
  let outSize = 0;
  let busy: Promise<void> | undefined;

  const look = async () => {
    const err = await statOf(files.err);
    const out = await statOf(files.out);
    const errSize = err.size;
    if (errSize < errOffset) errOffset = 0; // truncated or replaced: start over
    if (errSize > errOffset || out.size > outSize) {
      // When the file says (an adopting run reads files written long ago), else now.
      lastOutputAt = Math.max(lastOutputAt, err.mtime ?? 0, out.mtime ?? 0) || Date.now();
    }
    outSize = out.size;
    while (errSize > errOffset) {
      const chunk = await readAt(files.err, errOffset, Math.min(READ_CHUNK, errSize - errOffset));
      if (chunk.length === 0) break;
      tail.push(chunk);
      errOffset += chunk.length;
    }
  };
  const catchUp = () => {
    busy ??= look().catch(() => {}).finally(() => {
      busy = undefined;
    });
    return busy;
  };
  const timer = setInterval(catchUp, FOLLOW_MS);
  return {
    get lastOutputAt() {
      return lastOutputAt;
    },
    catchUp,
    async stop() {
      clearInterval(timer);
      await busy;
      await catchUp();
    },
  };
}

/** Size of `path` in bytes (0 when it does not exist yet) and its last write, ms since the epoch. */
async function statOf(path: string): Promise<{ size: number; mtime?: number }> {
  try {
    const st = await Deno.stat(path);
    return { size: st.size, mtime: st.mtime?.getTime() };
  } catch {
    return { size: 0 };
  }
}

/** Up to `length` bytes of `path` from `offset`. */
async function readAt(path: string, offset: number, length: number): Promise<Uint8Array> {
  using file = await Deno.open(path);
  await file.seek(offset, Deno.SeekMode.Start);
  const buf = new Uint8Array(length);
  let filled = 0;
  while (filled < length) {
    const n = await file.read(buf.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return buf.subarray(0, filled);
}
