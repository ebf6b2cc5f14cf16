/**
 * Short-lived helper programs (`git`, `gh`, `ps`, `kill`, the claim script):
 * the one place they are started, so every helper gets the same guarantees.
 *
 * - Each runs in a session and process group of its own (`detached: true`
 *   with `.spawn()`; `.output()` ignores `detached` on Deno 2.9). A Ctrl-C in
 *   the terminal goes to the terminal's foreground group, which is ours: a
 *   helper outside it is never killed half-way by a second Ctrl-C meant for
 *   the orchestrator (a `kill` helper dying there once left agents running).
 * - Bounded: `timeoutMs` and an `AbortSignal` end the helper's whole group
 *   with SIGKILL; stdout is read up to a cap and then the helper is ended.
 * - Never blocked by a straggler: once the helper exits, its pipes are read
 *   for at most {@linkcode DRAIN_AFTER_EXIT_MS}, so a background child that
 *   inherited them (`(sleep 15) &` in a claim script) cannot hold us.
 * - Never throws: a helper that cannot start is `{ started: false, error }`.
 *
 * @module
 */

/** What to run a helper with. */
export interface HelperOptions {
  cwd?: string;
  /** Added to the inherited environment. */
  env?: Record<string, string>;
  /** End the helper's group after this many milliseconds (default: no limit). */
  timeoutMs?: number;
  /** End the helper's group at once when this aborts. */
  signal?: AbortSignal;
  /** Keep at most this many bytes of stdout; past it the helper is ended (default 16 MiB). */
  maxOutputBytes?: number;
  /** Keep at most this many bytes of stderr; the rest is drained and dropped (default 64 KiB). */
  maxErrorBytes?: number;
  /** End the helper's whole group as soon as its leader exits (leftover background children). */
  endGroupOnExit?: boolean;
}

/** How a helper run ended. */
export type HelperResult =
  | { started: false; error: unknown }
  | {
    started: true;
    code: number;
    stdout: Uint8Array;
    stderr: Uint8Array;
    /** Set when the helper was ended by us rather than exiting on its own. */
    stopped?: "timeout" | "aborted" | "overflow";
  };

/** Default stdout cap: far more than any PR list or `ps` listing. */
const MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

/** Default stderr cap: enough for an error message. */
const MAX_ERROR_BYTES = 64 * 1024;

/**
 * How long the pipes of an exited helper are still read: enough for the last
 * buffered output, short enough that an inherited pipe cannot hold a dispatch.
 */
export const DRAIN_AFTER_EXIT_MS = 250;

/**
 * Run `command` with `args`, no shell, in its own process group; collect its
 * output within the bounds of `options`.
 *
 * @param command a program name (looked up on PATH) or a path
 * @param args its arguments
 * @param options working directory, environment, bounds
 * @returns how it ended, or why it could not start
 * @example
 * ```ts
 * import { runHelper } from "./helper.ts";
 *
 * const r = await runHelper("git", ["--version"], { timeoutMs: 10_000 });
 * if (r.started && r.code === 0) console.log(new TextDecoder().decode(r.stdout));
 * ```
 */
export async function runHelper(
  command: string,
  args: readonly string[],
  options: HelperOptions = {},
): Promise<HelperResult> {
  const {
    timeoutMs,
    signal,
    maxOutputBytes = MAX_OUTPUT_BYTES,
    maxErrorBytes = MAX_ERROR_BYTES,
  } = options;
  if (signal?.aborted) {
    return {
      started: true,
      code: 130,
      stdout: new Uint8Array(),
      stderr: new Uint8Array(),
      stopped: "aborted",
    };
  }
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(command, {
      args: [...args],
      cwd: options.cwd,
      env: options.env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      detached: true,
    }).spawn();
  } catch (error) {
    return { started: false, error };
  }
  let stopped: "timeout" | "aborted" | "overflow" | undefined;
  const stop = (why: "timeout" | "aborted" | "overflow") => {
    if (stopped !== undefined) return;
    stopped = why;
    killGroupNow(child.pid);
  };
  const timer = timeoutMs === undefined ? undefined : setTimeout(() => stop("timeout"), timeoutMs);
  const onAbort = () => stop("aborted");
  signal?.addEventListener("abort", onAbort, { once: true });
  const out = readCapped(child.stdout, maxOutputBytes, () => stop("overflow"));
  const err = readCapped(child.stderr, maxErrorBytes);
  try {
    const status = await child.status;
    if (options.endGroupOnExit) killGroupNow(child.pid);
    // Streams left open by a background child are cut after a short drain.
    const cut = setTimeout(() => {
      out.cancel();
      err.cancel();
    }, DRAIN_AFTER_EXIT_MS);
    const [stdout, stderr] = await Promise.all([out.bytes, err.bytes]);
    clearTimeout(cut);
    return { started: true, code: status.code, stdout, stderr, stopped };
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  }
}

/**
 * SIGKILL every process of group `pgid` at once, without waiting: through
 * `Deno.kill(-pgid)` where Deno allows it (an unrestricted `--allow-run`),
 * else the `kill` program (started in its own session too). Best effort:
 * a group that is gone already is fine.
 *
 * @param pgid a process group this program started (a helper's or an agent's pid)
 */
function killGroupNow(pgid: number): void {
  if (!Number.isInteger(pgid) || pgid <= 1) return;
  try {
    Deno.kill(-pgid, "SIGKILL");
    return;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotCapable)) return; // gone already, or not ours
  }
  try {
    const killer = new Deno.Command("kill", {
      args: ["-s", "KILL", "--", `-${pgid}`],
      stdin: "null",
      stdout: "null",
      stderr: "null",
      detached: true,
    }).spawn();
    killer.status.catch(() => {});
  } catch {
    // No `kill` either: the leader at least.
    try {
      Deno.kill(pgid, "SIGKILL");
    } catch {
      // gone
    }
  }
}

/** A stream being read into memory: its bytes when it ends, or when cut short. */
interface CappedRead {
  bytes: Promise<Uint8Array>;
  cancel(): void;
}

/**
 * Read a stream to its end keeping at most `cap` bytes; past the cap, call
 * `onOverflow` once and keep draining (so the writer never blocks on a full
 * pipe). A read error ends it like EOF.
 */
function readCapped(
  stream: ReadableStream<Uint8Array>,
  cap: number,
  onOverflow?: () => void,
): CappedRead {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let overflow = false;
  const bytes = (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (overflow) continue;
        if (size + value.length > cap) {
          chunks.push(value.subarray(0, cap - size));
          size = cap;
          overflow = true;
          onOverflow?.();
          continue;
        }
        chunks.push(value);
        size += value.length;
      }
    } catch {
      // cancelled, or the pipe broke: what was read is what there is
    }
    const all = new Uint8Array(size);
    let at = 0;
    for (const c of chunks) {
      all.set(c, at);
      at += c.length;
    }
    return all;
  })();
  return {
    bytes,
    cancel() {
      reader.cancel().catch(() => {});
    },
  };
}
