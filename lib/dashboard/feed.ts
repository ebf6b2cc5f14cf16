/**
 * The dashboard's one poller: however many pages are open, the status is
 * read once per look (every second while anyone listens, not at all when
 * nobody does) and each change is encoded once and sent to every stream;
 * `/`, `/api/status` and `/metrics` asked meanwhile share the read in
 * flight. Streams are capped ({@linkcode StatusFeed.open} says no past the
 * cap: the server answers 503), and a stream whose client stopped reading
 * is closed rather than buffered without bound (EventSource reconnects).
 *
 * @module
 */
import { errorMessage, type Result } from "../util/result.ts";
import { sleep } from "../util/sleep.ts";
import type { DashboardStatus } from "./data.ts";
import { renderView } from "./render.ts";

/** How the feed reads and paces. */
export interface FeedOptions {
  /** Reads the status (the DB, or the fleet's reflections). */
  read: () => Promise<Result<DashboardStatus>>;
  /** Between looks while anyone listens. */
  lookMs: number;
  /** A comment line after this long without news keeps idle connections (and proxies) open. */
  keepAliveMs: number;
  /** At most this many streams at once. */
  maxStreams: number;
  /** Aborted when the server stops: every stream ends. */
  stop: AbortSignal;
  /** Bytes a stream may have waiting for its client before it is ended as stuck (default 1 MiB). */
  maxBehindBytes?: number;
}

/** Bytes a stream may have waiting for its client before it is ended as stuck. */
const MAX_BEHIND_BYTES = 1 << 20;

/** One open stream. */
interface Stream {
  controller: ReadableStreamDefaultController<Uint8Array>;
}

/** The shared poller and its streams. */
export class StatusFeed {
  #options: FeedOptions;
  #streams = new Set<Stream>();
  #inFlight?: Promise<Result<DashboardStatus>>;
  #polling = false;
  /** What was last sent to every stream, and its key (the status, its time aside). */
  #last?: { key: string; bytes: Uint8Array };
  #encoder = new TextEncoder();

  constructor(options: FeedOptions) {
    this.#options = options;
    options.stop.addEventListener("abort", () => {
      for (const s of this.#streams) this.#close(s);
    }, { once: true });
  }

  /** How many streams are open. */
  get streams(): number {
    return this.#streams.size;
  }

  /** The status now: a read in flight is shared by everyone who asks meanwhile. */
  status(): Promise<Result<DashboardStatus>> {
    if (this.#inFlight) return this.#inFlight;
    const read = this.#options.read().finally(() => (this.#inFlight = undefined));
    this.#inFlight = read;
    return read;
  }

  /**
   * A new event stream (`retry`, then the latest view and every change), or
   * undefined when {@linkcode FeedOptions.maxStreams} are open already.
   */
  open(): ReadableStream<Uint8Array> | undefined {
    if (this.#streams.size >= this.#options.maxStreams || this.#options.stop.aborted) {
      return undefined;
    }
    let stream: Stream | undefined;
    return new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          stream = { controller };
          this.#streams.add(stream);
          controller.enqueue(this.#encoder.encode("retry: 2000\n\n"));
          if (this.#last) controller.enqueue(this.#last.bytes);
          if (!this.#polling) this.#poll();
        },
        cancel: () => {
          if (stream) this.#streams.delete(stream);
        },
      },
      new ByteLengthQueuingStrategy({
        highWaterMark: this.#options.maxBehindBytes ?? MAX_BEHIND_BYTES,
      }),
    );
  }

  /** Look while anyone listens; send what changed (or a keep-alive) to everyone. */
  async #poll(): Promise<void> {
    this.#polling = true;
    let quietSince = Date.now();
    try {
      while (this.#streams.size > 0 && !this.#options.stop.aborted) {
        const status = await this.status().catch((e) => ({
          ok: false as const,
          error: `cannot read the status: ${errorMessage(e)}`,
        }));
        if (!status.ok) {
          this.#send(
            this.#encoder.encode(`event: failure\ndata: ${JSON.stringify(status.error)}\n\n`),
          );
        } else {
          const key = JSON.stringify({ ...status.value, generatedAt: "" });
          if (key !== this.#last?.key) {
            this.#last = { key, bytes: this.#encoder.encode(eventsOf(status.value)) };
            quietSince = Date.now();
            this.#send(this.#last.bytes);
          } else if (Date.now() - quietSince >= this.#options.keepAliveMs) {
            quietSince = Date.now();
            this.#send(this.#encoder.encode(": keep-alive\n\n"));
          }
        }
        await sleep(this.#options.lookMs, this.#options.stop);
      }
    } finally {
      this.#polling = false;
      // Nobody listened for a while: the next stream starts from a fresh look.
      this.#last = undefined;
    }
  }

  /**
   * `bytes` to every stream; a stream whose client stopped reading is ended
   * with an error, which drops what it holds and its connection (a close
   * would keep both until the client read them).
   */
  #send(bytes: Uint8Array): void {
    for (const s of this.#streams) {
      const room = s.controller.desiredSize;
      if (room !== null && room <= 0) {
        this.#streams.delete(s);
        s.controller.error(new Error("the client stopped reading"));
        continue;
      }
      try {
        s.controller.enqueue(bytes);
      } catch {
        this.#streams.delete(s); // closed under us
      }
    }
  }

  #close(s: Stream): void {
    this.#streams.delete(s);
    try {
      s.controller.close();
    } catch {
      // closed already
    }
  }
}

/** A status as its two events: `status` (the JSON, for scripts) and `view` (the page's fragments). */
function eventsOf(s: DashboardStatus): string {
  return `event: status\ndata: ${JSON.stringify(s)}\n\n` +
    `event: view\ndata: ${JSON.stringify(renderView(s))}\n\n`;
}
