/**
 * Following an agent's log files while it runs: new stderr bytes go to its
 * {@linkcode StderrTail} (the WARN/ERROR tail of CONTRACT §4, tailed while
 * the agent runs, bounded memory), new stdout bytes to its session meter
 * when its output is structured (cost/session.ts), and any growth of either
 * file is output (the agent's last-output time). The files are written by the agent's
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
import type { SessionMeter } from "../cost/session.ts";

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
 * Follow `files`, feeding `tail` from the stderr file and `session` (when
 * given) from the stdout file.
 *
 * @param files the dispatch attempt's files
 * @param tail where stderr bytes go
 * @param since initial last-output time (ms since the epoch)
 * @param session where stdout bytes go (a structured agent session), if anywhere
 * @example
 * ```ts
 * import { createStderrTail } from "./stderr_tail.ts";
 * import { agentFiles } from "./waiter.ts";
 *
 * const f = followLogs(agentFiles("/nonexistent/1-a"), createStderrTail(), Date.now());
 * await f.stop();
 * ```
 */
export function followLogs(
  files: AgentFiles,
  tail: StderrTail,
  since: number,
  session?: SessionMeter,
): LogFollower {
  let lastOutputAt = since;
  let busy: Promise<void> | undefined;
  // One buffer for the whole life of the agent, shared by both files: a
  // flood costs reads, not allocations.
  const buf = new Uint8Array(READ_CHUNK);
  const cap = files.capBytes ?? DEFAULT_LOG_CAP_BYTES;
  const err = new FileReader(files.err, (chunk) => tail.push(chunk), buf, cap);
  // Without a meter only the size of stdout matters (the last-output time, the cap).
  const out = new FileReader(files.out, session && ((chunk) => session.push(chunk)), buf, cap);

  const look = async () => {
    const e = await statOf(files.err);
    const o = await statOf(files.out);
    if (e.size > err.seen || o.size > out.seen) {
      // When the file says (an adopting run reads files written long ago), else now.
      lastOutputAt = Math.max(lastOutputAt, e.mtime ?? 0, o.mtime ?? 0) || Date.now();
    }
    await out.readTo(o.size);
    await err.readTo(e.size);
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
      err.close();
      out.close();
    },
  };
}

/**
 * One followed file: its new bytes go to `sink` through one open handle
 * (without a sink only its size is tracked); over `cap` it is trimmed to its
 * newest half once read.
 */
class FileReader {
  /** Bytes of the file read (or, without a sink, seen). */
  seen = 0;
  #file: Deno.FsFile | undefined;

  constructor(
    readonly path: string,
    readonly sink: ((chunk: Uint8Array) => void) | undefined,
    readonly buf: Uint8Array,
    readonly cap: number,
  ) {}

  /** The file is `size` bytes now: read what is new. */
  async readTo(size: number): Promise<void> {
    if (size < this.seen) {
      // Truncated or replaced: start over.
      this.seen = 0;
      this.close();
    }
    if (this.sink === undefined) {
      this.seen = size;
    } else if (size > this.seen) {
      if (!this.#file) {
        this.#file = await Deno.open(this.path);
        await this.#file.seek(this.seen, Deno.SeekMode.Start);
      }
      for (;;) {
        const n = await this.#file.read(this.buf);
        if (n === null || n === 0) break;
        this.sink(this.buf.subarray(0, n));
        this.seen += n;
      }
    }
    if (this.seen > this.cap) {
      this.seen = Math.max(0, this.seen - await capLog(this.path, this.cap));
      this.close();
    }
  }

  close(): void {
    this.#file?.close();
    this.#file = undefined;
  }
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
