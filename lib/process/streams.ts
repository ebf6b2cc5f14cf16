/**
 * A child's streams in the background: reading one to its end, writing one
 * and closing it, each a task that a broken pipe ends like a normal end and
 * that can be cut short; and waiting, bounded, for tasks to settle.
 *
 * @module
 */

/** A background stream task: `done` settles when it ends, `stop()` ends it early. */
export interface StreamTask {
  done: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Run `work` in the background; an error in it ends it like a normal end
 * (a broken pipe is how streams of a dead process end). `cancel` cuts it short.
 */
function streamTask(work: () => Promise<void>, cancel: () => Promise<void>): StreamTask {
  let finished = false;
  const done = (async () => {
    try {
      await work();
    } catch {
      // The pipe broke or was cancelled: nothing more will come or go.
    } finally {
      finished = true;
    }
  })();
  return {
    done,
    async stop() {
      if (!finished) await cancel().catch(() => {});
      await done;
    },
  };
}

/**
 * Read `stream` to its end, handing each chunk to `onChunk`; a read error ends it like EOF.
 *
 * @example
 * ```ts
 * const task = drain(new Blob(["x"]).stream(), () => {});
 * await task.done;
 * ```
 */
export function drain(
  stream: ReadableStream<Uint8Array>,
  onChunk: (chunk: Uint8Array) => void,
): StreamTask {
  const reader = stream.getReader();
  return streamTask(async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      onChunk(value);
    }
  }, () => reader.cancel());
}

/**
 * Write `text` to `stdin` and close it, in the background; EPIPE (the agent
 * closed its end) is not an error.
 *
 * @example
 * ```ts
 * await feed(new WritableStream(), "prompt").done;
 * ```
 */
export function feed(stdin: WritableStream<Uint8Array>, text: string): StreamTask {
  const writer = stdin.getWriter();
  return streamTask(async () => {
    await writer.write(new TextEncoder().encode(text));
    await writer.close();
  }, () => writer.abort());
}

/**
 * Wait until every promise settled or `ms` passed, whichever is first; never rejects.
 *
 * @example
 * ```ts
 * await settledWithin([Promise.reject(new Error("x"))], 10);
 * ```
 */
export async function settledWithin(promises: (Promise<unknown> | undefined)[], ms: number) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  try {
    await Promise.race([Promise.allSettled(promises), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
