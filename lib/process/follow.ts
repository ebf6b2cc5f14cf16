/**
 * Following an agent's log files while it runs: new stderr bytes go to its
 * {@linkcode StderrTail} (the WARN/ERROR tail of CONTRACT §4, tailed while
 * the agent runs, bounded memory), and any growth of either file is output
 * (the agent's last-output time). The files are written by the agent's
 * waiter (process/waiter.ts), so following can start late (an adopting run
 * reads them from the start) and nothing breaks when nobody follows. A file
 * over its cap (`AgentFiles.capBytes`, default 32 MiB) is trimmed to its
 * newest half once read (process/log_cap.ts).
 *
 * @module
 */
import { capLog, DEFAULT_LOG_CAP_BYTES } from "./log_cap.ts";
import type { AgentFiles } from "./waiter.ts";
import type { StderrTail } from "./stderr_tail.ts";

/** How often the files are looked at. */
export const FOLLOW_MS = 500;

/** Bytes read at a time (one buffer per follower, reused). */
const READ_CHUNK = 64 << 10;

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
  // One open handle and one buffer for the whole life of the agent: a flood
  // of stderr costs reads, not allocations.
  let errFile: Deno.FsFile | undefined;
  const buf = new Uint8Array(READ_CHUNK);
  const cap = files.capBytes ?? DEFAULT_LOG_CAP_BYTES;

  const look = async () => {
    const err = await statOf(files.err);
    const out = await statOf(files.out);
    if (err.size < errOffset) {
      // Truncated or replaced: start over.
      errOffset = 0;
      errFile?.close();
      errFile = undefined;
    }
    if (err.size > errOffset || out.size > outSize) {
      // When the file says (an adopting run reads files written long ago), else now.
      lastOutputAt = Math.max(lastOutputAt, err.mtime ?? 0, out.mtime ?? 0) || Date.now();
    }
    outSize = out.size;
    if (outSize > cap) outSize = Math.max(0, outSize - await capLog(files.out, cap));
    if (err.size <= errOffset) return;
    if (!errFile) {
      errFile = await Deno.open(files.err);
      await errFile.seek(errOffset, Deno.SeekMode.Start);
    }
    for (;;) {
      const n = await errFile.read(buf);
      if (n === null || n === 0) break;
      tail.push(buf.subarray(0, n));
      errOffset += n;
    }
    if (errOffset > cap) {
      errOffset = Math.max(0, errOffset - await capLog(files.err, cap));
      errFile.close();
      errFile = undefined;
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
      errFile?.close();
      errFile = undefined;
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
